"""The query path against a real tiny library: index ids agree with the catalog through
deletions, hybrid search fuses by reciprocal rank, and the rerank equals the matching head."""

import numpy as np
import pytest
import torch

from actbert.data import VideoFeatures, clip_inputs, collate
from indexer.index.search import MODES, Searcher, build_index, rrf, update_index
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
    from actbert.evaluate_tasks import ModelScorer, load_split
    from actbert.model import ActBertForPretraining
    from actbert.tokenizer import ActBertTokenizer
    from indexer.index.embed import library_model_dir
    from indexer.library.export import export_corpus

    library = Library(build_tiny_library(tmp_path / "lib", max_regions=3))
    assert library.manifest["model"]["max_regions"] == 3
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
