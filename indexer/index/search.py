"""The query path: text -> ``encode_text`` -> FAISS top-K -> matching-head rerank -> hits.

Modes: ``vector`` (ActBERT embeddings, reranked by the matching head when that helps),
``narration`` (SQLite FTS5 BM25 over the transcripts) and ``hybrid`` (both, fused by reciprocal rank
fusion, the narration's vote weighed by its evidence as the model's ``fusion_policy.json`` records,
``actbert.fusion_policy``, inside the vector's top N when it records a shortlist, and with the
narration's meaning, MiniLM cosines, as a third ranking when it gives that a weight,
``indexer.index.narration_meaning``; plain RRF of the embeddings and BM25 without a policy).
Every hit says which signals found it and carries each signal's score; every search reports
per-stage milliseconds and which ordering it used, and why (``SearchResult.ordering``).

Ranking from evidence: by default (``rerank="auto"``) the FAISS candidates are reordered by the
matching head only when ``actbert evaluate --split val`` recorded, beside the model, that this
improves R@1 over the embeddings (``actbert.rerank_policy``); ``rerank=N`` forces a rerank of the
top N, ``rerank=0`` disables it.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from actbert.data import ClipInputs, collate
from actbert.states import TextState, VideoState
from actbert.fusion_policy import (PLAIN_RRF, FusionPolicy, content_words, coverage, fuse, fusion_for,
                                   shortlisted_first)
from actbert.fusion_policy import RRF_K as FUSION_RRF_K
from actbert.rerank_policy import Ordering, decide
from actbert.tokenizer import ActBertTokenizer
from indexer.errors import LibraryError, QueryError
from indexer.index import backends
from indexer.index.backends import open_index
from indexer.index.clip_index import ClipIndex
from indexer.index.embed import embed_library, library_model_dir, load_model, model_fingerprint
from indexer.index.narration_meaning import semantic_ranking
from indexer.library.catalog import Clip
from indexer.library.feature_cache import CLIP_INPUTS_CACHED, clip_model_inputs
from indexer.library.manifest import ModelEntry
from indexer.library.store import Library

log = logging.getLogger(__name__)

MODES = ("hybrid", "vector", "narration")
RRF_K = FUSION_RRF_K  # reciprocal rank fusion constant (Cormack et al., 2009)
# Clips whose video state (``ActBertForPretraining.video_state``) a searcher keeps: ~155 kB each
# with the demo's 26 regions on average, ~215 kB with 37 (the mini preset: region and action
# states entering tangled block 0 and that block's query/key/value projections of them).
CLIP_STATES_CACHED = CLIP_INPUTS_CACHED
# What one more matching forward costs beside its tokens, in region slots (its fixed work: reading
# the weights again, the small action and pooled-position products, per-operation overheads).
BATCH_COST_SLOTS = 64


@dataclass(frozen=True)
class SearchHit:
    """A clip found for a query, with the score of every signal that found it."""

    clip: Clip
    score: float | None            # cosine of query and clip vectors (vector signal)
    rerank_score: float | None     # matching-head probability that query and clip match
    narration_score: float | None  # FTS5 BM25 (narration signal)
    fused_score: float
    signals: tuple[str, ...]
    region_score: float | None = None  # highest cosine of the query region and a region of the clip
    region_slot: int | None = None     # that region's slot (``indexer.index.region_search``)
    semantic_score: float | None = None  # MiniLM cosine of query and narration (semantic signal)

    def as_dict(self) -> dict:
        c = self.clip
        return {"clip_id": c.clip_id, "video_id": c.video_id, "start_sec": c.start_sec,
                "end_sec": c.end_sec, "score": self.score, "rerank_score": self.rerank_score,
                "narration_score": self.narration_score, "region_score": self.region_score,
                "region_slot": self.region_slot, "semantic_score": self.semantic_score,
                "fused_score": self.fused_score,
                "narration": c.narration, "narrated": c.narrated, "signals": list(self.signals),
                "task": c.task}


@dataclass(frozen=True)
class SearchResult:
    query: str
    mode: str
    hits: list[SearchHit]
    timings_ms: dict[str, float] = field(default_factory=dict)
    ordering: str = ""  # the order the hits follow and why, in words
    rerank: int = 0     # vector candidates the matching head reordered (0: embedding order)
    region: str = ""    # a search by example region: the region, VIDEO:CLIP:SLOT (mode "region")
    # what the search shares with another model's search of the query (``SharedQuery``)
    shared: "SharedQuery | None" = field(default=None, repr=False, compare=False)


@dataclass
class SharedQuery:
    """What the searches of one query by two models of one library share, kept so that the
    second (``indexer.index.compare.side_by_side``) computes only what is not here: the
    narration BM25 scores per candidate pool size and the row of every clip asked for (None: not
    a finished clip), which do not depend on the model; and the query's text state with the
    model that made it (``text``), which serves a model whose text-only layers are that model's
    (``Searcher.text_twins``: then only its own first tangled projections are computed). Both
    searches give what two independent searches give."""

    query: str
    bm25: dict[int, dict[int, float]] = field(default_factory=dict)  # pool -> clip id -> BM25
    meaning: dict[int, dict[int, float]] = field(default_factory=dict)  # pool -> clip id -> cosine
    rows: dict[int, Clip | None] = field(default_factory=dict)
    text: tuple[torch.nn.Module, TextState] | None = None  # (the model that made it, the state)

    def narration(self, catalog, pool: int) -> dict[int, float]:
        """clip id -> BM25 of the query's best ``pool`` narrations (``Catalog.search_narration``)."""
        if pool not in self.bm25:
            self.bm25[pool] = dict(catalog.search_narration(self.query, pool))
        return self.bm25[pool]

    def semantic(self, catalog, pool: int) -> dict[int, float]:
        """clip id -> MiniLM cosine of the query and the ``pool`` closest narrations
        (``narration_meaning.semantic_ranking``)."""
        if pool not in self.meaning:
            self.meaning[pool] = semantic_ranking(catalog, self.query, pool)
        return self.meaning[pool]

    def clips(self, catalog, clip_ids) -> dict[int, Clip]:
        """The finished clips among ``clip_ids`` (``Catalog.clips_by_id``), reading only new ids."""
        wanted = [int(i) for i in clip_ids]
        missing = [i for i in wanted if i not in self.rows]
        if missing:
            found = catalog.clips_by_id(missing)
            self.rows.update({i: found.get(i) for i in missing})
        return {i: self.rows[i] for i in wanted if self.rows[i] is not None}


def describe_ordering(mode: str, order: Ordering, vectors: bool,
                      fusion: FusionPolicy = PLAIN_RRF) -> str:
    """One line for the user: which signals ordered the hits, the rerank decision and the fusion."""
    if mode == "narration":
        return "narration BM25"
    if not vectors:
        return "narration BM25 only (the vector index is empty)" if mode == "hybrid" else \
            "no order (the vector index is empty)"
    if mode == "vector":
        return order.reason
    meaning = " + narration MiniLM" if fusion.semantic else ""
    fused = f"narration BM25{meaning} + {order.reason}, fused by reciprocal rank"
    return fused if fusion.split is None else f"{fused}: {fusion.describe()}"


def plan_batches(lengths: list[int], most: int = 64, cost: int = BATCH_COST_SLOTS) -> list[tuple[int, int]]:
    """Cut ascending ``lengths`` (each candidate's region slots) into batches ``[start, end)`` of
    at most ``most``, each padded to its last (longest) one: the cuts that minimise the padded
    slots computed plus ``cost`` per batch (dynamic programming over the cut points)."""
    best, cut = [0.0] + [float("inf")] * len(lengths), [0] * (len(lengths) + 1)
    for end in range(1, len(lengths) + 1):
        for start in range(max(0, end - most), end):
            total = best[start] + (end - start) * lengths[end - 1] + cost
            if total < best[end]:
                best[end], cut[end] = total, start
    batches, end = [], len(lengths)
    while end:
        batches.append((cut[end], end))
        end = cut[end]
    return batches[::-1]


def rrf(rankings: list[list[int]], k: int = RRF_K) -> dict[int, float]:
    """Reciprocal rank fusion: sum over lists of 1 / (k + rank), ranks from 1."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank)
    return fused


class Searcher:
    """Loads the library's model, tokenizer and index once; answers queries from any thread."""

    def __init__(self, library: Library, checkpoint: str | Path | None = None,
                 index=None) -> None:
        """``index``: the vectors ``checkpoint`` made (default: the library's own index, which
        must be its model's; ``indexer.index.compare`` passes a second model's)."""
        self.library = library
        self.checkpoint = library_model_dir(library, checkpoint)
        self._own_model = not checkpoint  # the library's recorded model
        self.model = load_model(str(self.checkpoint))
        self.tokenizer = ActBertTokenizer()
        # a VectorIndex: ClipIndex (FAISS) or MilvusIndex (indexer.index.backends)
        self._index_stamp = self._saved_index_stamp() if index is None else None
        self.index = index if index is not None else open_index(library)
        self._states: OrderedDict[tuple, VideoState] = OrderedDict()
        self._states_lock = threading.Lock()
        with torch.no_grad():
            self._placeholder = self.model.placeholder_state()  # what encode_text runs texts against
        # models whose text states serve this one (``ActBertForPretraining.shares_text_prefix``;
        # set by ``indexer.index.compare`` for a second model of the library)
        self.text_twins: tuple[torch.nn.Module, ...] = ()

    @functools.cached_property
    def regions(self):
        """The library's region index (``indexer.index.region_index``), loaded on first use."""
        from indexer.index.region_index import open_region_index

        return open_region_index(self.library)

    def _saved_index_stamp(self) -> tuple | None:
        """Inode, mtime and size of the library's saved FAISS index manifest (None: none, or the
        index is not FAISS in the library folder)."""
        if backends.backend_of(self.library)["name"] != "faiss":
            return None
        try:
            stat = os.stat(self.library.root / "index" / "manifest.json")
        except OSError:
            return None
        return stat.st_ino, stat.st_mtime_ns, stat.st_size

    def refresh_index(self) -> bool:
        """Reopen the library's own FAISS index when a writer has saved another since it was opened
        (the demo build adds each video's clips as it goes); True when it did. A save replaces the
        manifest last and atomically, so the index read is always a whole one (``files``); a
        search running meanwhile finishes on the index it started with."""
        if not self._own_model or self._index_stamp is None:
            return False
        stamp = self._saved_index_stamp()
        if stamp is None or stamp == self._index_stamp:
            return False
        self.index, self._index_stamp = open_index(self.library), stamp
        return True

    @functools.cached_property
    def fingerprint(self) -> str:
        """The ranking model's fingerprint (``model_fingerprint``; the library's record for its own
        model, computed from the weights for another)."""
        recorded = self.library.manifest.model_fingerprint if self._own_model else None
        return str(recorded) if recorded else model_fingerprint(self.checkpoint)

    @torch.no_grad()
    def text_state(self, query: str) -> TextState:
        """The query through the model's text-only layers: shared by its embedding
        (``model.encode_text_state``) and its rerank (``match_scores(text=...)``)."""
        enc = self.tokenizer(query)
        return self.model.text_state(enc.ids, enc.mask)

    @torch.no_grad()
    def shared_text_state(self, shared: SharedQuery) -> TextState:
        """The query's text state, from ``shared`` when a model of ``text_twins`` made it there
        (this model's projections added), else computed (and left there for the next model)."""
        if shared.text is not None and any(shared.text[0] is m for m in self.text_twins):
            return self.model.adopt_text_state(shared.text[1])
        text = self.text_state(shared.query)
        if shared.text is None:
            shared.text = (self.model, text)
        return text

    @torch.inference_mode()
    def _embed(self, text: TextState) -> np.ndarray:
        return self.model.encode_text_state(text, self._placeholder).float().numpy()

    def _encode(self, query: str) -> np.ndarray:
        """The query's (1, embed_size) vector (``model.encode_text``)."""
        return self._embed(self.text_state(query))

    def query_vector(self, query: str) -> np.ndarray:
        """The query's ``(embed_size,)`` vector as the index is searched with it (``encode_text``)."""
        return self._encode(query).reshape(-1)

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

    def _stamp(self, feature_path: str | None) -> int | None:
        """The feature file's mtime (None when it cannot be read): a cached state is valid while
        its file is not rewritten. One stat, no path checks: a state only enters the cache from
        inputs read through ``clip_inputs``, which checks the path."""
        try:
            return os.stat(self.library.root / feature_path).st_mtime_ns if feature_path else None
        except OSError:
            return None

    @torch.no_grad()
    def clip_states(self, clips: list[Clip], batch_size: int = 64) -> list[VideoState]:
        """Each clip's video state (``model.video_state`` of its ``clip_inputs``, batch 1, its real
        slots only), cached per clip (``CLIP_STATES_CACHED``, least recently used out) until its
        feature file is rewritten. Callers must not modify them. (Made under ``no_grad``, not
        ``inference_mode``, as are ``text_state``'s: ``model.match`` takes them anywhere.)"""
        stamps = {path: self._stamp(path) for path in {c.feature_path for c in clips}}
        keys = [(c.feature_path, stamps[c.feature_path], c.clip_index) for c in clips]
        found: dict[tuple, VideoState] = {}
        with self._states_lock:
            for key in keys:
                if key[1] is not None and key in self._states:
                    self._states.move_to_end(key)
                    found[key] = self._states[key]
        missing = list({k: c for k, c in zip(keys, clips) if k not in found}.items())
        for start in range(0, len(missing), batch_size):
            chunk = missing[start:start + batch_size]
            batch = collate([self.clip_inputs(c) for _, c in chunk])
            batch.pop("region_classes")
            for (key, _), state in zip(chunk, self.model.video_state(**batch).unbatch()):
                found[key] = state
                if key[1] is not None:
                    with self._states_lock:
                        self._states[key] = state
                        while len(self._states) > CLIP_STATES_CACHED:
                            self._states.popitem(last=False)
        return [found[k] for k in keys]

    @torch.inference_mode()
    def match_scores(self, query: str, clips: list[Clip], batch_size: int = 64,
                     text: TextState | None = None) -> dict[int, float]:
        """The matching head's probability that ``query`` describes each clip, by clip id.

        The query's text-only layers run once (``model.text_state``; ``text``: already run) and
        are shared by every candidate, each clip's video-only part is cached (``clip_states``),
        and ``model.match`` computes only what the matching head reads, on candidates sorted by
        region count in batches of at most ``batch_size``, each padded to its own longest
        (``plan_batches``): the same numbers as a full forward per pair."""
        if text is None:
            text = self.text_state(query)
        states = self.clip_states(clips)
        order = sorted(range(len(clips)), key=lambda i: states[i].hidden["region"].shape[1])
        lengths = [states[i].hidden["region"].shape[1] for i in order]
        scores: dict[int, float] = {}
        for start, end in plan_batches(lengths, batch_size):
            chunk = order[start:end]
            out = self.model.match(text, VideoState.batch([states[i] for i in chunk]))
            scores.update(zip((clips[i].clip_id for i in chunk), out.match_score.tolist()))
        return scores

    def warm_up(self) -> None:
        """Compute the clips' video states into the cache (as many as it holds) and run one query
        end to end, so the first user query after a launch costs what later ones do."""
        clips = self.library.catalog.clips_by_id(self.index.ids()[:CLIP_STATES_CACHED].tolist())
        self.clip_states(list(clips.values()))
        query = next((c.narration for c in clips.values() if c.narration.strip()), "warm up")
        self.search(query, k=10, rerank=min(50, max(1, len(clips))))

    def search(self, query: str, k: int = 10, rerank: int | str = "auto", mode: str = "hybrid",
               video: str | None = None, task: str | None = None,
               shared: SharedQuery | None = None) -> SearchResult:
        """Top ``k`` clips for ``query``; ``video`` / ``task`` filter the results. ``rerank``:
        ``"auto"`` reorders the FAISS candidates by the matching head when the model's recorded
        rerank policy says it improves R@1 (no policy: never), N > 0 always reranks the top N,
        0 never does (see the module docstring). ``shared``: what an earlier search of the same
        query by another model of this library left (``SharedQuery``; reused, and added to)."""
        if mode not in MODES:
            raise QueryError(f"mode must be one of {MODES}, got {mode!r}")
        if not query.strip():
            raise QueryError("empty query: type what happens in the clip")
        if shared is None:
            shared = SharedQuery(query)
        elif shared.query != query:
            raise ValueError(f"the shared state of {shared.query!r} given to a search of {query!r}")
        order = decide(rerank, self.checkpoint)
        rerank = order.rerank
        timings: dict[str, float] = {}
        pool = max(k, rerank) * (5 if (video or task) else 1)
        vector: dict[int, float] = {}
        reranked: dict[int, float] = {}
        narration: dict[int, float] = {}
        text = None
        if mode in ("hybrid", "vector") and len(self.index):
            t0 = time.perf_counter()
            text = self.shared_text_state(shared)
            q = self._embed(text)
            timings["encode"] = (time.perf_counter() - t0) * 1e3
            t0 = time.perf_counter()
            pushed = {"video": video, "task": task} if self.index.filters else {}
            scores, ids = self.index.search(q, min(pool, len(self.index)), **pushed)
            timings["faiss"] = (time.perf_counter() - t0) * 1e3
            vector = {int(i): float(s) for s, i in zip(scores[0], ids[0]) if i >= 0}
        if mode in ("hybrid", "narration"):
            t0 = time.perf_counter()
            narration = shared.narration(self.library.catalog, pool)
            timings["narration"] = (time.perf_counter() - t0) * 1e3
        fusion = fusion_for(self.checkpoint) if mode == "hybrid" else PLAIN_RRF
        semantic: dict[int, float] = {}
        if fusion.semantic:
            t0 = time.perf_counter()
            semantic = shared.semantic(self.library.catalog, pool)
            timings["semantic"] = (time.perf_counter() - t0) * 1e3
        candidates = set(vector) | set(narration) | set(semantic)
        rows = shared.clips(self.library.catalog, candidates)
        if video or task:
            rows = {i: h for i, h in rows.items()
                    if (not video or h.video_id == video) and (not task or h.task == task)}
        if rerank and vector:
            t0 = time.perf_counter()
            top = [i for i in sorted(vector, key=vector.get, reverse=True) if i in rows][:rerank]
            reranked = self.match_scores(query, [rows[i] for i in top], text=text)
            timings["rerank"] = (time.perf_counter() - t0) * 1e3
        order_vector = sorted((i for i in vector if i in rows),
                              key=lambda i: (reranked.get(i, -1.0), vector[i]), reverse=True)
        order_text = sorted((i for i in narration if i in rows), key=narration.get, reverse=True)
        order_meaning = sorted((i for i in semantic if i in rows), key=semantic.get, reverse=True)
        words = content_words(query)
        weights = {i: fusion.narration_weight(coverage(words, rows[i].narration)) for i in order_text}
        fused = fuse(order_vector, order_text, weights, fusion.k, order_meaning,
                     {i: fusion.semantic_weight(semantic[i]) for i in order_meaning})
        hits = []
        # a shortlist is the served vector order's top N (reranked when the rerank is on): the
        # hybrid reorders what the vector serves first, as evaluation measures it
        for clip_id in shortlisted_first(fused, order_vector, fusion.shortlist)[:k]:
            signals = tuple(s for s, found in (("vector", clip_id in vector),
                                               ("narration", clip_id in narration),
                                               ("semantic", clip_id in semantic)) if found)
            hits.append(SearchHit(
                clip=rows[clip_id], score=vector.get(clip_id), rerank_score=reranked.get(clip_id),
                narration_score=narration.get(clip_id), fused_score=fused[clip_id], signals=signals,
                semantic_score=semantic.get(clip_id)))
        timings["total"] = sum(timings.values())
        return SearchResult(query, mode, hits, {k_: round(v, 2) for k_, v in timings.items()},
                            ordering=describe_ordering(mode, order, bool(vector), fusion),
                            rerank=rerank if reranked else 0, shared=shared)

    def similar(self, clip_id: int, k: int = 10) -> list[SearchHit]:
        """More like this: nearest clips by the clip's own vector."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise QueryError(f"k must be a whole number >= 1, got {k!r}")
        if self.library.catalog.clip(int(clip_id)) is None:
            raise QueryError(f"no clip {clip_id} in {self.library.root} (no such clip id)")
        try:
            scores, ids = self.index.similar(int(clip_id), k)
        except KeyError as exc:
            raise LibraryError(f"clip {clip_id} has no vector in the index (its video is not "
                               "finished; `indexer repair LIB` brings the index to the catalog)") from exc
        rows = self.library.catalog.clips_by_id(int(i) for i in ids if i >= 0)
        return [SearchHit(rows[int(i)], float(s), None, None, float(s), ("vector",))
                for s, i in zip(scores, ids) if int(i) in rows]


def build_index(library: Library, checkpoint: str | Path | None = None,
                model: ModelEntry | None = None) -> ClipIndex:
    """Embed every finished clip and write a fresh index (reindex), under the writer lock; the
    region index is brought to the catalog first (``indexer.index.region_index``: a video whose
    features it cannot read is marked failed before the clips are embedded).

    ``checkpoint`` embeds with another model than the library's; ``model`` is the fingerprint the
    index manifest records (default: library.json's ``model``)."""
    from indexer.index.region_index import reconcile_regions

    with library.writing():
        reconcile_regions(library)
        net = load_model(str(library_model_dir(library, checkpoint)))
        vectors, ids = embed_library(library, net)
        record = model if model is not None else library.manifest.model
        return backends.build(library, vectors, ids, model=record and record.to_json(), dim=net.config.embed_size)
