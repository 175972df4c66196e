"""What the model keeps between its parts: a text after the layers that see only the text
(``TextState``) and videos after what sees only the video (``VideoState``), so that a query's text
is encoded once against many clips and a clip's state is cached and batched with others
(``ActBertModel.text_state``, ``video_state``, ``forward_text_state``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.nn.utils.rnn import pad_sequence

from .layers import MASK_BIAS


@dataclass(frozen=True)
class TextState:
    """A text after the layers that see only the text: hidden (B, L, D) and its attention bias,
    and ``projected``: the first tangled block's projections of it (``TangledAttention.project``,
    computed once and shared by every video the text meets; empty: computed by each match)."""

    hidden: torch.Tensor
    bias: torch.Tensor
    projected: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class VideoState:
    """Videos after what sees only the video (``ActBertModel.video_state``): for s in action and
    region, hidden[s] (B, L_s, D_s) entering the first tangled block (the embeddings, then the
    stream's layers before it), bias[s] (B, 1, 1, L_s), and ``projected[s]``: that block's
    projections of hidden[s] (``TangledAttention.project``). Depends on the clip and the weights
    alone, so a clip's state can be cached and batched with others (``unbatch`` / ``batch``).
    Real slots come first in each row, as ``actbert.data.collate`` pads.

    Stored per stream as one tensor, ``rows[s]`` (B, L_s, D_s + the projections' widths), whose
    columns ``layout[s]`` names ((name, width), "hidden" first): batching pads one tensor per
    stream; ``hidden`` and ``projected`` are views of it."""

    rows: dict[str, torch.Tensor]
    bias: dict[str, torch.Tensor]
    layout: dict[str, tuple[tuple[str, int], ...]]

    @classmethod
    def of(cls, hidden: dict[str, torch.Tensor], bias: dict[str, torch.Tensor],
           projected: dict[str, dict[str, torch.Tensor]]) -> "VideoState":
        layout = {s: (("hidden", h.shape[-1]),) + tuple((n, x.shape[-1]) for n, x in projected.get(s, {}).items())
                  for s, h in hidden.items()}
        rows = {s: torch.cat([h, *projected.get(s, {}).values()], -1) for s, h in hidden.items()}
        return cls(rows, dict(bias), layout)

    def _columns(self, stream: str) -> dict[str, torch.Tensor]:
        out, start = {}, 0
        for name, width in self.layout[stream]:
            out[name] = self.rows[stream][..., start:start + width]
            start += width
        return out

    @property
    def hidden(self) -> dict[str, torch.Tensor]:
        return {s: self._columns(s)["hidden"] for s in self.rows}

    @property
    def projected(self) -> dict[str, dict[str, torch.Tensor]]:
        return {s: {n: x for n, x in self._columns(s).items() if n != "hidden"} for s in self.rows}

    def __len__(self) -> int:
        return self.rows["action"].shape[0]

    def lengths(self, stream: str) -> list[int]:
        """The real slots of each row of ``stream``."""
        return (self.bias[stream][:, 0, 0, :] == 0).sum(-1).tolist()

    def unbatch(self) -> list["VideoState"]:
        """One state per row (batch 1), cut to its real slots, in memory of its own (a row kept
        in a cache does not hold the whole batch)."""
        lengths = {s: self.lengths(s) for s in self.rows}
        return [VideoState(
            rows={s: r[i:i + 1, :lengths[s][i]].clone() for s, r in self.rows.items()},
            bias={s: b[i:i + 1, ..., :lengths[s][i]].clone() for s, b in self.bias.items()},
            layout=self.layout,
        ) for i in range(len(self))]

    @staticmethod
    def batch(states: "list[VideoState]") -> "VideoState":
        """Rows of states stacked into one batch, each stream padded to its longest row (zero
        states, ``MASK_BIAS`` biases: padded slots are keys no query sees)."""
        if len(states) == 1:
            return states[0]

        def pad(rows: list[torch.Tensor], value: float = 0.0) -> torch.Tensor:
            return pad_sequence([r[0] for r in rows], batch_first=True, padding_value=value)

        first = states[0]
        return VideoState(
            rows={s: pad([v.rows[s] for v in states]) for s in first.rows},
            bias={s: pad([v.bias[s][:, 0, 0] for v in states], MASK_BIAS)[:, None, None, :]
                  for s in first.rows},
            layout=first.layout,
        )
