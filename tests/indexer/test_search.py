"""The query path against a real tiny library: index ids agree with the catalog through
deletions, hybrid search fuses by reciprocal rank, and the rerank equals the matching head."""

import numpy as np
import pytest
import torch

from actbert.data import VideoFeatures, clip_inputs, collate
from indexer.index.reconcile import update_index
from indexer.index.search import MODES, Searcher, build_index, plan_batches, rrf
from indexer.library.store import Library
from tests.app.tiny_library import build_tiny_library


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    return Library(build_tiny_library(tmp_path_factory.mktemp("search_library")))


def test_rrf_by_hand():
    fused = rrf([[1, 2, 3], [3, 1]], k=60)
    assert fused[1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[3] == pytest.approx(1 / 63 + 1 / 61)
    assert fused[2] == pytest.approx(1 / 62)


def test_plan_batches_trades_padding_against_batches():
    lengths = [5, 5, 5, 10, 10, 20]

    def padded(batches):
        assert [a for a, _ in batches] == [0] + [b for _, b in batches[:-1]] and batches[-1][1] == 6
        return sum((b - a) * lengths[b - 1] for a, b in batches)

    assert padded(plan_batches(lengths, cost=0)) == sum(lengths)  # free batches: no padding
    assert plan_batches(lengths, cost=10_000) == [(0, 6)]  # dear batches: one
    # By hand, slots + cost: 3 batches 55 + 3c, [(0, 5), (5, 6)] 70 + 2c, one 120 + c.
    assert plan_batches(lengths, cost=12) == [(0, 3), (3, 5), (5, 6)]  # 91 < 94 < 132
    assert plan_batches(lengths, cost=30) == [(0, 5), (5, 6)]  # 130 < 145, 150
    assert all(b - a <= 2 for a, b in plan_batches(lengths, most=2, cost=10_000))
    assert plan_batches([], cost=5) == []


def test_index_ids_agree_with_the_catalog_through_a_deletion(library):
    index = build_index(library)
    assert sorted(index.ids().tolist()) == library.catalog.clip_ids()
    video = library.catalog.videos("done")[0]["video_id"]
    removed = library.catalog.delete_video(video)
    index = update_index(library, removed, [])
    assert sorted(index.ids().tolist()) == library.catalog.clip_ids()
    assert not set(removed) & set(index.ids().tolist())


def test_hybrid_search_signals_scores_and_rerank(tmp_path):
    library = Library(build_tiny_library(tmp_path / "lib"))
    searcher = Searcher(library)
    with torch.no_grad():  # the tiny random model's head is near 0.5 for every pair: sharpen it
        for weight in searcher.model.heads["match"].parameters():
            weight.mul_(300.0)
    narration = library.catalog.query("SELECT narration FROM clips WHERE narration != '' LIMIT 1")[0][0]
    result = searcher.search(narration, k=5, rerank=50, mode="hybrid")
    assert 0 < len(result.hits) <= 5 and {"encode", "faiss", "narration", "rerank"} <= set(result.timings_ms)
    fused = [h.fused_score for h in result.hits]
    assert fused == sorted(fused, reverse=True)
    for hit in result.hits:
        assert set(hit.signals) <= {"vector", "narration"} and hit.signals
        assert (hit.score is not None) == ("vector" in hit.signals)
        assert (hit.narration_score is not None) == ("narration" in hit.signals)
    # The best narration match is found by the narration signal.
    assert any("narration" in h.signals and h.clip.narration == narration for h in result.hits)
    # Rerank scores (one text_state per query, model.match over the candidates batched together)
    # equal the matching head of an independent full forward of each (query, clip) pair alone.
    reranked = [h for h in result.hits if h.rerank_score is not None]
    assert reranked
    enc = searcher.tokenizer(narration)
    for hit in reranked:
        features = VideoFeatures.load(library.root / hit.clip.feature_path)
        batch = collate([clip_inputs(features, [hit.clip.clip_index], searcher.model.config.max_regions)])
        batch.pop("region_classes")
        with torch.no_grad():
            expected = searcher.model(text_ids=enc.ids, text_mask=enc.mask, **batch).match_score[0].item()
        assert hit.rerank_score == pytest.approx(expected, rel=1e-5, abs=1e-7)
    assert len({round(h.rerank_score, 6) for h in reranked}) > 1  # not a constant
    # Vector-only hits are ordered by rerank score; the cosine is the embedding's.
    vector = searcher.search(narration, k=5, rerank=50, mode="vector").hits
    assert [h.rerank_score for h in vector] == sorted((h.rerank_score for h in vector), reverse=True)
    text = searcher._encode(narration)[0]
    assert vector[0].score == pytest.approx(float(text @ searcher.index.reconstruct(vector[0].clip.clip_id)), abs=1e-4)
    with pytest.raises(ValueError, match="mode"):
        searcher.search("x", mode="fuzzy")
    assert MODES == ("hybrid", "vector", "narration")


def test_similar_excludes_the_clip_itself(library):
    searcher = Searcher(library)
    clip = library.catalog.clip_ids()[0]
    hits = searcher.similar(clip, k=3)
    assert hits and clip not in [h.clip.clip_id for h in hits]
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    assert np.isfinite(scores).all()


def test_the_index_serves_the_vector_evaluation_scores(tmp_path):
    """One clip contract: the vector FAISS holds for a clip equals the video embedding that
    ``actbert evaluate`` scores for it, with the model's own region limit (3 here, fewer than
    most clips have), and the library manifest records that limit."""
    from actbert.corpus import read_corpus
    from actbert.evaluation.scorer import ModelScorer
    from actbert.evaluation.tasks import load_split
    from actbert.model import ActBertForPretraining
    from actbert.tokenizer import ActBertTokenizer
    from indexer.index.embed import library_model_dir
    from indexer.library.export import export_corpus

    library = Library(build_tiny_library(tmp_path / "lib", max_regions=3))
    assert library.manifest.model.max_regions == 3
    index = Searcher(library).index
    split = load_split(read_corpus(export_corpus(library)), None)
    model = ActBertForPretraining.from_pretrained(library_model_dir(library))
    scorer = ModelScorer(model, ActBertTokenizer(), split)
    wide = ModelScorer(ActBertForPretraining.from_pretrained(library_model_dir(library)), ActBertTokenizer(),
                       split)
    wide.model.config = wide.model.config.replace(max_regions=36)  # the same weights, another limit
    clip_ids = {}
    for video in split.corpus.videos:
        clip_ids[video.video_id] = [r["id"] for r in library.catalog.clips_of(video.video_id)]
    differs = 0
    for c, clip in enumerate(split.clips):
        served = index.reconstruct(clip_ids[split.corpus.videos[clip.video].video_id][clip.index])
        scored = scorer._video_outputs([c])[0][2]
        np.testing.assert_allclose(served, scored, atol=1e-5)
        differs += not np.allclose(served, wide._video_outputs([c])[0][2], atol=1e-4)
    assert differs > 0  # the limit changes vectors on these clips, so the test can tell


def test_rerank_reuses_each_clips_video_state_until_its_feature_file_changes(tmp_path):
    """The video-only part of the matching forward runs once per clip (``Searcher.clip_states``),
    again only for the clips of a rewritten feature file; any batching of the candidates (sorted
    by region count, each batch padded to its own longest) gives the same scores."""
    import os

    library = Library(build_tiny_library(tmp_path / "lib"))
    searcher = Searcher(library)
    with torch.no_grad():
        for weight in searcher.model.heads["match"].parameters():
            weight.mul_(300.0)
    clips = list(library.catalog.clips_by_id(library.catalog.clip_ids()).values())
    first = searcher.clip_states(clips)
    lengths = [s.hidden["region"].shape[1] for s in first]
    assert len(set(lengths)) > 1  # unequal region counts: the batches are padded
    assert lengths == [searcher.clip_inputs(c).region_features.shape[0] for c in clips]
    assert all(a is b for a, b in zip(first, searcher.clip_states(clips)))
    query = clips[0].narration or "crack an egg"
    together = searcher.match_scores(query, clips, batch_size=len(clips))
    for size in (1, 3):
        apart = searcher.match_scores(query, clips, batch_size=size)
        assert apart.keys() == together.keys()
        assert all(apart[i] == pytest.approx(together[i], rel=1e-5, abs=1e-7) for i in together)
    assert len({round(v, 6) for v in together.values()}) > 1
    rewritten = clips[0].feature_path
    path = library.root / rewritten
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    again = searcher.clip_states(clips)
    for clip, old, new in zip(clips, first, again):
        assert (old is new) == (clip.feature_path != rewritten)
        torch.testing.assert_close(new.hidden["region"], old.hidden["region"])
