"""The moment inside a video: how relevant each clip of one video is to a query, and its best span.

Relevance is the score the search's vector signal gives (``SearchHit.score``): the cosine of the
query's vector (``Searcher._encode``, the model's ``encode_text``) and the clip's stored vector in the
index, here for every clip of the video, not only the top K. So for a clip among a search's results,
its relevance equals that hit's ``score``.

The best span (``best_span``) is defined simply: take the best-scoring clip, then grow the run of
consecutive clips (in the video's order) around it while each neighbour scores at least halfway from
the video's median score to its best score. A video whose clips all score alike gives one clip; a
step told over three clips in a row gives those three.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from indexer.errors import LibraryError
from indexer.library.catalog import Clip

SHARE = 0.5  # how far from the median towards the best a neighbour must reach to join the span


@dataclass(frozen=True)
class VideoRelevance:
    """One query along one video. clips: the video's clips in time order; scores (C,) their cosine
    with the query; span: (first, last) indices of the best span, inclusive."""

    query: str
    video_id: str
    clips: list[Clip]
    scores: np.ndarray
    span: tuple[int, int]

    @property
    def span_sec(self) -> tuple[float, float]:
        """(start_sec, end_sec) of the best span on the video's timeline."""
        first, last = self.span
        return float(self.clips[first].start_sec), float(self.clips[last].end_sec)


def best_span(scores: np.ndarray, share: float = SHARE) -> tuple[int, int]:
    """(first, last), inclusive: the run of consecutive clips around the best one whose scores all
    reach ``median + share * (best - median)`` (see the module docstring)."""
    scores = np.asarray(scores, np.float64).reshape(-1)
    if scores.size == 0:
        raise ValueError("best_span needs at least one score")
    best = int(np.argmax(scores))
    median = float(np.median(scores))
    threshold = median + share * (float(scores[best]) - median)
    first = last = best
    while first > 0 and scores[first - 1] >= threshold:
        first -= 1
    while last < scores.size - 1 and scores[last + 1] >= threshold:
        last += 1
    return first, last


def video_relevance(searcher, query: str, video_id: str) -> VideoRelevance:
    """Every clip of ``video_id`` scored against ``query`` as the search's vector signal scores it
    (``searcher``: an ``indexer.index.search.Searcher``). ``LibraryError`` when the video has no
    finished clips or its clips have no vectors in the index."""
    rows = searcher.library.catalog.clips_of(video_id)
    found = searcher.library.catalog.clips_by_id(int(r["id"]) for r in rows)
    clips = sorted(found.values(), key=lambda c: c.clip_index)
    if not clips:
        raise LibraryError(f"video {video_id!r} has no finished clips in this library")
    try:
        vectors = np.stack([searcher.index.reconstruct(c.clip_id) for c in clips])
    except KeyError as exc:
        raise LibraryError(f"a clip of {video_id!r} has no vector in the index (`indexer repair LIB` "
                           "brings the index to the catalog)") from exc
    query_vector = searcher.query_vector(query)
    query_vector = query_vector / max(float(np.linalg.norm(query_vector)), 1e-12)
    scores = vectors.astype(np.float64) @ query_vector.astype(np.float64)
    return VideoRelevance(query, video_id, clips, scores, best_span(scores))
