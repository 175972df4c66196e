"""Reciprocal rank fusion (Cormack et al., 2009) of score grids, as hybrid search fuses rankings.

``indexer.index.search`` fuses the vector ranking and the narration BM25 ranking of each query with
``sum 1 / (k + rank)``; evaluation does the same on (queries, clips) score grids so that its
``actbert_hybrid`` row measures that fusion. A clip absent from a ranking (BM25: no query word in
its narration) gets nothing from it; tied scores share the best rank.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RRF_K = 60


def ranks_from_scores(scores: np.ndarray) -> np.ndarray:
    """(Q, C) scores -> (Q, C) 1-based ranks, higher score first: 1 + the number of clips of the
    query scored strictly higher (ties share a rank)."""
    scores = np.asarray(scores, dtype=np.float64)
    descending = np.sort(-scores, axis=1)
    return 1 + np.stack([np.searchsorted(row, -s, side="left") for row, s in zip(descending, scores)])


def rrf_grid(grids: Sequence[np.ndarray], present: Sequence[np.ndarray | None] | None = None,
             k: int = RRF_K) -> np.ndarray:
    """Fused (Q, C) scores: for each grid, ``1 / (k + rank)`` where ``present`` (a (Q, C) bool
    mask, None = every clip) holds, summed over grids."""
    present = present if present is not None else [None] * len(grids)
    if len(present) != len(grids):
        raise ValueError(f"{len(grids)} score grids but {len(present)} presence masks")
    fused = np.zeros(np.shape(grids[0]), np.float64)
    for grid, mask in zip(grids, present):
        contribution = 1.0 / (k + ranks_from_scores(grid))
        fused += contribution if mask is None else np.where(mask, contribution, 0.0)
    return fused
