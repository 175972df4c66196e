"""Evaluation's reciprocal rank fusion of score grids against search's fusion of ranked lists."""

import numpy as np
import pytest

from actbert.evaluation.fusion import ranks_from_scores, rrf_grid
from indexer.index.search import rrf


def test_ranks_share_the_best_rank_on_ties_by_hand():
    ranks = ranks_from_scores(np.array([[0.5, 0.9, 0.5, 0.1]]))
    assert ranks.tolist() == [[2, 1, 2, 4]]


def test_rrf_grid_equals_search_rrf_of_each_querys_rankings():
    rng = np.random.default_rng(0)
    queries, clips = 7, 40
    vector = rng.normal(size=(queries, clips))  # distinct scores: no ties
    bm25 = np.where(rng.random((queries, clips)) < 0.3, rng.random((queries, clips)) + 0.1, 0.0)
    fused = rrf_grid([vector, bm25], [None, bm25 > 0])
    for q in range(queries):
        order_vector = sorted(range(clips), key=lambda c: vector[q, c], reverse=True)
        order_text = sorted((c for c in range(clips) if bm25[q, c] > 0), key=lambda c: bm25[q, c],
                            reverse=True)
        expected = rrf([order_vector, order_text])  # what indexer.index.search fuses
        assert fused[q] == pytest.approx([expected.get(c, 0.0) for c in range(clips)])
    assert (fused[bm25 == 0] <= 1 / 61 + 1e-12).all()  # a clip BM25 did not find: vector only


def test_rrf_grid_needs_one_mask_per_grid():
    with pytest.raises(ValueError, match="2 score grids but 1"):
        rrf_grid([np.zeros((1, 2)), np.zeros((1, 2))], [None])
