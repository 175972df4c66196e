"""Does a head's attention predict what the score depends on? Attention against attribution.

For one (text, clip) pair with occlusion effects (``actbert.attribution``):

- A head's attention over the elements: for every map of its block whose keys are an element's
  stream, the attention the element receives, averaged over the map's queries and multiplied by
  the map's key count (1 = what a uniform head gives), averaged over those maps. The injected
  key/value pairs of a stacked tangled block stand for their action slots (one pair per slot).
  Scaling by the key count keeps streams of different lengths comparable: a uniform head scores
  every element 1, so it ranks nothing.
- Rollout (``attention_analysis.rollout``) over the same elements: the contribution of each
  element's input position to the positions the matching head reads (the text [CLS] for
  ``match_input="cls"``, position 0 of every stream for the fused poolers).
- Faithfulness = Spearman's rank correlation between those scores and the score drops (ties
  averaged; 0 when either side is constant, i.e. ranks nothing), over the elements the block
  covers (a text layer covers only words). A clip of a group is not an attention position.
- Deletion and insertion curves (Petsiuk et al., 2018): remove the elements in the order a map
  ranks them (most important first) and record the match probability after each removal;
  insertion starts from the pair with every element removed and puts them back in that order.
  Area = mean of the curve over the fraction removed (trapezoid): a faithful ranking has a low
  deletion area and a high insertion area.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from . import attention_analysis as aa
from .attribution import PairText, _video, match_scores
from .data import ClipInputs, Element, remove_elements
from .tangled import AttentionMap

_STREAM = {"word": "text", "region": "region", "action": "action"}


def pair_attentions(model, text: PairText, inputs: ClipInputs) -> tuple[AttentionMap, ...]:
    """Every attention map of the pair's forward pass (batch 1)."""
    with torch.no_grad():
        out = model(text_ids=text.ids[None], text_mask=text.mask[None], output_attentions=True,
                    heads=("match",), **_video([inputs]))
    return tuple(out.attentions)


def head_attention(maps: Sequence[AttentionMap], block: str,
                   elements: Sequence[Element]) -> np.ndarray:
    """(H, n) each head's attention over the elements (module docstring), NaN where the block
    has no keys of an element's stream."""
    found = [m for m in maps if m.block == block]
    heads = int(found[0].probs.shape[1])
    totals = {s: [] for s in ("text", "action", "region")}
    for m in found:
        stream = "action" if m.key == "injected" else m.key
        probs = m.probs[0].detach().float().cpu().numpy()          # (H, L_q, L_k)
        totals[stream].append(probs.mean(1) * probs.shape[-1])   # (H, L_k)
    out = np.full((heads, len(elements)), np.nan)
    for i, e in enumerate(elements):
        stream = _STREAM.get(e.kind)
        if stream and totals[stream]:
            out[:, i] = np.mean([t[:, e.index] for t in totals[stream]], 0)
    return out


def mean_attention(maps: Sequence[AttentionMap], elements: Sequence[Element]) -> np.ndarray:
    """(n,) every head of every block averaged (``head_attention``; NaN: no block covers it):
    "the attention" as one map, for the deletion and insertion curves."""
    stacked = np.concatenate([head_attention(maps, b, elements) for b in aa.blocks(maps)])
    covered = np.isfinite(stacked)
    total = np.where(covered, stacked, 0.0).sum(0)
    count = covered.sum(0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def rollout_attention(maps: Sequence[AttentionMap], elements: Sequence[Element],
                      match_input: str = "cls") -> np.ndarray:
    """(n,) rollout contribution of each element to what the matching head reads (NaN: a clip)."""
    lengths = aa.stream_lengths(maps)
    sl = aa.offsets(lengths)
    matrix = aa.rollout(maps)
    read = [sl["text"].start] if match_input == "cls" else [sl[s].start for s in sl]
    row = matrix[read].sum(0)
    return np.array([row[sl[_STREAM[e.kind]].start + e.index] if e.kind in _STREAM else np.nan
                     for e in elements])


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties given their average rank."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    for value in np.unique(x):
        tied = x == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Rank correlation over the entries finite in both: NaN when fewer than two (nothing to
    rank), 0 when either side is constant (it ranks nothing)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    if len(a) < 2:
        return float("nan")
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    ra, rb = _ranks(a), _ranks(b)
    return float(np.corrcoef(ra, rb)[0, 1])


@dataclass(frozen=True)
class Faithfulness:
    """grid (n_blocks, H_max): Spearman of each head's attention with the score drops (NaN where
    a block has fewer heads or covers fewer than two elements); rollout: the same for the
    rollout; blocks in schedule order."""

    blocks: tuple[str, ...]
    grid: np.ndarray
    rollout: float

    def unfaithful(self, threshold: float = 0.2) -> list[tuple[str, int]]:
        """(block, head) of heads whose attention does not predict the effect (rho < threshold)."""
        return [(b, h) for i, b in enumerate(self.blocks) for h in range(self.grid.shape[1])
                if np.isfinite(self.grid[i, h]) and self.grid[i, h] < threshold]

    def to_json(self) -> dict:
        return {"blocks": list(self.blocks),
                "rollout": None if not np.isfinite(self.rollout) else round(self.rollout, 6),
                "grid": [[None if not np.isfinite(v) else round(float(v), 6) for v in row]
                         for row in self.grid]}


def faithfulness(maps: Sequence[AttentionMap], elements: Sequence[Element], drop: np.ndarray,
                 match_input: str = "cls", rollout: bool = True) -> Faithfulness:
    """Per block x head and for the rollout: Spearman with ``drop`` (n,), the score lost when
    each element is removed (``-Attribution.match_effect``). ``rollout=False`` skips the rollout
    (NaN), which needs the maps of a whole forward pass."""
    names = aa.blocks(maps)
    per_block = [head_attention(maps, b, elements) for b in names]
    width = max(a.shape[0] for a in per_block)
    grid = np.full((len(names), width), np.nan)
    for i, att in enumerate(per_block):
        grid[i, :att.shape[0]] = [spearman(row, drop) for row in att]
    rolled = spearman(rollout_attention(maps, elements, match_input), drop) if rollout else np.nan
    return Faithfulness(tuple(names), grid, rolled)


@dataclass(frozen=True)
class Curve:
    """Match probability after removing the top 0..n elements (deletion) and after putting the
    top 0..n back into the fully removed pair (insertion); areas over the fraction removed."""

    order: tuple[int, ...]
    deletion: np.ndarray
    insertion: np.ndarray

    @staticmethod
    def area(curve: np.ndarray) -> float:
        return float(np.trapezoid(curve, dx=1.0 / max(1, len(curve) - 1)))

    @property
    def deletion_area(self) -> float:
        return self.area(self.deletion)

    @property
    def insertion_area(self) -> float:
        return self.area(self.insertion)

    def to_json(self) -> dict:
        return {"order": list(self.order), "deletion": self.deletion.round(6).tolist(),
                "insertion": self.insertion.round(6).tolist(),
                "deletion_area": round(self.deletion_area, 6),
                "insertion_area": round(self.insertion_area, 6)}


def curves(model, text: PairText, inputs: ClipInputs, elements: Sequence[Element],
           rankings: dict[str, np.ndarray]) -> dict[str, Curve]:
    """A deletion and an insertion curve per ranking (higher = more important; NaN ranks last),
    over the words, regions and action slots (clips of a group overlap their slots and are left
    out); every pair of every curve in one batched pass."""
    usable = [i for i, e in enumerate(elements) if e.kind in _STREAM]
    ids, videos, orders = [], [], {}
    for name, scores in rankings.items():
        key = np.nan_to_num(np.asarray(scores, float)[usable], nan=-np.inf)
        order = [usable[j] for j in np.argsort(-key, kind="stable")]
        orders[name] = order
        for removed in (lambda k: order[:k], lambda k: order[k:]):  # deletion, then insertion
            for k in range(len(order) + 1):
                t, v = remove_elements(text.ids, inputs, [elements[i] for i in removed(k)],
                                       text.mask_id)
                ids.append(t)
                videos.append(v)
    ids = torch.stack(ids)
    scores = match_scores(model, ids, text.mask.expand_as(ids), videos)
    out, n, start = {}, len(usable) + 1, 0
    for name, order in orders.items():
        out[name] = Curve(tuple(order), scores[start:start + n], scores[start + n:start + 2 * n])
        start += 2 * n
    return out
