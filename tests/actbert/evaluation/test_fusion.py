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
from actbert.fusion_policy import (PLAIN_RRF, FusionPolicy, choose, content_words, coverage, fuse,  # noqa: E402
                                   shortlisted_first)


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
    chosen, tried = choose(lambda a, g, n, s: table.get((a, g), (0.0, 0.0)), 20.0,
                           alphas=(0.0, 1.0, 2.0), gammas=(0.0, 2.0), shortlists=(0,), semantics=(0.0,))
    assert chosen == {"alpha": 1.0, "gamma": 2.0, "shortlist": 0, "semantic": 0.0}  # 14.0, 12.0 lose
    # visual-only R@5; 10.0 ties: the first wins
    assert len(tried) == 5 and tried[0] == {"alpha": 0.0, "gamma": 0.0, "shortlist": 0, "semantic": 0.0,
                                            "r1_all": 5.0, "r5_visual_only": 20.0, "qualifies": True}


def test_choose_tries_each_shortlist_and_the_vector_row_once():
    # only the shortlist of 5 keeps the visual-only R@5; among its rows the best R@1 wins
    def measure(alpha, gamma, shortlist, semantic):
        if alpha == 0.0 and semantic == 0.0:
            return 9.0, 30.0
        return (12.0 + alpha + gamma, 25.0) if shortlist != 5 else (10.0 + alpha - gamma + semantic, 30.0)
    chosen, tried = choose(measure, 30.0, alphas=(0.0, 1.0, 2.0), gammas=(0.0, 1.0),
                           shortlists=(0, 5, 10), semantics=(0.0, 1.0))
    assert chosen == {"alpha": 2.0, "gamma": 0.0, "shortlist": 5, "semantic": 1.0}
    # per shortlist: (3 alphas x 2 semantics - the vector's own) x 2 gammas
    assert len(tried) == 1 + 3 * (3 * 2 - 1) * 2
    assert [t["shortlist"] for t in tried].count(0) == 1 + 10  # the vector row, then alpha or semantic > 0
    assert sum(t["qualifies"] for t in tried) == 1 + 10
    assert not any(t["alpha"] == 0.0 and t["semantic"] == 0.0 for t in tried[1:])
    # semantic 0 rows first: on a tie the narration's words alone win
    tie, _ = choose(lambda a, g, n, s: (10.0 if a or s else 5.0, 30.0), 30.0, alphas=(0.0, 1.0),
                    gammas=(0.0,), shortlists=(0,), semantics=(0.0, 1.0))
    assert tie == {"alpha": 1.0, "gamma": 0.0, "shortlist": 0, "semantic": 0.0}


def test_the_semantic_vote_is_weighed_by_its_cosine_and_counts_as_a_third_ranking():
    policy = FusionPolicy(alpha=1.0, gamma=2.0, semantic=0.5)
    assert policy.semantic_weight(0.8) == pytest.approx(0.5 * 0.64)
    assert policy.semantic_weight(-0.3) == 0.0  # no evidence
    assert FusionPolicy(semantic=2.0).semantic_weight(-0.3) == 2.0  # gamma 0: plain RRF weight
    assert PLAIN_RRF.semantic_weight(0.9) == 0.0  # the default uses no semantic ranking
    fused = fuse([4, 2], [2], {2: 0.5}, semantic_order=[9, 4], semantic_weights={9: 0.25, 4: 1.0})
    assert fused == pytest.approx({4: 1 / 61 + 1.0 / 62, 2: 1 / 62 + 0.5 / 61, 9: 0.25 / 61})
    assert fuse([4, 2], [2], {}) == pytest.approx(fuse([4, 2], [2], {}, semantic_order=[]))


def test_hybrid_grid_with_the_semantic_ranking_equals_the_fusion_of_each_query_by_hand():
    """Against a naive per-query fusion of three rankings: the vector, BM25 on the clips sharing a
    word (weight alpha x coverage^gamma), MiniLM on the narrated clips of positive cosine (weight
    semantic x cosine^gamma); a clip without narration gets no semantic vote."""
    rng = np.random.default_rng(3)
    words = ["crack", "egg", "bowl", "whisk", "pan", "salt", "the"]
    narrations = [" ".join(rng.choice(words, 3)) if c % 5 else "" for c in range(20)]
    texts = [" ".join(rng.choice(words, 3)) for _ in range(5)]
    vector = rng.normal(size=(5, 20))
    bm25 = np.where(rng.random((5, 20)) < 0.4, rng.random((5, 20)) + 0.1, 0.0)
    cosine = rng.uniform(-0.3, 0.9, size=(5, 20)) * np.array([bool(n) for n in narrations])[None, :]
    cover = coverage_grid(texts, narrations)
    policy = FusionPolicy(alpha=0.5, gamma=1.0, semantic=2.0)
    grid = hybrid_grid(vector, bm25, cover, policy, cosine)
    for q, text in enumerate(texts):
        by_hand = {c: 0.0 for c in range(20)}
        for rank, c in enumerate(sorted(range(20), key=lambda c: vector[q, c], reverse=True), start=1):
            by_hand[c] += 1 / (60 + rank)
        for rank, c in enumerate(sorted((c for c in range(20) if bm25[q, c] > 0), key=lambda c: bm25[q, c],
                                        reverse=True), start=1):
            by_hand[c] += 0.5 * coverage(text, narrations[c]) / (60 + rank)
        for rank, c in enumerate(sorted((c for c in range(20) if narrations[c] and cosine[q, c] > 0),
                                        key=lambda c: cosine[q, c], reverse=True), start=1):
            by_hand[c] += 2.0 * cosine[q, c] / (60 + rank)
        assert grid[q] == pytest.approx([by_hand[c] for c in range(20)])
    assert np.array_equal(hybrid_grid(vector, bm25, cover, FusionPolicy(alpha=0.5, gamma=1.0), cosine),
                          hybrid_grid(vector, bm25, cover, FusionPolicy(alpha=0.5, gamma=1.0)))
    with pytest.raises(ValueError, match="MiniLM cosines"):
        hybrid_grid(vector, bm25, cover, policy)
    assert FusionPolicy(alpha=0.0, gamma=1.0, semantic=2.0, shortlist=5, split="val", r1_all=1.0,
                        r5_visual_only=2.0, r5_visual_only_vector=2.0).describe().startswith(
        "narration weight 0 x coverage^1 + narration MiniLM weight 2 x cosine^1 inside the vector's top 5")


def test_a_shortlist_keeps_the_vectors_top_n_and_orders_them_by_the_fused_score():
    """Against a naive per-query fusion: RRF by hand, the vector's top N first, then the rest,
    each part by fused score; R@N of the hybrid is the vector's whatever the narration says."""
    rng = np.random.default_rng(2)
    words = ["crack", "egg", "bowl", "whisk", "pan", "salt", "the"]
    narrations = [" ".join(rng.choice(words, 3)) for _ in range(25)]
    texts = [" ".join(rng.choice(words, 3)) for _ in range(8)]
    vector = rng.normal(size=(8, 25))  # distinct scores: no ties
    bm25 = np.where(rng.random((8, 25)) < 0.5, rng.random((8, 25)) + 0.1, 0.0)
    cover = coverage_grid(texts, narrations)
    for n in (1, 5, 10):
        policy = FusionPolicy(alpha=2.0, gamma=1.0, shortlist=n)
        grid = hybrid_grid(vector, bm25, cover, policy)
        for q, text in enumerate(texts):
            order_vector = sorted(range(25), key=lambda c: vector[q, c], reverse=True)
            order_text = sorted((c for c in range(25) if bm25[q, c] > 0), key=lambda c: bm25[q, c],
                                reverse=True)
            by_hand = {}
            for rank, c in enumerate(order_vector, start=1):
                by_hand[c] = 1 / (60 + rank)
            for rank, c in enumerate(order_text, start=1):
                by_hand[c] += 2.0 * coverage(text, narrations[c]) / (60 + rank)
            top = set(order_vector[:n])
            expected = sorted(top, key=by_hand.get, reverse=True) + \
                sorted(set(range(25)) - top, key=by_hand.get, reverse=True)
            assert sorted(range(25), key=lambda c: grid[q, c], reverse=True) == expected
            weights = {c: policy.narration_weight(coverage(text, narrations[c])) for c in order_text}
            assert shortlisted_first(fuse(order_vector, order_text, weights), order_vector, n) == expected
            assert set(expected[:n]) == top  # R@N: the vector's
    plain = hybrid_grid(vector, bm25, cover, FusionPolicy(alpha=2.0, gamma=1.0))
    assert np.array_equal(plain, hybrid_grid(vector, bm25, cover, FusionPolicy(alpha=2.0, gamma=1.0,
                                                                                  shortlist=0)))
    assert FusionPolicy(alpha=1.0, gamma=1.0, shortlist=5, split="val", r1_all=1.0, r5_visual_only=2.0,
                        r5_visual_only_vector=2.0).describe().startswith(
        "narration weight 1 x coverage^1 inside the vector's top 5 (chosen on val")


def test_with_the_rerank_on_the_shortlist_is_the_reranked_orders_top_n():
    """Search with its rerank on serves the reranked vector order, and the hybrid's shortlist is
    that order's top N (not the embeddings'): by hand, per query, the RRF votes inside the
    reranked top N, so the hybrid's R@N is the served vector's."""
    rng = np.random.default_rng(5)
    embedding = rng.normal(size=(6, 20))
    reranked = embedding.copy()
    top = np.argsort(-embedding, axis=1)[:, :8]  # the top 8 reordered, as rerank_grid does
    np.put_along_axis(reranked, top, 10.0 + rng.random((6, 8)), axis=1)
    bm25 = np.where(rng.random((6, 20)) < 0.5, rng.random((6, 20)) + 0.1, 0.0)
    cover = rng.random((6, 20))
    policy = FusionPolicy(alpha=1.0, gamma=0.0, shortlist=3)
    grid = hybrid_grid(reranked, bm25, cover, policy)
    moved = 0
    for q in range(6):
        order_vector = sorted(range(20), key=lambda c: reranked[q, c], reverse=True)
        order_text = sorted((c for c in range(20) if bm25[q, c] > 0), key=lambda c: bm25[q, c], reverse=True)
        votes = {c: 1 / (60 + r) for r, c in enumerate(order_vector, start=1)}
        for r, c in enumerate(order_text, start=1):
            votes[c] += 1.0 / (60 + r)
        shortlist = set(order_vector[:3])
        moved += shortlist != set(np.argsort(-embedding[q])[:3].tolist())
        expected = sorted(shortlist, key=votes.get, reverse=True) + \
            sorted(set(range(20)) - shortlist, key=votes.get, reverse=True)
        assert sorted(range(20), key=lambda c: grid[q, c], reverse=True) == expected
    assert moved  # the rerank changed some query's top 3 (else this test could not tell them apart)


def test_ranked_grids_fuse_as_their_scores_do():
    """The fusion choice ranks each grid once (``Ranked``): every setting gives the grid the plain
    scores give, ties included."""
    from actbert.evaluation.fusion import Ranked

    rng = np.random.default_rng(9)
    vector = np.round(rng.normal(size=(5, 30)), 1)  # rounded: ties
    bm25 = np.where(rng.random((5, 30)) < 0.4, np.round(rng.random((5, 30)), 1) + 0.1, 0.0)
    semantic = np.where(rng.random((5, 30)) < 0.7, rng.normal(size=(5, 30)), 0.0)
    cover = rng.random((5, 30))
    ranked = [Ranked.of(g) for g in (vector, bm25, semantic)]
    for policy in (FusionPolicy(alpha=0.0, gamma=0.0), FusionPolicy(alpha=2.0, gamma=1.0, shortlist=5),
                   FusionPolicy(alpha=0.5, gamma=2.0, semantic=1.0), FusionPolicy(alpha=1.0, gamma=0.0,
                                                                                   semantic=2.0, shortlist=10)):
        plain = hybrid_grid(vector, bm25, cover, policy, semantic)
        assert np.array_equal(hybrid_grid(ranked[0], ranked[1], cover, policy, ranked[2]), plain)
