"""Search's rerank policy on a real tiny library: ``auto`` follows the model's recorded evidence
(absent / helps / does not help / other weights), ``N`` forces, ``0`` disables; every result says
which ordering it used."""

import json

import pytest

from actbert.rerank_policy import POLICY_NAME, decide, make_policy, write_policy
from indexer.__main__ import main
from indexer.index.search import Searcher
from indexer.library.store import Library
from tests.app.tiny_library import build_tiny_library

QUERY = "crack an egg into the bowl"


@pytest.fixture(scope="module")
def searcher(tmp_path_factory):
    return Searcher(Library(build_tiny_library(tmp_path_factory.mktemp("policy_library")),
                            readonly=True))


def set_policy(checkpoint, helps, rerank_k=4):
    """No policy (None), or one whose val R@1 rises (True) or falls (False) with the rerank."""
    (checkpoint / POLICY_NAME).unlink(missing_ok=True)
    if helps is not None:
        r1 = (7.4, 14.8) if helps else (14.8, 7.4)
        write_policy(checkpoint, make_policy("val", *r1, [-3.0, 9.0], rerank_k, 27, "corpus.jsonl",
                                             checkpoint))


def embedding_order(hits):
    return [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_auto_without_a_policy_keeps_the_embedding_order(searcher):
    set_policy(searcher.checkpoint, None)
    result = searcher.search(QUERY, k=6, mode="vector")
    assert result.rerank == 0 and "rerank" not in result.timings_ms
    assert all(h.rerank_score is None for h in result.hits) and embedding_order(result.hits)
    assert result.ordering.startswith("embeddings (auto: no rerank policy recorded")


def test_auto_reranks_when_the_policy_says_it_helps(searcher):
    set_policy(searcher.checkpoint, True, rerank_k=4)
    result = searcher.search(QUERY, k=6, mode="vector")
    assert result.rerank == 4 and "rerank" in result.timings_ms
    assert result.ordering == ("matching head rerank of the top 4 (auto: it improved val R@1: "
                               "14.8 vs 7.4, 27 queries)")
    reranked = [h for h in result.hits if h.rerank_score is not None]
    assert len(reranked) == 4 and result.hits[:4] == reranked  # the reranked top 4 come first
    assert [h.rerank_score for h in reranked] == sorted((h.rerank_score for h in reranked), reverse=True)
    # The candidates are the embedding top 4, whatever their new order.
    plain = searcher.search(QUERY, k=6, mode="vector", rerank=0)
    assert {h.clip.clip_id for h in reranked} == {h.clip.clip_id for h in plain.hits[:4]}


def test_auto_keeps_the_embeddings_when_the_rerank_did_not_help(searcher):
    set_policy(searcher.checkpoint, False)
    result = searcher.search(QUERY, k=6, mode="vector")
    assert result.rerank == 0 and all(h.rerank_score is None for h in result.hits)
    assert embedding_order(result.hits)
    assert result.ordering == ("embeddings (auto: the matching-head rerank did not improve val R@1: "
                               "7.4 vs 14.8, 27 queries)")
    hybrid = searcher.search(QUERY, k=6)
    assert hybrid.ordering == f"narration BM25 + {result.ordering}, fused by reciprocal rank"
    assert searcher.search(QUERY, k=6, mode="narration").ordering == "narration BM25"


def test_explicit_values_override_the_policy(searcher):
    set_policy(searcher.checkpoint, False)
    forced = searcher.search(QUERY, k=6, mode="vector", rerank=3)
    assert forced.rerank == 3 and forced.ordering == "matching head rerank of the top 3 (forced)"
    assert sum(h.rerank_score is not None for h in forced.hits) == 3
    set_policy(searcher.checkpoint, True)
    off = searcher.search(QUERY, k=6, mode="vector", rerank=0)
    assert off.rerank == 0 and off.ordering == "embeddings (rerank disabled)"
    assert all(h.rerank_score is None for h in off.hits) and embedding_order(off.hits)
    for bad in (-1, "sometimes", 2.5):
        with pytest.raises(ValueError, match="rerank"):
            searcher.search(QUERY, rerank=bad)


def test_a_policy_of_other_weights_is_ignored(searcher, tmp_path):
    set_policy(searcher.checkpoint, True)
    path = searcher.checkpoint / POLICY_NAME
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "weights_sha256": "0" * 64}))
    order = decide("auto", searcher.checkpoint)
    assert order.rerank == 0 and "recorded for other weights" in order.reason
    assert decide("auto", tmp_path).reason.startswith("embeddings (auto: no rerank policy")


def test_cli_prints_and_returns_the_ordering(searcher, capsys):
    set_policy(searcher.checkpoint, False)
    root = str(searcher.library.root)
    assert main(["search", root, QUERY, "--mode", "vector", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rerank"] == 0 and out["ordering"].startswith("embeddings (auto: the matching-head")
    assert all(h["rerank_score"] is None for h in out["hits"])
    assert main(["search", root, QUERY, "--rerank", "2"]) == 0
    assert "order: narration BM25 + matching head rerank of the top 2 (forced)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["search", root, QUERY, "--rerank", "-1"])
    assert "expected auto or a number" in capsys.readouterr().err


def test_hybrid_weighs_the_narration_by_the_models_fusion_policy(searcher):
    from actbert.fusion_policy import FUSION_NAME, coverage, make_policy as make_fusion, write_fusion
    from indexer.index.search import rrf

    set_policy(searcher.checkpoint, None)
    path = searcher.checkpoint / FUSION_NAME
    try:
        plain = searcher.search(QUERY, k=50, mode="hybrid")
        assert plain.ordering.endswith(", fused by reciprocal rank")
        vector = [h.clip.clip_id for h in searcher.search(QUERY, k=50, mode="vector").hits]
        text = [h.clip.clip_id for h in searcher.search(QUERY, k=50, mode="narration").hits]
        expected = rrf([vector, text])
        assert [h.fused_score for h in plain.hits] == pytest.approx(
            sorted(expected.values(), reverse=True)[:len(plain.hits)])
        write_fusion(searcher.checkpoint, make_fusion(0.5, 2.0, "val", 9, 1.0, 2.0, 2.0, [], "c",
                                                      searcher.checkpoint))
        weighed = searcher.search(QUERY, k=50, mode="hybrid")
        assert "narration weight 0.5 x coverage^2 (chosen on val" in weighed.ordering
        narration = {h.clip.clip_id: h.clip.narration for h in weighed.hits}
        for hit in weighed.hits:  # each fused score by hand
            c = hit.clip.clip_id
            by_hand = (1 / (60 + vector.index(c) + 1) if c in vector else 0.0) + \
                (0.5 * coverage(QUERY, narration[c]) ** 2 / (60 + text.index(c) + 1) if c in text else 0.0)
            assert hit.fused_score == pytest.approx(by_hand)
        assert [h.fused_score for h in weighed.hits] == sorted((h.fused_score for h in weighed.hits), reverse=True)
        # a shortlist: the embeddings' top 3 first, each part by the same fused scores
        write_fusion(searcher.checkpoint, make_fusion(0.5, 2.0, "val", 9, 1.0, 2.0, 2.0, [], "c",
                                                      searcher.checkpoint, shortlist=3))
        short = searcher.search(QUERY, k=50, mode="hybrid", rerank=0)
        assert "narration weight 0.5 x coverage^2 inside the vector's top 3 (chosen on val" in short.ordering
        assert {h.clip.clip_id for h in short.hits[:3]} == set(vector[:3]) != \
            {h.clip.clip_id for h in weighed.hits[:3]}
        scores = {h.clip.clip_id: h.fused_score for h in weighed.hits}
        assert [h.fused_score for h in short.hits] == pytest.approx([scores[h.clip.clip_id] for h in short.hits])
        for part in (short.hits[:3], short.hits[3:]):
            assert [h.fused_score for h in part] == sorted((h.fused_score for h in part), reverse=True)
        # with the rerank on, the shortlist is the served (reranked) vector order's top 3
        reranked = [h.clip.clip_id for h in searcher.search(QUERY, k=50, mode="vector", rerank=10).hits]
        assert set(reranked[:3]) != set(vector[:3])  # the rerank moved them: the two can be told apart
        served = searcher.search(QUERY, k=50, mode="hybrid", rerank=10)
        assert {h.clip.clip_id for h in served.hits[:3]} == set(reranked[:3])
    finally:
        path.unlink(missing_ok=True)


def test_a_policy_with_a_semantic_weight_fuses_the_narrations_minilm_ranking(searcher):
    """The third ranking: every narrated clip by the MiniLM cosine of its narration and the query
    (computed here from the catalog with the encoder directly), each vote weighed by the policy;
    the fused scores by hand from the three rankings."""
    import numpy as np

    from actbert.fusion_policy import FUSION_NAME, coverage, make_policy as make_fusion, write_fusion
    from actbert.sentence_encoder import MiniLMEncoder

    set_policy(searcher.checkpoint, None)
    path = searcher.checkpoint / FUSION_NAME
    catalog = searcher.library.catalog
    narrated = catalog.narrated_clips()
    assert narrated and all(text for _, text in narrated)
    encoder = MiniLMEncoder()
    cosine = encoder.encode([t for _, t in narrated]) @ encoder.encode([QUERY])[0]
    by_meaning = [(clip_id, float(c)) for (clip_id, _), c in zip(narrated, cosine) if c > 0]
    by_meaning.sort(key=lambda x: x[1], reverse=True)
    try:
        vector = [h.clip.clip_id for h in searcher.search(QUERY, k=50, mode="vector", rerank=0).hits]
        text = [h.clip.clip_id for h in searcher.search(QUERY, k=50, mode="narration").hits]
        write_fusion(searcher.checkpoint, make_fusion(0.5, 1.0, "val", 9, 1.0, 2.0, 2.0, [], "c",
                                                      searcher.checkpoint, semantic=2.0))
        result = searcher.search(QUERY, k=50, mode="hybrid", rerank=0)
        assert "narration BM25 + narration MiniLM + " in result.ordering
        assert "narration MiniLM weight 2 x cosine^1" in result.ordering
        assert "semantic" in result.timings_ms
        meaning = dict(by_meaning[:50])
        order_meaning = [c for c, _ in by_meaning[:50]]
        narration = {c: t for c, t in narrated}
        found = {h.clip.clip_id: h for h in result.hits}
        for clip_id, hit in found.items():
            by_hand = (1 / (60 + vector.index(clip_id) + 1) if clip_id in vector else 0.0)
            if clip_id in text:
                by_hand += 0.5 * coverage(QUERY, narration[clip_id]) / (60 + text.index(clip_id) + 1)
            if clip_id in meaning:
                by_hand += 2.0 * meaning[clip_id] / (60 + order_meaning.index(clip_id) + 1)
                assert hit.semantic_score == pytest.approx(meaning[clip_id], abs=1e-5)
                assert "semantic" in hit.signals
            else:
                assert hit.semantic_score is None and "semantic" not in hit.signals
            assert hit.fused_score == pytest.approx(by_hand, rel=1e-5)
        assert [h.fused_score for h in result.hits] == sorted((h.fused_score for h in result.hits), reverse=True)
        assert set(order_meaning) <= set(found)  # every clip the meaning ranks is a candidate
        assert np.isclose(result.hits[0].as_dict()["semantic_score"] or 0.0,
                          meaning.get(result.hits[0].clip.clip_id, 0.0), atol=1e-5)
        # vector and narration modes never read the meaning
        assert all(h.semantic_score is None for h in searcher.search(QUERY, k=50, mode="vector").hits)
    finally:
        path.unlink(missing_ok=True)
