"""Reciprocal rank fusion (Cormack et al., 2009) of score grids, as hybrid search fuses rankings.

``indexer.index.search`` fuses the vector ranking and the narration rankings (BM25, and MiniLM when
the policy says so) of each query with ``sum 1 / (k + rank)``; evaluation does the same on (queries,
clips) score grids so that its ``actbert_hybrid`` row measures that fusion. A clip absent from a
ranking (BM25: no query word in its narration; MiniLM: cosine <= 0 or no narration) gets nothing from
it; tied scores share the best rank. Each narration vote is weighed by its evidence as
``actbert.fusion_policy`` defines (``hybrid_grid``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..fusion_policy import RRF_K as FUSION_RRF_K
from ..fusion_policy import FusionPolicy, content_words

RRF_K = FUSION_RRF_K


def ranks_from_scores(scores: np.ndarray) -> np.ndarray:
    """(Q, C) scores -> (Q, C) 1-based ranks, higher score first: 1 + the number of clips of the
    query scored strictly higher (ties share a rank)."""
    scores = np.asarray(scores, dtype=np.float64)
    descending = np.sort(-scores, axis=1)
    return 1 + np.stack([np.searchsorted(row, -s, side="left") for row, s in zip(descending, scores)])


@dataclass(frozen=True, eq=False)
class Ranked:
    """A (Q, C) score grid with its ranks computed once: the fusion choice on val fuses the same
    grids under each of its settings. ``rrf_grid`` and ``hybrid_grid`` take it wherever they take
    a score grid."""

    scores: np.ndarray
    ranks: np.ndarray

    @classmethod
    def of(cls, scores: np.ndarray) -> "Ranked":
        return cls(np.asarray(scores), ranks_from_scores(scores))


def _scores(grid) -> np.ndarray:
    return grid.scores if isinstance(grid, Ranked) else grid


def _ranks(grid) -> np.ndarray:
    return grid.ranks if isinstance(grid, Ranked) else ranks_from_scores(grid)


def rrf_grid(grids: Sequence[np.ndarray], present: Sequence[np.ndarray | None] | None = None,
             k: int = RRF_K) -> np.ndarray:
    """Fused (Q, C) scores: for each grid, ``1 / (k + rank)`` times its weight ``present`` (a
    (Q, C) bool mask or float weights, None = 1 for every clip), summed over grids."""
    present = present if present is not None else [None] * len(grids)
    if len(present) != len(grids):
        raise ValueError(f"{len(grids)} score grids but {len(present)} presence masks")
    fused = np.zeros(np.shape(_scores(grids[0])), np.float64)
    for grid, mask in zip(grids, present):
        contribution = 1.0 / (k + _ranks(grid))
        fused += contribution if mask is None else contribution * np.asarray(mask, np.float64)
    return fused


def coverage_grid(texts: Sequence[str], narrations: Sequence[str]) -> np.ndarray:
    """(Q, C) share of each query's content words in each clip's narration
    (``actbert.fusion_policy.coverage``)."""
    clips = [content_words(n) for n in narrations]
    out = np.zeros((len(texts), len(clips)), np.float64)
    for q, text in enumerate(texts):
        words = content_words(text)
        if words:
            out[q] = [len(words & c) / len(words) for c in clips]
    return out


def hybrid_grid(vector: np.ndarray, bm25: np.ndarray, cover: np.ndarray,
                policy: FusionPolicy, semantic: np.ndarray | None = None) -> np.ndarray:
    """What hybrid search computes over a (Q, C) grid: the vector ranking fused with the BM25
    ranking of the clips BM25 finds (score > 0), each weighted by ``policy`` from its coverage, and
    when ``policy.semantic`` > 0 with the semantic ranking of the clips whose narration's MiniLM
    cosine ``semantic`` (Q, C; 0 for a clip without narration) is above 0, weighted by the cosine;
    with a shortlist N, the vector's top N clips first (``fusion_policy.shortlisted_first``: the
    fused scores stay below 1, so adding 1 to the shortlisted clips puts them first; clips tied
    at the vector's N-th score all count as shortlisted). ``vector`` is the order search serves
    (the matching-head rerank's when the model's rerank is on), so the shortlist is its top N and
    the hybrid's top N are the vector's, reordered. Any grid may be ``Ranked`` (its ranks computed
    once)."""
    weight = policy.alpha * (cover ** policy.gamma if policy.gamma else np.ones_like(cover))
    grids, present = [vector, bm25], [None, (_scores(bm25) > 0) * weight]
    if policy.semantic:
        if semantic is None:
            raise ValueError("the fusion policy weighs the narration's meaning: give the MiniLM cosines")
        positive = np.clip(_scores(semantic), 0.0, None)
        grids.append(semantic)
        present.append((_scores(semantic) > 0) * policy.semantic *
                       (positive ** policy.gamma if policy.gamma else np.ones_like(positive)))
    fused = rrf_grid(grids, present, k=policy.k)
    if policy.shortlist > 0:
        fused = fused + (_ranks(vector) <= policy.shortlist)
    return fused
