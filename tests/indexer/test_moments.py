"""The moment inside a video: every clip's relevance equals the search's score for the clips the
search returns; the best span follows its definition on hand-made scores; the span's video file
decodes, lasts the span, and shows the source's frames."""

from __future__ import annotations

import numpy as np
import pytest

from indexer.features.video import probe, read_frames_at
from indexer.index.moments import best_span, video_relevance
from indexer.index.search import Searcher
from indexer.library.preview import cut_span
from indexer.library.store import Library
from tests.app.tiny_library import build_tiny_library

QUERY = "crack an egg into the bowl"


@pytest.fixture(scope="module")
def tiny_library(tmp_path_factory):
    """Two SynthKitchen videos with random features and weights (tests/app/tiny_library.py)."""
    return build_tiny_library(tmp_path_factory.mktemp("moments"))


@pytest.mark.parametrize("scores, span", [
    ([0.1, 0.2, 0.9, 0.1], (2, 2)),              # one clip stands out
    ([0.1, 0.8, 0.9, 0.7, 0.1, 0.1], (1, 3)),    # median 0.1, threshold 0.5: three in a row
    ([0.9, 0.8, 0.1, 0.85, 0.1, 0.1, 0.1], (0, 1)),  # the run stops at the first low clip
    ([0.5, 0.5, 0.5], (0, 2)),                   # all alike: all reach the threshold
    ([0.3], (0, 0)),
])
def test_best_span_by_its_definition(scores, span):
    assert best_span(np.array(scores)) == span


def test_relevance_equals_the_search_scores(tiny_library):
    lib = Library(tiny_library, readonly=True)
    searcher = Searcher(lib)
    total = len(lib.catalog.clip_ids())
    hits = searcher.search(QUERY, k=total, mode="vector", rerank=0).hits
    assert len(hits) == total
    for video in lib.catalog.videos("done"):
        relevance = video_relevance(searcher, QUERY, video["video_id"])
        assert [c.clip_index for c in relevance.clips] == list(range(len(relevance.clips)))
        by_id = {c.clip_id: s for c, s in zip(relevance.clips, relevance.scores)}
        mine = [h for h in hits if h.clip.video_id == video["video_id"]]
        assert len(mine) == len(by_id)
        for hit in mine:
            assert by_id[hit.clip.clip_id] == pytest.approx(hit.score, abs=1e-5)
        first, last = relevance.span
        assert relevance.span == best_span(relevance.scores)
        assert relevance.span_sec == (relevance.clips[first].start_sec, relevance.clips[last].end_sec)


def test_span_file_lasts_the_span_and_shows_its_frames(tiny_library, tmp_path):
    lib = Library(tiny_library, readonly=True)
    clips = lib.catalog.clips_by_id(lib.catalog.clip_ids()[:3])
    clip = sorted(clips.values(), key=lambda c: c.clip_id)[1]
    source = lib.resolve_inside(clip.video_path)
    fps = probe(source).fps
    start, end = clip.start_sec, clip.start_sec + 3.0
    out = cut_span(lib, clip.video_path, start, end, tmp_path / "span.mp4")
    info = probe(out)
    assert info.codec == "h264"
    assert info.frame_count == round(3.0 * fps)
    assert info.duration_sec == pytest.approx(3.0, abs=1.5 / fps)
    # the cut's frames are the source's at the same times (H.264 is lossy: close, not equal)
    times = np.array([0.0, 1.0, 2.5])
    cut = read_frames_at(out, times).astype(np.float64)
    original = read_frames_at(source, start + times).astype(np.float64)
    other = read_frames_at(source, start + times + 1.5).astype(np.float64)
    error = np.abs(cut - original).mean()
    assert error < 6.0 and error < np.abs(cut - other).mean()
