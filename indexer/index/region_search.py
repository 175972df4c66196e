"""Search by example region: the clips holding regions like a chosen one, optionally with words.

A query names one region of the library (``parse_region``: ``VIDEO:CLIP:SLOT``, the video id, the
clip's index in the video and the region's slot, ``indexer.index.region_index``; or
``CLIP_ID:SLOT`` with a catalog clip id). Its vector is the one the region index holds.

Scores. A clip's ``region_score`` is the highest cosine between the query region and any of the
clip's regions (its best-matching region's slot is ``region_slot``). With words, the clip's
``score`` is the text search's cosine of the words' and the clip's vectors (``Searcher.search``'s
vector signal, ``encode_text`` against the clip index), and the two are fused linearly::

    fused_score = (1 - WORDS_WEIGHT) * region_score + WORDS_WEIGHT * score      (WORDS_WEIGHT = 0.5)

so "this bowl" + "pour" ranks first the clips that hold a bowl-like region and are described by
"pour", and either alone still counts. Without words, ``fused_score = region_score``. Both
cosines lie in [-1, 1]; no rescaling, so a score means the same in every query.

Candidates: the clips of the ``POOL`` nearest regions (FAISS over the region index) and, with
words, the ``POOL`` nearest clips to the words (the clip index); each candidate is then scored
exactly on both signals from the stored vectors (every region of the clip, and its clip vector),
so a clip found by one signal gets its true score on the other. The query region's own clip is
left out (as "similar clips" leaves the clip out), and so are clips without regions. Hits are ``SearchHit``s (``signals``: which
pool found the clip, ``region`` and/or ``vector``), so exports carry the same fields as a text
search (``indexer.index.results``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from indexer.errors import QueryError
from indexer.index.region_index import REGION_SLOTS
from indexer.index.search import SearchHit, SearchResult
from indexer.library.catalog import Clip

WORDS_WEIGHT = 0.5
POOL = 200  # nearest regions (and, with words, nearest clips) gathered as candidates per query


@dataclass(frozen=True)
class RegionRef:
    """A region named by the user: ``clip_id`` (catalog) or ``video_id`` + ``clip_index``, and ``slot``."""

    slot: int
    clip_id: int | None = None
    video_id: str | None = None
    clip_index: int | None = None


def parse_region(text: str) -> RegionRef:
    """``VIDEO:CLIP:SLOT`` or ``CLIP_ID:SLOT`` (whole numbers >= 0), else ``QueryError``."""
    parts = str(text).strip().rsplit(":", 2)
    numbers = [p.isascii() and p.isdigit() and len(p) <= 18 for p in parts]
    if len(parts) == 3 and parts[0] and all(numbers[1:]):
        return RegionRef(int(parts[2]), video_id=parts[0], clip_index=int(parts[1]))
    if len(parts) == 2 and all(numbers):
        return RegionRef(int(parts[1]), clip_id=int(parts[0]))
    raise QueryError(f"a region is VIDEO:CLIP:SLOT (video id, clip index in the video, region slot) "
                     f"or CLIP_ID:SLOT, got {str(text)[:80]!r}")


def resolve(library, ref: RegionRef) -> tuple[Clip, int]:
    """The clip and slot ``ref`` names; ``QueryError`` when the library has no such clip or slot."""
    clip_id = ref.clip_id
    if clip_id is None:
        rows = [r for r in library.catalog.clips_of(ref.video_id) if int(r["clip_index"]) == ref.clip_index]
        if not rows:
            raise QueryError(f"no clip {ref.clip_index} of video {ref.video_id[:80]!r} in {library.root}")
        clip_id = int(rows[0]["id"])
    clip = library.catalog.clip(clip_id)
    if clip is None:
        raise QueryError(f"no clip {clip_id} in {library.root}")
    if not 0 <= ref.slot < REGION_SLOTS:
        raise QueryError(f"region slot {ref.slot} is out of range (0..{REGION_SLOTS - 1})")
    return clip, ref.slot


def reference(clip: Clip, slot: int) -> str:
    """The region's ``VIDEO:CLIP:SLOT`` text."""
    return f"{clip.video_id}:{clip.clip_index}:{slot}"


def clip_regions(held: np.ndarray, clip_id: int) -> np.ndarray:
    """The region ids of ``clip_id`` among the sorted ids ``held``."""
    lo, hi = np.searchsorted(held, [clip_id * REGION_SLOTS, (clip_id + 1) * REGION_SLOTS])
    return held[lo:hi]


def search_region(searcher, clip: Clip, slot: int, words: str = "", k: int = 10,
                  video: str | None = None, task: str | None = None) -> SearchResult:
    """Top ``k`` clips holding regions like slot ``slot`` of ``clip``, fused with ``words`` when
    given (see the module docstring); ``video`` / ``task`` filter the results."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise QueryError(f"k must be a whole number >= 1, got {k!r}")
    regions = searcher.regions
    region_id = int(clip.clip_id) * REGION_SLOTS + int(slot)
    if region_id not in regions:
        have = len(clip_regions(regions.ids(), clip.clip_id))
        raise QueryError(f"clip {clip.clip_id} has no region slot {slot} in the region index (it holds "
                         f"{have}: slots 0..{have - 1}); if the clip is new, `indexer repair "
                         f"{searcher.library.root}` brings the index to the catalog")
    timings: dict[str, float] = {}
    words = (words or "").strip()
    pool = POOL * (5 if (video or task) else 1)
    t0 = time.perf_counter()
    q = regions.reconstruct(region_id)
    scores, ids = regions.search(q, min(pool, len(regions)))
    found = {int(i) // REGION_SLOTS for i in ids[0] if i >= 0}
    timings["faiss_regions"] = (time.perf_counter() - t0) * 1e3
    text, text_found = None, set()
    if words and len(searcher.index):
        t0 = time.perf_counter()
        text = searcher.query_vector(words)
        timings["encode"] = (time.perf_counter() - t0) * 1e3
        t0 = time.perf_counter()
        _, clip_ids = searcher.index.search(text, min(pool, len(searcher.index)))
        text_found = {int(i) for i in clip_ids[0] if i >= 0}
        timings["faiss"] = (time.perf_counter() - t0) * 1e3
    t0 = time.perf_counter()
    rows = searcher.library.catalog.clips_by_id((found | text_found) - {int(clip.clip_id)})
    rows = {i: c for i, c in rows.items()
            if (not video or c.video_id == video) and (not task or c.task == task)}
    region_scores = best_regions(regions, q, list(rows))
    text_scores = clip_cosines(searcher.index, text, list(rows)) if text is not None else {}
    fused = {i: region_scores[i][0] if text is None else
             (1 - WORDS_WEIGHT) * region_scores[i][0] + WORDS_WEIGHT * text_scores[i]
             for i in region_scores if text is None or i in text_scores}
    timings["rescore"] = (time.perf_counter() - t0) * 1e3
    hits = []
    for clip_id in sorted(fused, key=lambda i: (-fused[i], i))[:k]:
        signals = tuple(s for s, pool_ in (("region", found), ("vector", text_found)) if clip_id in pool_)
        hits.append(SearchHit(rows[clip_id], text_scores.get(clip_id), None, None, fused[clip_id], signals,
                              region_score=region_scores[clip_id][0], region_slot=region_scores[clip_id][1]))
    timings["total"] = sum(timings.values())
    ordering = ("region cosine" if text is None else
                f"{1 - WORDS_WEIGHT:g} x region cosine + {WORDS_WEIGHT:g} x text cosine")
    return SearchResult(words, "region", hits, {n: round(v, 2) for n, v in timings.items()},
                        ordering=ordering, region=reference(clip, slot))


def best_regions(regions, query: np.ndarray, clip_ids: list[int]) -> dict[int, tuple[float, int]]:
    """clip id -> (highest cosine of ``query`` with one of its regions, that region's slot), from
    the stored vectors; clips without regions are left out."""
    held = regions.ids()
    per_clip = {c: clip_regions(held, c) for c in clip_ids}
    ids = np.concatenate([r for r in per_clip.values()]) if per_clip else np.zeros(0, np.int64)
    if not ids.size:
        return {}
    cosines = regions.reconstruct_many(ids) @ np.asarray(query, np.float32).reshape(-1)
    out, start = {}, 0
    for clip_id, own in per_clip.items():
        if own.size:
            part = cosines[start:start + own.size]
            best = int(np.argmax(part))
            out[clip_id] = (float(part[best]), int(own[best] % REGION_SLOTS))
        start += own.size
    return out


def clip_cosines(index, text: np.ndarray, clip_ids: list[int]) -> dict[int, float]:
    """clip id -> cosine of the words' vector ``text`` and the clip's stored vector."""
    unit = np.asarray(text, np.float32).reshape(-1)
    unit = unit / np.linalg.norm(unit)
    held = [c for c in clip_ids if c in index]
    if not held:
        return {}
    vectors = index.reconstruct_many(np.array(held, np.int64))
    return dict(zip(held, (vectors @ unit).astype(float).tolist()))


def region_of(library, text: str) -> tuple[Clip, int]:
    """``parse_region`` then ``resolve``: the clip and slot a typed reference names."""
    return resolve(library, parse_region(text))

