"""Building blocks shared by every stream: one attention kernel and the post-LN BERT layer.

Module names inside a layer are BERT's (``attention.self.query``, ``attention.output.LayerNorm``,
``intermediate.dense``, ``output.dense``) so that BERT checkpoints load through a short prefix map.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .dropout import Dropout, dropout as apply_dropout

# Additive bias for padded keys, as BERT and PaddleVideo: large enough that exp() underflows to 0.
MASK_BIAS = -10000.0


def mask_to_bias(mask: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(B, L) mask with 1 = real element -> (B, 1, 1, L) additive attention bias (0 or -10000)."""
    return ((1.0 - mask.to(dtype)) * MASK_BIAS)[:, None, None, :]


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B, L, H * D) -> (B, H, L, D)."""
    batch, length, width = x.shape
    return x.view(batch, length, num_heads, width // num_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, H, L, D) -> (B, L, H * D)."""
    batch, heads, length, size = x.shape
    return x.transpose(1, 2).reshape(batch, length, heads * size)


def attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    bias: torch.Tensor,
    dropout: float = 0.0,
    need_probs: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Scaled dot-product attention over (B, H, L, D) tensors with an additive key bias.

    Returns the context (B, H, L_query, D) and, when ``need_probs``, the probabilities
    (B, H, L_query, L_key). The context always comes from ``F.scaled_dot_product_attention`` so
    outputs are the same whether or not probabilities are requested; the probabilities are
    computed exactly (softmax of the scaled scores) beside it. With dropout on a CPU the kernel's
    own math path is spelled out (the same scores, softmax, dropout on the probabilities, weighted
    sum) so that the dropout draws with ``dropout.keep_mask``.
    """
    if dropout and query.device.type == "cpu":
        probs = attention_probs(query, key, bias)
        return apply_dropout(probs, dropout) @ value, (probs if need_probs else None)
    context = F.scaled_dot_product_attention(
        query, key, value, attn_mask=bias.to(query.dtype), dropout_p=dropout
    )
    probs = attention_probs(query, key, bias) if need_probs else None
    return context, probs


def attention_probs(query: torch.Tensor, key: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """The exact attention probabilities softmax(q k^T / sqrt(D) + bias), (B, H, L_q, L_k)."""
    scores = query @ key.transpose(-1, -2) / query.shape[-1] ** 0.5
    return torch.softmax(scores.float() + bias.float(), dim=-1).to(query.dtype)


class SelfAttention(nn.Module):
    """BERT's ``attention.self``: query/key/value projections and multi-head attention."""

    def __init__(self, hidden_size: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.dropout = dropout
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)

    def forward(self, hidden: torch.Tensor, bias: torch.Tensor, need_probs: bool = False,
                first_only: bool = False):
        """hidden (B, L, D) -> context (B, L, D) and probs (B, H, L, L) or None; ``first_only``:
        position 0's query alone, context (B, 1, D) and probs (B, H, 1, L)."""
        drop = self.dropout if self.training else 0.0
        if first_only and not drop:
            return self._first(hidden, bias, need_probs)
        q = split_heads(self.query(hidden[:, :1] if first_only else hidden), self.num_heads)
        k, v = (split_heads(proj(hidden), self.num_heads) for proj in (self.key, self.value))
        context, probs = attention(q, k, v, bias, drop, need_probs)
        return merge_heads(context), probs

    def _first(self, hidden: torch.Tensor, bias: torch.Tensor, need_probs: bool):
        """Position 0's context without projecting every key and value. With q_h head h's query
        of position 0 and K_h, k_h (d, D), (d,) its key weight and bias: q_h . (K_h x_j + k_h) =
        (K_h^T q_h) . x_j + q_h . k_h, and the last term, the same for every key j, leaves the
        softmax unchanged; sum_j p_j (V_h x_j + v_h) = V_h (sum_j p_j x_j) + v_h as the p_j sum
        to 1. O(H L D) multiply-adds for the keys and values instead of O(L D^2)."""
        batch, length, width = hidden.shape
        heads = self.num_heads
        size = self.query.out_features // heads
        q = self.query(hidden[:, 0]).view(batch, heads, size)
        keys = torch.einsum("bhe,hew->bhw", q, self.key.weight.view(heads, size, width))
        scores = torch.bmm(keys, hidden.transpose(1, 2)) * size ** -0.5  # (B, H, L)
        probs = torch.softmax(scores.float() + bias[:, 0].float(), dim=-1).to(hidden.dtype)
        mixed = torch.bmm(probs, hidden)  # (B, H, D)
        context = (torch.einsum("bhw,hew->bhe", mixed, self.value.weight.view(heads, size, width))
                   + self.value.bias.view(heads, size))
        return context.reshape(batch, 1, heads * size), (probs[:, :, None] if need_probs else None)


class ResidualOutput(nn.Module):
    """BERT's ``*.output``: dense projection, dropout, residual add, post-LayerNorm."""

    def __init__(self, in_size: int, out_size: int, dropout: float, eps: float) -> None:
        super().__init__()
        self.dense = nn.Linear(in_size, out_size)
        self.LayerNorm = nn.LayerNorm(out_size, eps=eps)  # noqa: N815 (BERT's name)
        self.dropout = Dropout(dropout)

    def forward(self, hidden: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden)) + residual)


class Intermediate(nn.Module):
    """BERT's ``intermediate``: dense + exact (erf) GELU."""

    def __init__(self, hidden_size: int, intermediate_size: int) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden_size, intermediate_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(hidden))


class FeedForward(nn.Module):
    """The position-wise feed-forward half of a BERT layer (``intermediate`` + ``output``)."""

    def __init__(self, hidden_size: int, intermediate_size: int, dropout: float, eps: float):
        super().__init__()
        self.intermediate = Intermediate(hidden_size, intermediate_size)
        self.output = ResidualOutput(intermediate_size, hidden_size, dropout, eps)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.output(self.intermediate(hidden), hidden)


class Attention(nn.Module):
    """BERT's ``attention``: self-attention followed by its residual output."""

    def __init__(self, hidden_size: int, num_heads: int, dropout: float, attn_dropout: float,
                 eps: float) -> None:
        super().__init__()
        self.self = SelfAttention(hidden_size, num_heads, attn_dropout)
        self.output = ResidualOutput(hidden_size, hidden_size, dropout, eps)

    def forward(self, hidden: torch.Tensor, bias: torch.Tensor, need_probs: bool = False,
                first_only: bool = False):
        """``first_only``: only position 0 is queried and returned (B, 1, D); keys and values
        still come from every position."""
        context, probs = self.self(hidden, bias, need_probs, first_only)
        return self.output(context, hidden[:, :1] if first_only else hidden), probs


def real_positions(hidden: torch.Tensor, bias: torch.Tensor, most: float = 0.875) -> torch.Tensor | None:
    """The flat indices (into B * L) of the real positions of ``hidden`` (B, L, D) by its (B, 1, 1,
    L) key bias, or None when more than ``most`` of the positions are real (packing would save
    little) or the bias is broadcast over the batch."""
    if bias.shape[0] != hidden.shape[0] or bias.shape[-1] != hidden.shape[1]:
        return None
    real = (bias.reshape(bias.shape[0], bias.shape[-1]) == 0).reshape(-1)
    count = int(real.sum())
    return None if count > most * real.numel() else real.nonzero().squeeze(1)


def positionwise(layer: Callable[..., torch.Tensor], keep: torch.Tensor | None,
                 *inputs: torch.Tensor) -> torch.Tensor:
    """``layer(*inputs)`` for a position-wise layer of (B, L, D_i) inputs whose output has the
    first input's shape, computed on the ``keep`` positions only (``real_positions``; None: all);
    every other position keeps the first input."""
    if keep is None:
        return layer(*inputs)
    flat = [x.reshape(-1, x.shape[-1]) for x in inputs]
    out = layer(*(x.index_select(0, keep) for x in flat))
    return flat[0].index_copy(0, keep, out).view(inputs[0].shape)


class BertLayer(nn.Module):
    """A standard post-LN transformer layer with BERT's module names.

    ``packed`` (set by the trainer on CPUs): the position-wise parts (the projections, the output
    and feed-forward layers: most of the multiply-adds) run on the real positions only, as
    unpadded BERT training does, and only the attention itself sees the padded (B, L) layout. A
    padded key's bias (-10000) makes its softmax weight exactly 0 whatever its value, so the real
    positions get the same numbers; a padded position keeps its input (its output is never read).
    """

    packed = False

    def __init__(self, hidden_size: int, num_heads: int, intermediate_size: int,
                 dropout: float = 0.1, attn_dropout: float = 0.1, eps: float = 1e-12) -> None:
        super().__init__()
        self.attention = Attention(hidden_size, num_heads, dropout, attn_dropout, eps)
        self.intermediate = Intermediate(hidden_size, intermediate_size)
        self.output = ResidualOutput(intermediate_size, hidden_size, dropout, eps)

    def forward(self, hidden: torch.Tensor, bias: torch.Tensor, need_probs: bool = False,
                first_only: bool = False, wanted: torch.Tensor | None = None):
        """hidden (B, L, D), bias (B, 1, 1, L) -> hidden (B, L, D), probs (B, H, L, L) or None.

        ``first_only``: the output at position 0 alone, (B, 1, D) (and probs (B, H, 1, L)), the
        same numbers as ``[:, :1]`` of the full output: what a pooler reading position 0 needs
        of a stream's last layer (every position still gives keys and values).

        ``wanted`` (B, L) bool: the positions whose output is read (a training pass whose losses
        read a few, e.g. the masked words): only they are queried and run the output and
        feed-forward layers, the same numbers there; every other position keeps its input."""
        exact = need_probs or first_only
        keep = (real_positions(hidden, bias, most=1.0 if wanted is not None else 0.875)
                if (self.packed or wanted is not None) and not exact else None)
        if keep is not None:
            queries = None if wanted is None else wanted.reshape(-1)[keep].nonzero().squeeze(1)
            return positionwise(lambda x: self._on_rows(x, keep, bias, queries), keep, hidden), None
        attended, probs = self.attention(hidden, bias, need_probs, first_only)
        return self.output(self.intermediate(attended), attended), probs

    def _on_rows(self, x: torch.Tensor, keep: torch.Tensor, bias: torch.Tensor,
                 queries: torch.Tensor | None = None) -> torch.Tensor:
        """The layer on the ``keep`` rows ``x`` (N, D) of a (B, L) batch (``bias``): only the
        attention sees the padded layout (zeros at the padded positions). ``queries``: the rows
        of ``x`` whose output is wanted (None: all); the others keep their input."""
        batch, length = bias.shape[0], bias.shape[-1]
        sa = self.attention.self

        def padded(rows: torch.Tensor, at: torch.Tensor) -> torch.Tensor:  # -> (B, H, L, D / H)
            full = rows.new_zeros(batch * length, rows.shape[1]).index_copy(0, at, rows)
            return split_heads(full.view(batch, length, -1), sa.num_heads)

        asked, at = (x, keep) if queries is None else (x.index_select(0, queries), keep[queries])
        q = padded(sa.query(asked), at)
        k, v = (padded(proj(x), keep) for proj in (sa.key, sa.value))
        context, _ = attention(q, k, v, bias, sa.dropout if sa.training else 0.0)
        context = merge_heads(context).reshape(batch * length, -1).index_select(0, at)
        attended = self.attention.output(context, asked)
        out = self.output(self.intermediate(attended), attended)
        return out if queries is None else x.index_copy(0, queries, out)
