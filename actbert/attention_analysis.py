"""Pure functions on ActBERT attention maps (``AttentionMap`` from ``actbert.tangled``).

All functions read sample 0 of the batch and return numpy arrays. ``head=None`` means the mean over
heads. Streams are joined in one token axis in the order text, action, region (``offsets``).

Word -> regions. ActBERT has no text-over-region attention; a word reaches regions only through a
tangled block's injected key/value pairs. We define it per tangled block as:

- ``kv_fusion="stack"``: text query w attends to the c_r pair of each action slot a with
  ``P_text->injected[w, a]``; c_r of slot a is ``sum_r P_action->region[a, r] v_r`` (Eq. 2). So
  ``word_region[r] = sum_a P_text->injected[w, a] * P_action->region[a, r]`` (its sum is the word's
  attention mass on the injected pairs, at most 1).
- ``kv_fusion="paddle"`` (no injected maps): the action slots that look at the word carry it to the
  regions they look at: ``word_region[r] = sum_a P_action->text[a, w] * P_action->region[a, r]``,
  normalised to sum 1.

The generated pairs go through ``context_key`` / ``context_value`` linear layers that mix heads, so
the action-over-region factor is always the mean over heads; the chosen head applies to the first
factor.

Attention rollout (Abnar & Zuidema, 2020), across the three streams. Each block becomes a row-
stochastic mixing matrix ``M`` over the joint token axis (L = L_text + L_action + L_region), with
head-mean probabilities P:

- a stream's own layer (block ``"<s>.<i>"``): rows of s are ``P_s->s`` on s's columns; the other
  streams' rows are the identity (they do not change in that block);
- a ``stack`` tangled block: text rows are ``P_text->text`` on text columns and
  ``P_text->injected @ P_action->region`` on region columns (the c_r pairs, composed through
  Eq. 2); action rows ``P_action->action`` and ``P_action->injected @ P_action->text`` on text
  columns (the c_w pairs, Eq. 1); region rows ``P_region->region`` and
  ``P_region->injected @ P_action->text``;
- a ``paddle`` tangled block: key j of text carries both text token j and the c_r of action slot
  n(j) = floor(j * L_action / L_text) (nearest resampling), so the weight ``P_text->text[i, j]``
  is split in half: ``0.5 P_text->text`` on text and ``0.5 P_text->text @ N_text @ P_action->region``
  on regions (N = the one-hot resampling matrix); regions likewise with c_w and
  ``P_action->text``; action rows are ``P_action->action`` (nothing is injected into action).

Residual connections are modelled as in the paper: ``A = 0.5 M + 0.5 I``; the rollout is
``R = A_D ... A_2 A_1`` in schedule order. Row i of R says how much each input token (of every
stream) contributes to output token i; rows sum to 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .config import STREAMS
from .tangled import AttentionMap

PAIR_ORDER = (("text", "text"), ("text", "injected"), ("action", "text"), ("action", "region"),
              ("action", "action"), ("action", "injected"), ("region", "region"),
              ("region", "injected"))
PAIR_TITLES = {
    ("text", "text"): "text over text",
    ("text", "injected"): "text over injected c_r pairs",
    ("action", "text"): "action over text (c_w, Eq. 1)",
    ("action", "region"): "action over regions (c_r, Eq. 2)",
    ("action", "action"): "action over action",
    ("action", "injected"): "action over injected c_w pairs",
    ("region", "region"): "region over region",
    ("region", "injected"): "region over injected c_w pairs",
}
STATISTICS = ("mass", "entropy", "max")


def blocks(maps: Sequence[AttentionMap]) -> list[str]:
    """Block names in schedule (depth) order."""
    seen: dict[str, int] = {}
    for m in maps:
        seen.setdefault(m.block, m.depth)
    return sorted(seen, key=seen.get)


def find(maps: Sequence[AttentionMap], block: str, query: str, key: str) -> AttentionMap | None:
    for m in maps:
        if m.block == block and m.query == query and m.key == key:
            return m
    return None


def block_pairs(maps: Sequence[AttentionMap], block: str) -> list[tuple[str, str]]:
    """The (query, key) pairs the block has, in ``PAIR_ORDER``."""
    present = {(m.query, m.key) for m in maps if m.block == block}
    return [p for p in PAIR_ORDER if p in present]


def num_heads(maps: Sequence[AttentionMap], block: str) -> int:
    for m in maps:
        if m.block == block:
            return int(m.probs.shape[1])
    raise KeyError(f"no block {block!r}; blocks are {blocks(maps)}")


def head_matrix(attention: AttentionMap, head: int | None = None) -> np.ndarray:
    """(L_query, L_key) probabilities of sample 0: one head, or the mean over heads (None)."""
    probs = attention.probs[0].detach().float().cpu().numpy()
    if head is None:
        return probs.mean(0)
    if not 0 <= head < probs.shape[0]:
        raise ValueError(f"head {head} out of range 0..{probs.shape[0] - 1}")
    return probs[head]


def stream_lengths(maps: Sequence[AttentionMap]) -> dict[str, int]:
    """L_s of every stream, read from the maps whose queries are that stream."""
    lengths: dict[str, int] = {}
    for m in maps:
        lengths.setdefault(m.query, int(m.probs.shape[2]))
    missing = [s for s in STREAMS if s not in lengths]
    if missing:
        raise ValueError(f"no attention map has queries of {missing}")
    return lengths


def offsets(lengths: dict[str, int]) -> dict[str, slice]:
    """Slices of each stream in the joint token axis (text, action, region)."""
    out, start = {}, 0
    for s in STREAMS:
        out[s] = slice(start, start + lengths[s])
        start += lengths[s]
    return out


@dataclass(frozen=True)
class WordRegions:
    """weights (L_region,) over region slots (slot 0 = the global token), summing to 1;
    mass: the raw total before normalisation; method: how it was defined (for captions)."""

    weights: np.ndarray
    mass: float
    method: str


def word_to_region(maps: Sequence[AttentionMap], block: str, word: int,
                   head: int | None = None) -> WordRegions:
    """How much text token ``word`` attends to each region through tangled block ``block``
    (definitions in the module docstring)."""
    action_region = find(maps, block, "action", "region")
    if action_region is None:
        raise ValueError(f"{block} is not a tangled block: words reach regions only in tangled blocks")
    p_ar = head_matrix(action_region, None)                                  # (L_a, L_r)
    injected = find(maps, block, "text", "injected")
    if injected is not None:
        p_ti = head_matrix(injected, head)                                  # (L_t, L_a)
        if not 0 <= word < p_ti.shape[0]:
            raise ValueError(f"word {word} out of range 0..{p_ti.shape[0] - 1}")
        raw = p_ti[word] @ p_ar
        method = ("text over the injected c_r pairs (one per action slot) composed with action "
                  "over regions (Eq. 2) of the same block")
    else:
        p_at = head_matrix(find(maps, block, "action", "text"), head)        # (L_a, L_t)
        if not 0 <= word < p_at.shape[1]:
            raise ValueError(f"word {word} out of range 0..{p_at.shape[1] - 1}")
        raw = p_at[:, word] @ p_ar
        method = ("no injected pairs (kv_fusion='paddle'): action over regions (Eq. 2) of each "
                  "action slot, weighted by that slot's attention to the word (Eq. 1)")
    mass = float(raw.sum())
    weights = raw / mass if mass > 0 else np.full_like(raw, 1.0 / len(raw))
    return WordRegions(weights, mass, method)


def nearest_matrix(length_out: int, length_in: int) -> np.ndarray:
    """(length_out, length_in) one-hot rows: output j takes input floor(j * length_in / length_out)."""
    n = np.zeros((length_out, length_in))
    n[np.arange(length_out), (np.arange(length_out) * length_in) // length_out] = 1.0
    return n


def block_mixing(maps: Sequence[AttentionMap], block: str, lengths: dict[str, int]) -> np.ndarray:
    """The (L, L) row-stochastic mixing matrix M of one block (module docstring), head-mean."""
    sl = offsets(lengths)
    total = sum(lengths.values())
    m = np.eye(total)
    mean = {(a.query, a.key): head_matrix(a) for a in maps if a.block == block}
    if not block.startswith("tangled."):
        (stream, _), = [k for k in mean if k[0] == k[1]]
        m[sl[stream], sl[stream]] = mean[(stream, stream)]
        return m
    p_at, p_ar = mean[("action", "text")], mean[("action", "region")]
    for s in STREAMS:
        m[sl[s], sl[s]] = 0.0
    if ("text", "injected") in mean:  # stack
        m[sl["text"], sl["text"]] = mean[("text", "text")]
        m[sl["text"], sl["region"]] = mean[("text", "injected")] @ p_ar
        m[sl["action"], sl["action"]] = mean[("action", "action")]
        m[sl["action"], sl["text"]] = mean[("action", "injected")] @ p_at
        m[sl["region"], sl["region"]] = mean[("region", "region")]
        m[sl["region"], sl["text"]] = mean[("region", "injected")] @ p_at
    else:  # paddle: added (not stacked) contexts, half the weight to each part of a key
        la = lengths["action"]
        p_tt, p_rr = mean[("text", "text")], mean[("region", "region")]
        m[sl["text"], sl["text"]] = 0.5 * p_tt
        m[sl["text"], sl["region"]] = 0.5 * p_tt @ nearest_matrix(lengths["text"], la) @ p_ar
        m[sl["region"], sl["region"]] = 0.5 * p_rr
        m[sl["region"], sl["text"]] = 0.5 * p_rr @ nearest_matrix(lengths["region"], la) @ p_at
        m[sl["action"], sl["action"]] = mean[("action", "action")]
    return m


def rollout(maps: Sequence[AttentionMap], upto: str | None = None) -> np.ndarray:
    """(L, L) attention rollout over the joint token axis through every block (or up to and
    including block ``upto``), residual identity included."""
    lengths = stream_lengths(maps)
    total = sum(lengths.values())
    result = np.eye(total)
    for block in blocks(maps):
        a = 0.5 * block_mixing(maps, block, lengths) + 0.5 * np.eye(total)
        result = a @ result
        if block == upto:
            break
    return result


def rollout_slice(matrix: np.ndarray, lengths: dict[str, int], query: str, key: str) -> np.ndarray:
    """The (L_query, L_key) part of a rollout: contributions of ``key`` inputs to ``query`` outputs."""
    sl = offsets(lengths)
    return matrix[sl[query], sl[key]]


def _statistic(p: np.ndarray, statistic: str) -> np.ndarray:
    """p (H, L_q, L_k) -> (H,) mean over queries of the statistic."""
    if statistic == "mass":
        return p.sum(-1).mean(-1)
    if statistic == "max":
        return p.max(-1).mean(-1)
    if statistic == "entropy":
        if p.shape[-1] < 2:
            return np.zeros(p.shape[0])
        q = p / np.clip(p.sum(-1, keepdims=True), 1e-12, None)
        ent = -(q * np.log(np.clip(q, 1e-12, None))).sum(-1)
        return (ent / np.log(p.shape[-1])).mean(-1)
    raise ValueError(f"statistic must be one of {STATISTICS}, got {statistic!r}")


def head_summary(maps: Sequence[AttentionMap], query: str, key: str,
                 statistic: str = "mass") -> tuple[list[str], np.ndarray]:
    """Layer x head grid for one stream pair: (block names, (n_blocks, H_max) values).

    Streams and tangled blocks may have different head counts (the shipped model: 12 text heads,
    6 tangled ones), so a block with fewer than ``H_max`` heads is NaN in its missing columns.
    ``mass``: mean over queries of the probability on these keys (for a stream's own keys in a
    stacked tangled block, the share not spent on the injected pairs); ``max``: mean over queries
    of the largest probability; ``entropy``: mean normalised entropy (0 = one key, 1 = uniform)."""
    names, rows = [], []
    for block in blocks(maps):
        found = find(maps, block, query, key)
        if found is None:
            continue
        names.append(block)
        rows.append(_statistic(found.probs[0].detach().float().cpu().numpy(), statistic))
    if not rows:
        raise ValueError(f"no block has {query} over {key}")
    grid = np.full((len(rows), max(len(r) for r in rows)), np.nan)
    for i, row in enumerate(rows):
        grid[i, :len(row)] = row
    return names, grid
