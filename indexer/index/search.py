"""The query path: text -> ``encode_text`` -> FAISS top-K -> matching-head rerank -> hits.

Modes: ``vector`` (ActBERT embeddings, reranked by the matching head when that helps),
``narration`` (SQLite FTS5 BM25 over the transcripts) and ``hybrid`` (both, fused by reciprocal rank
fusion). Every hit says which signals found it and carries both scores; every search reports
per-stage milliseconds and which ordering it used, and why (``SearchResult.ordering``).

Ranking from evidence: by default (``rerank="auto"``) the FAISS candidates are reordered by the
matching head only when ``actbert evaluate --split val`` recorded, beside the model, that this
improves R@1 over the embeddings (``actbert.rerank_policy``); ``rerank=N`` forces a rerank of the
top N, ``rerank=0`` disables it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from actbert.data import ClipInputs, collate
from actbert.rerank_policy import Ordering, decide
from actbert.tokenizer import ActBertTokenizer
from indexer.errors import LibraryError, QueryError
from indexer.index.clip_index import ClipIndex
from indexer.index.embed import embed_library, library_model_dir, load_model
from indexer.library.catalog import Clip
from indexer.library.feature_cache import CLIP_INPUTS_CACHED, clip_model_inputs
from indexer.library.store import Library

log = logging.getLogger(__name__)

MODES = ("hybrid", "vector", "narration")
RRF_K = 60  # reciprocal rank fusion constant (Cormack et al., 2009)


@dataclass(frozen=True)
class SearchHit:
    """A clip found for a query, with the score of every signal that found it."""

    clip: Clip
    score: float | None            # cosine of query and clip vectors (vector signal)
    rerank_score: float | None     # matching-head probability that query and clip match
    narration_score: float | None  # FTS5 BM25 (narration signal)
    fused_score: float
    signals: tuple[str, ...]

    def as_dict(self) -> dict:
        c = self.clip
        return {"clip_id": c.clip_id, "video_id": c.video_id, "start_sec": c.start_sec,
                "end_sec": c.end_sec, "score": self.score, "rerank_score": self.rerank_score,
                "narration_score": self.narration_score, "fused_score": self.fused_score,
                "narration": c.narration, "signals": list(self.signals), "task": c.task}


@dataclass(frozen=True)
class SearchResult:
    query: str
    mode: str
    hits: list[SearchHit]
    timings_ms: dict[str, float] = field(default_factory=dict)
    ordering: str = ""  # the order the hits follow and why, in words
    rerank: int = 0     # vector candidates the matching head reordered (0: embedding order)


def describe_ordering(mode: str, order: Ordering, vectors: bool) -> str:
    """One line for the user: which signals ordered the hits, and the rerank decision."""
    if mode == "narration":
        return "narration BM25"
    if not vectors:
        return "narration BM25 only (the vector index is empty)" if mode == "hybrid" else \
            "no order (the vector index is empty)"
    return order.reason if mode == "vector" else \
        f"narration BM25 + {order.reason}, fused by reciprocal rank"


def rrf(rankings: list[list[int]], k: int = RRF_K) -> dict[int, float]:
    """Reciprocal rank fusion: sum over lists of 1 / (k + rank), ranks from 1."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank)
    return fused


class Searcher:
    """Loads the library's model, tokenizer and index once; answers queries from any thread."""

    def __init__(self, library: Library, checkpoint: str | Path | None = None) -> None:
        self.library = library
        self.checkpoint = library_model_dir(library, checkpoint)
        self.model = load_model(str(self.checkpoint))
        self.tokenizer = ActBertTokenizer()
        self.index = ClipIndex.load(library.root / "index", expected_model=library.manifest.get("model"),
                                    library=library.root)

    def _encode(self, query: str) -> np.ndarray:
        enc = self.tokenizer(query)
        with torch.no_grad():
            return self.model.encode_text(enc.ids, enc.mask).float().numpy()

    def clip(self, clip_id: int) -> Clip:
        """The catalog's clip ``clip_id``; ``LibraryError`` when there is none."""
        clip = self.library.catalog.clip(clip_id)
        if clip is None:
            raise LibraryError(f"no clip {clip_id} in this library")
        return clip

    def clip_inputs(self, clip: Clip) -> ClipInputs:
        """The clip's model inputs by the clip contract, with the model's region limit (cached)."""
        return clip_model_inputs(self.library, clip.feature_path, clip.clip_index,
                                 self.model.config.max_regions)

    @torch.no_grad()
    def match_scores(self, query: str, clips: list[Clip], batch_size: int = 64) -> dict[int, float]:
        """The matching head's probability that ``query`` describes each clip, by clip id.

        The query's text-only layers run once (``model.text_state``) and are shared by every
        candidate (``model.match``): the same numbers as a full forward per pair."""
        enc = self.tokenizer(query)
        text = self.model.text_state(enc.ids, enc.mask)
        scores: dict[int, float] = {}
        for start in range(0, len(clips), batch_size):
            chunk = clips[start:start + batch_size]
            batch = collate([self.clip_inputs(c) for c in chunk])
            batch.pop("region_classes")
            out = self.model.match(text, **batch)
            scores.update(zip((c.clip_id for c in chunk), out.match_score.tolist()))
        return scores

    def warm_up(self) -> None:
        """Run one query end to end and read the clips' inputs into the cache (as many as it
        holds), so the first user query after a launch costs what later ones do."""
        clips = self.library.catalog.clips_by_id(self.index.ids()[:CLIP_INPUTS_CACHED].tolist())
        for clip in clips.values():
            self.clip_inputs(clip)
        query = next((c.narration for c in clips.values() if c.narration.strip()), "warm up")
        self.search(query, k=10, rerank=min(50, max(1, len(clips))))

    def search(self, query: str, k: int = 10, rerank: int | str = "auto", mode: str = "hybrid",
               video: str | None = None, task: str | None = None) -> SearchResult:
        """Top ``k`` clips for ``query``; ``video`` / ``task`` filter the results. ``rerank``:
        ``"auto"`` reorders the FAISS candidates by the matching head when the model's recorded
        rerank policy says it improves R@1 (no policy: never), N > 0 always reranks the top N,
        0 never does (see the module docstring)."""
        if mode not in MODES:
            raise QueryError(f"mode must be one of {MODES}, got {mode!r}")
        if not query.strip():
            raise QueryError("empty query: type what happens in the clip")
        order = decide(rerank, self.checkpoint)
        rerank = order.rerank
        timings: dict[str, float] = {}
        pool = max(k, rerank) * (5 if (video or task) else 1)
        vector: dict[int, float] = {}
        reranked: dict[int, float] = {}
        narration: dict[int, float] = {}
        if mode in ("hybrid", "vector") and len(self.index):
            t0 = time.perf_counter()
            q = self._encode(query)
            timings["encode"] = (time.perf_counter() - t0) * 1e3
            t0 = time.perf_counter()
            scores, ids = self.index.search(q, min(pool, len(self.index)))
            timings["faiss"] = (time.perf_counter() - t0) * 1e3
            vector = {int(i): float(s) for s, i in zip(scores[0], ids[0]) if i >= 0}
        if mode in ("hybrid", "narration"):
            t0 = time.perf_counter()
            narration = dict(self.library.catalog.search_narration(query, pool))
            timings["narration"] = (time.perf_counter() - t0) * 1e3
        candidates = set(vector) | set(narration)
        rows = self.library.catalog.clips_by_id(candidates)
        if video or task:
            rows = {i: h for i, h in rows.items()
                    if (not video or h.video_id == video) and (not task or h.task == task)}
        if rerank and vector:
            t0 = time.perf_counter()
            top = [i for i in sorted(vector, key=vector.get, reverse=True) if i in rows][:rerank]
            reranked = self.match_scores(query, [rows[i] for i in top])
            timings["rerank"] = (time.perf_counter() - t0) * 1e3
        order_vector = sorted((i for i in vector if i in rows),
                              key=lambda i: (reranked.get(i, -1.0), vector[i]), reverse=True)
        order_text = sorted((i for i in narration if i in rows), key=narration.get, reverse=True)
        fused = rrf([order_vector, order_text])
        hits = []
        for clip_id in sorted(fused, key=fused.get, reverse=True)[:k]:
            signals = tuple(s for s, found in (("vector", clip_id in vector),
                                               ("narration", clip_id in narration)) if found)
            hits.append(SearchHit(
                clip=rows[clip_id], score=vector.get(clip_id), rerank_score=reranked.get(clip_id),
                narration_score=narration.get(clip_id), fused_score=fused[clip_id], signals=signals))
        timings["total"] = sum(timings.values())
        return SearchResult(query, mode, hits, {k_: round(v, 2) for k_, v in timings.items()},
                            ordering=describe_ordering(mode, order, bool(vector)),
                            rerank=rerank if reranked else 0)

    def similar(self, clip_id: int, k: int = 10) -> list[SearchHit]:
        """More like this: nearest clips by the clip's own vector."""
        try:
            scores, ids = self.index.similar(int(clip_id), k)
        except KeyError as exc:
            raise LibraryError(f"clip {clip_id} has no vector in the index (its video is not "
                               "finished; `indexer repair LIB` brings the index to the catalog)") from exc
        rows = self.library.catalog.clips_by_id(int(i) for i in ids if i >= 0)
        return [SearchHit(rows[int(i)], float(s), None, None, float(s), ("vector",))
                for s, i in zip(scores, ids) if int(i) in rows]


def build_index(library: Library, checkpoint: str | Path | None = None,
                model: dict | None = None) -> ClipIndex:
    """Embed every finished clip and write a fresh index (reindex), under the writer lock.

    ``checkpoint`` embeds with another model than the library's; ``model`` is the fingerprint the
    index manifest records (default: library.json's ``model``)."""
    with library.writing():
        net = load_model(str(library_model_dir(library, checkpoint)))
        vectors, ids = embed_library(library, net)
        record = model if model is not None else library.manifest.get("model")
        index = ClipIndex.build(vectors, ids, model=record) if len(ids) else \
            ClipIndex.empty(net.config.embed_size, model=record)
        index.save(library.root / "index")
        return index


def update_index(library: Library, removed: list[int] = (), video_ids: list[str] = ()) -> ClipIndex:
    """After a change of the catalog: the index brought to its finished clip ids (see
    ``indexer.index.reconcile``; ``removed`` and ``video_ids`` are implied by the catalog)."""
    from indexer.index.reconcile import reconcile_index

    index, _ = reconcile_index(library)
    return index
