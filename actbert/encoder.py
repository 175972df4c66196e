"""The ActBERT encoder: three stacks of BERT layers interleaved with tangled blocks.

Before tangled block k, each stream runs its own layers up to ``tangled.layers_before[stream][k]``;
after the last block, each stream runs its remaining layers. With the released schedule (text
layers before blocks: 10, 11; action and region: 0, 1) this is: text layers 0-9, block 0, text
layer 10, block 1, text layer 11; the region embedding enters block 0 directly.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import STREAMS, ActBertConfig
from .layers import BertLayer
from .tangled import AttentionMap, TangledBlock


def schedule(config: ActBertConfig) -> list[tuple[str, int]]:
    """The order in which blocks run: ``[(stream, layer_index) | ("tangled", k), ...]``."""
    order: list[tuple[str, int]] = []
    start = {s: 0 for s in STREAMS}
    ends = [dict(zip(STREAMS, ids)) for ids in zip(*(config.tangled.layers_before[s] for s in STREAMS))]
    for k, end in enumerate(ends + [{s: config.stream(s).num_layers for s in STREAMS}]):
        for stream in STREAMS:
            order += [(stream, i) for i in range(start[stream], end[stream])]
            start[stream] = end[stream]
        if k < len(ends):
            order.append(("tangled", k))
    return order


class Encoder(nn.Module):
    def __init__(self, config: ActBertConfig) -> None:
        super().__init__()
        self.config = config
        self.layers = nn.ModuleDict({
            s: nn.ModuleList(
                BertLayer(c.hidden_size, c.num_heads, c.intermediate_size, c.hidden_dropout,
                          c.attention_dropout, c.layer_norm_eps)
                for _ in range(c.num_layers)
            )
            for s, c in ((s, config.stream(s)) for s in STREAMS)
        })
        self.tangled = nn.ModuleList(TangledBlock(config) for _ in range(config.tangled.num_blocks))
        self.order = schedule(config)
        first = next((i for i, (kind, _) in enumerate(self.order) if kind == "tangled"),
                     len(self.order))
        # The text layers before the first tangled block see only the text: one query's run can
        # be shared by every candidate video (``ActBertModel.text_state``).
        self.text_only = tuple(e for e in self.order[:first] if e[0] == "text")
        # Likewise the visual layers before the first tangled block see only the video: one clip's
        # run can be shared by every query (``ActBertModel.video_state``).
        self.video_only = tuple(e for e in self.order[:first] if e[0] != "text")
        tangled = [i for i, (kind, _) in enumerate(self.order) if kind == "tangled"]
        # After the last tangled block each stream runs its own layers and nothing else reads it.
        self._after_tangled = tangled[-1] if tangled else -1
        self._last = {s: max((i for i, (kind, _) in enumerate(self.order) if kind in (s, "tangled")),
                             default=-1) for s in STREAMS}

    def forward(
        self,
        hidden: dict[str, torch.Tensor],
        bias: dict[str, torch.Tensor],
        output_attentions: bool = False,
        skip: tuple[tuple[str, int], ...] = (),
        projected: dict[str, dict[str, torch.Tensor]] | None = None,
        pooled: tuple[str, ...] | None = None,
        wanted: dict[str, torch.Tensor] | None = None,
    ) -> tuple[dict[str, torch.Tensor], list[AttentionMap]]:
        """hidden[s] (B, L_s, D_s), bias[s] (B, 1, 1, L_s) -> final hidden states and, when asked,
        every attention map in schedule order. ``skip``: schedule entries already run.

        ``projected[s]``: the first tangled block's ``TangledAttention.project`` of stream s,
        precomputed (see ``ActBertModel.text_state`` / ``video_state``).

        ``pooled``: the streams whose position 0 (what the poolers read) is wanted; then only what
        that needs runs: each wanted stream's last layer runs its query, attention output and
        feed-forward at position 0 alone (keys and values still from every position); the other
        streams' parts of the last tangled block and their layers after it do not run; the
        returned hidden holds the wanted streams only, (B, 1, D_s) each: the same numbers as
        ``[:, :1]`` of the full forward. None: every stream at every position (training,
        attention maps).

        ``wanted[s]`` (B, L_s) bool: the positions of stream s whose final state is read (a
        training pass whose losses read a few); when the stream's last block is one of its own
        layers, that layer computes those positions alone (``BertLayer``'s ``wanted``) and the
        stream's other positions hold the state entering it."""
        hidden = dict(hidden)
        maps: list[AttentionMap] = []
        for depth, (kind, index) in enumerate(self.order):
            if (kind, index) in skip:
                continue
            if kind == "tangled":
                first = projected if index == 0 else None
                streams = pooled if pooled is not None and depth == self._after_tangled else None
                hidden, probs = self.tangled[index](hidden, bias, output_attentions, first, streams)
                for label, p in probs.items():
                    query, key = label.split("->")
                    maps.append(AttentionMap(f"tangled.{index}", depth, query, key, p))
            else:
                if pooled is not None and kind not in pooled and depth > self._after_tangled:
                    continue
                last = depth == self._last[kind]
                first_only = pooled is not None and last
                rows = (wanted or {}).get(kind) if last else None
                hidden[kind], p = self.layers[kind][index](hidden[kind], bias[kind], output_attentions,
                                                           first_only, rows)
                if output_attentions:
                    maps.append(AttentionMap(f"{kind}.{index}", depth, kind, kind, p))
        if pooled is not None:
            hidden = {s: hidden[s][:, :1] for s in pooled}
        return hidden, maps
