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


# ---- fusion from evidence (actbert.fusion_policy) --------------------------------------------------

from actbert.evaluation.fusion import coverage_grid, hybrid_grid  # noqa: E402
from actbert.fusion_policy import PLAIN_RRF, FusionPolicy, choose, content_words, coverage, fuse  # noqa: E402


def test_coverage_counts_the_querys_content_words_by_hand():
    assert content_words("Crack an egg into the bowl") == {"crack", "egg", "bowl"}
    assert coverage("crack an egg into the bowl", "now the eggs go in the BOWL") == pytest.approx(1 / 3)
    assert coverage("crack an egg into the bowl", "crack the egg, bowl ready") == 1.0
    assert coverage("the of into", "anything") == 0.0  # no content word: no evidence


def test_plain_policy_is_rrf_and_weights_scale_the_narration_vote():
    vector, text = [4, 2, 9, 7], [9, 5, 4]
    assert fuse(vector, text, {}) == pytest.approx(rrf([vector, text]))
    policy = FusionPolicy(alpha=0.5, gamma=2.0)
    weights = {c: policy.narration_weight(w) for c, w in {9: 1.0, 5: 0.5, 4: 0.0}.items()}
    assert weights == {9: 0.5, 5: 0.125, 4: 0.0}
    fused = fuse(vector, text, weights)
    assert fused[9] == pytest.approx(1 / 63 + 0.5 / 61) and fused[5] == pytest.approx(0.125 / 62)
    assert fused[4] == pytest.approx(1 / 61)  # no evidence: the vector's vote alone
    assert PLAIN_RRF.narration_weight(0.0) == 1.0


def test_hybrid_grid_equals_search_fusion_of_each_query():
    rng = np.random.default_rng(1)
    words = ["crack", "egg", "bowl", "whisk", "pan", "salt", "the"]
    narrations = [" ".join(rng.choice(words, 3)) for _ in range(30)]
    texts = [" ".join(rng.choice(words, 3)) for _ in range(6)]
    vector = rng.normal(size=(6, 30))
    bm25 = np.where(rng.random((6, 30)) < 0.4, rng.random((6, 30)) + 0.1, 0.0)
    cover = coverage_grid(texts, narrations)
    policy = FusionPolicy(alpha=2.0, gamma=1.0)
    grid = hybrid_grid(vector, bm25, cover, policy)
    for q, text in enumerate(texts):
        order_vector = sorted(range(30), key=lambda c: vector[q, c], reverse=True)
        order_text = sorted((c for c in range(30) if bm25[q, c] > 0), key=lambda c: bm25[q, c], reverse=True)
        weights = {c: policy.narration_weight(coverage(text, narrations[c])) for c in order_text}
        expected = fuse(order_vector, order_text, weights)  # what indexer.index.search fuses
        assert grid[q] == pytest.approx([expected.get(c, 0.0) for c in range(30)])


def test_choose_keeps_the_best_r1_whose_visual_only_r5_holds():
    table = {(0.0, 0.0): (5.0, 20.0), (1.0, 0.0): (12.0, 10.0), (1.0, 2.0): (10.0, 21.0),
             (2.0, 2.0): (10.0, 25.0), (2.0, 0.0): (14.0, 19.9)}
    alpha, gamma, tried = choose(lambda a, g: table.get((a, g), (0.0, 0.0)), 20.0,
                                 alphas=(0.0, 1.0, 2.0), gammas=(0.0, 2.0))
    assert (alpha, gamma) == (1.0, 2.0)  # 14.0 and 12.0 lose visual-only R@5; 10.0 ties: first wins
    assert len(tried) == 5 and tried[0] == {"alpha": 0.0, "gamma": 0.0, "r1_all": 5.0,
                                            "r5_visual_only": 20.0, "qualifies": True}
