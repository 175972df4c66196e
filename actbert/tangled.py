"""The tangled transformer block (paper section 3.2.2, Eq. 1-2).

Action queries attend over the words (Eq. 1, context ``c_w``) and over the regions (Eq. 2, context
``c_r``). Linear layers turn each context into a new key/value pair that is injected into the other
streams' attentions. Two ways of injecting exist:

- ``kv_fusion="stack"`` (the paper, our default): the generated pairs are concatenated with the
  original keys/values along the key axis, with the action mask as their mask. c_w's pair joins the
  action and region attentions, c_r's pair joins the text attention. The two contexts have their
  own action query projections (``context_query.text`` = W_q^1 of Eq. 1, ``context_query.region``
  = W_q^2 of Eq. 2), apart from the action stream's own query.
- ``kv_fusion="paddle"`` (the released PaddleVideo code, quirks included): each context is
  resampled to the other stream's length by nearest neighbour and ADDED to its keys/values,
  crossed (c_r into text, c_w into region), with both value additions using the ``text`` (c_w)
  value projection, no action mask on the injected contexts, no injection into action, and one
  action query projection for both contexts and the action stream's own attention.

Parameters are named by the paper's concepts: ``context_key.text`` turns c_w (the action-over-text
context) into keys, ``context_key.region`` turns c_r into keys, and likewise ``context_value``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import STREAMS, ActBertConfig
from .layers import (FeedForward, ResidualOutput, attention, merge_heads, positionwise, real_positions,
                     split_heads)

# For each receiving stream, the context whose generated pair it receives in "stack" mode.
INJECTED_FROM = {"text": "region", "action": "text", "region": "text"}


@dataclass(frozen=True)
class AttentionMap:
    """One attention distribution of one block, all heads.

    block: ``"<stream>.<layer index>"`` for a stream's own layer or ``"tangled.<k>"``.
    depth: the block's position in the forward schedule (0 = first block run).
    query: the stream whose tokens are the queries.
    key: ``"text"``, ``"action"`` or ``"region"`` for keys of that stream (``query == key`` is the
      stream's own attention; ``query="action"`` with ``key="text"`` / ``"region"`` in a tangled
      block are the contexts c_w / c_r of Eq. 1 / Eq. 2), or ``"injected"`` for the generated key
      positions stacked into the query stream's attention (from c_r for text queries, from c_w for
      action and region queries; one position per action slot).
    probs: (B, H, L_query, L_key). For a stream's own attention in a "stack" tangled block, the
      ``key=<own stream>`` and ``key="injected"`` maps are two slices of one softmax: together they
      sum to 1 over keys.
    """

    block: str
    depth: int
    query: str
    key: str
    probs: torch.Tensor

    @property
    def injected_from(self) -> str | None:
        """For ``key="injected"``: the context the pair came from (``"c_w"`` or ``"c_r"``)."""
        if self.key != "injected":
            return None
        return "c_w" if INJECTED_FROM[self.query] == "text" else "c_r"


def resample_nearest(x: torch.Tensor, length: int) -> torch.Tensor:
    """(B, L, D) -> (B, length, D), source index floor(i * L / length) (torch/Paddle "nearest")."""
    return F.interpolate(x.transpose(1, 2), size=length, mode="nearest").transpose(1, 2)


class TangledAttention(nn.Module):
    """Multi-head attention of the three streams with cross-modal key/value injection."""

    def __init__(self, config: ActBertConfig) -> None:
        super().__init__()
        width = config.tangled.hidden_size
        self.num_heads = config.tangled.num_heads
        self.kv_fusion = config.tangled.kv_fusion
        self.dropout = config.tangled.attention_dropout
        self.query = nn.ModuleDict({s: nn.Linear(config.stream(s).hidden_size, width) for s in STREAMS})
        self.key = nn.ModuleDict({s: nn.Linear(config.stream(s).hidden_size, width) for s in STREAMS})
        self.value = nn.ModuleDict({s: nn.Linear(config.stream(s).hidden_size, width) for s in STREAMS})
        contexts = ("text", "region")  # c_w comes from attending over text, c_r over regions
        self.context_key = nn.ModuleDict({c: nn.Linear(width, width) for c in contexts})
        self.context_value = nn.ModuleDict({c: nn.Linear(width, width) for c in contexts})
        if self.kv_fusion == "stack":  # W_q^1 (over words) and W_q^2 (over regions), Eq. 1-2
            action_width = config.action.hidden_size
            self.context_query = nn.ModuleDict({c: nn.Linear(action_width, width) for c in contexts})

    def _heads(self, x: torch.Tensor, batch: int | None = None) -> torch.Tensor:
        """(B, L, W) -> (batch, H, L, W / H); a batch of 1 is broadcast to ``batch``."""
        if batch is not None and x.shape[0] != batch:
            x = x.expand(batch, *x.shape[1:])
        return split_heads(x, self.num_heads)

    def project(self, stream: str, hidden: torch.Tensor) -> dict[str, torch.Tensor]:
        """What this block computes from one stream's input alone, (B, L_s, D_tangled) each, heads
        not split: the stream's ``query``, ``key`` and ``value`` and, for the action stream in
        "stack" mode, its context queries ``context_query.text`` / ``context_query.region``
        (W_q^1, W_q^2). ``forward(projected=...)`` takes them precomputed: a query's text or a
        clip's video is projected once and shared."""
        out = {"query": self.query[stream](hidden), "key": self.key[stream](hidden),
               "value": self.value[stream](hidden)}
        if stream == "action" and self.kv_fusion == "stack":
            out.update({f"context_query.{c}": self.context_query[c](hidden) for c in ("text", "region")})
        return out

    def _layer(self, stream: str, name: str) -> nn.Linear:
        """The linear layer of a ``project`` output."""
        if name.startswith("context_query."):
            return self.context_query[name.split(".", 1)[1]]
        return getattr(self, name)[stream]

    def forward(
        self,
        hidden: dict[str, torch.Tensor],
        bias: dict[str, torch.Tensor],
        need_probs: bool = False,
        projected: dict[str, dict[str, torch.Tensor]] | None = None,
        streams: tuple[str, ...] | None = None,
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """hidden[s] (B, L_s, D_s), bias[s] (B, 1, 1, L_s) -> contexts[s] (B, L_s, D_tangled) and,
        when ``need_probs``, probability maps keyed ``"<query>-><key>"``. ``projected[s]``: the
        stream's ``project`` output, precomputed (a batch of 1 is shared by the B rows).
        ``streams``: the streams whose contexts are wanted (None: all); only what they need runs
        (their own attentions and the action contexts injected into them)."""
        drop = self.dropout if self.training else 0.0
        batch = max(h.shape[0] for h in hidden.values())
        wanted = STREAMS if streams is None else tuple(s for s in STREAMS if s in streams)
        proj = {s: dict((projected or {}).get(s) or {}) for s in STREAMS}

        def get(stream: str, name: str) -> torch.Tensor:  # a projection, computed when first needed
            if name not in proj[stream]:
                proj[stream][name] = self._layer(stream, name)(hidden[stream])
            return self._heads(proj[stream][name], batch)

        probs: dict[str, torch.Tensor] = {}
        # Eq. 1 and 2: action queries over words (c_w) and over regions (c_r).
        c = self._action_contexts(get, bias, self._sources(wanted), drop, need_probs, probs)
        injected: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # c's pair, once per context
        contexts = {}
        for stream in wanted:
            own = hidden[stream].shape[1]
            k, v, b = self._inject(stream, get(stream, "key"), get(stream, "value"), bias, c, own,
                                   injected)
            ctx, p = attention(get(stream, "query"), k, v, b, drop, need_probs)
            contexts[stream] = merge_heads(ctx)
            if need_probs:
                probs[f"{stream}->{stream}"] = p[..., :own]
                if p.shape[-1] > own:
                    probs[f"{stream}->injected"] = p[..., own:]
        return contexts, probs

    def _sources(self, wanted: tuple[str, ...]) -> set[str]:
        """The action contexts the ``wanted`` streams receive: ``"text"`` (c_w), ``"region"`` (c_r)."""
        if self.kv_fusion == "stack":
            return {INJECTED_FROM[s] for s in wanted}
        return {source for stream, source in (("text", "region"), ("region", "text"))
                if stream in wanted}

    def _action_contexts(self, get: Callable[[str, str], torch.Tensor],
                         bias: dict[str, torch.Tensor], sources: set[str], drop: float,
                         need_probs: bool, probs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Eq. 1 and 2: action queries over words (c_w, key ``"text"``) and over regions (c_r, key
        ``"region"``), (B, L_action, D_tangled) each; their maps added to ``probs``."""
        c = {}
        for source in ("text", "region"):
            if source not in sources:
                continue
            query = get("action", f"context_query.{source}" if self.kv_fusion == "stack" else "query")
            ctx, p = attention(query, get(source, "key"), get(source, "value"), bias[source], drop,
                               need_probs)
            c[source] = merge_heads(ctx)
            if need_probs:
                probs[f"action->{source}"] = p
        return c

    def _inject(self, stream: str, k: torch.Tensor, v: torch.Tensor, bias: dict[str, torch.Tensor],
                c: dict[str, torch.Tensor], length: int,
                injected: dict[str, tuple[torch.Tensor, torch.Tensor]]
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The stream's keys, values and attention bias with its action context injected (``length``:
        the stream's own length, to which "paddle" mode resamples the context; ``injected``: each
        context's generated pair in "stack" mode, computed once)."""
        b = bias[stream]
        if self.kv_fusion == "stack":
            source = INJECTED_FROM[stream]
            if source not in injected:
                injected[source] = (self._heads(self.context_key[source](c[source])),
                                    self._heads(self.context_value[source](c[source])))
            k = torch.cat([k, injected[source][0]], 2)
            v = torch.cat([v, injected[source][1]], 2)
            b = torch.cat([b, bias["action"]], -1)
        elif stream != "action":
            # PaddleVideo: crossed and added; both values use context_value["text"] (value_at).
            source = "region" if stream == "text" else "text"
            k = k + self._heads(resample_nearest(self.context_key[source](c[source]), length))
            v = v + self._heads(resample_nearest(self.context_value["text"](c[source]), length))
        return k, v, b


class TangledBlock(nn.Module):
    """Tangled attention, then per stream: LN(dense(context) + hidden) and the stream's FFN.

    ``packed`` (set by the trainer on CPUs): those position-wise parts run on the real positions
    only (``layers.positionwise``; ``BertLayer`` says why the numbers are the same)."""

    packed = False

    def __init__(self, config: ActBertConfig) -> None:
        super().__init__()
        width = config.tangled.hidden_size
        self.attention = TangledAttention(config)
        self.output = nn.ModuleDict({
            s: ResidualOutput(width, config.stream(s).hidden_size, config.stream(s).hidden_dropout,
                              config.stream(s).layer_norm_eps)
            for s in STREAMS
        })
        self.ffn = nn.ModuleDict({
            s: FeedForward(config.stream(s).hidden_size, config.stream(s).intermediate_size,
                           config.stream(s).hidden_dropout, config.stream(s).layer_norm_eps)
            for s in STREAMS
        })

    def forward(self, hidden: dict[str, torch.Tensor], bias: dict[str, torch.Tensor],
                need_probs: bool = False, projected: dict[str, dict[str, torch.Tensor]] | None = None,
                streams: tuple[str, ...] | None = None):
        """``projected``: precomputed ``TangledAttention.project`` outputs of some streams;
        ``streams``: the streams whose outputs are wanted (None: all; the others are not returned)."""
        contexts, probs = self.attention(hidden, bias, need_probs, projected, streams)
        out = {}
        for s, context in contexts.items():
            own = hidden[s].expand(context.shape[0], *hidden[s].shape[1:])  # a shared row: every row
            keep = real_positions(own, bias[s]) if self.packed and not need_probs else None
            out[s] = positionwise(lambda h, c, s=s: self.ffn[s](self.output[s](c, h)), keep, own, context)
        return out, probs
