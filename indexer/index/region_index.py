"""The region index: every detected region of every finished clip, searchable by example.

A region's vector is its detector RoI feature (``region_features`` of the video's feature file,
``actbert.data``), L2-normalised, so a score is the cosine of two regions' features. It does not
depend on the ActBERT model: a ``reindex`` with another checkpoint leaves it as it is.

Ids. Slot ``s`` of a clip is its ``s``-th region in feature-file order (the rows whose
``region_clip`` is the clip's index: ``clip_region_rows``); the region's id is
``clip_id * REGION_SLOTS + s``, so the clip of a hit is ``id // REGION_SLOTS``. Clip ids are never
reused, so a region id always means the same region. A clip holding more than ``REGION_SLOTS``
regions (over 13 minutes at the ingest's 1 FPS and 5 boxes) has only its first ``REGION_SLOTS``
indexed. A region whose feature is all zeros (it has no direction) is indexed as the uniform
direction (every component equal).

Kept equal to the catalog, like the clip index (``indexer.index.reconcile``): the catalog records
each clip's region count (``clips.region_count``, NULL until counted), and the index holds exactly
``region_ids`` of the finished clips' counts. ``reconcile_regions`` runs at the end of every
writing command (ingest, delete, merge, reindex) and in ``indexer repair``, under the writer lock:
it removes files killed saves left, counts the clips not yet counted (reading their feature files),
adds the regions the index lacks, drops those the catalog no longer has and rebuilds an index that
is missing or unreadable; a video whose feature file cannot be read is marked failed (the clip
index then drops it too). The index lives in ``LIB/regions/`` in the clip index's format
(``indexer.index.files``: one FAISS file named by its checksum and a manifest switched last, so a
crash anywhere leaves the previous, complete index), built by ``ClipIndex`` (exact below 100,000
regions, IVF above, ``nprobe`` calibrated to recall@10 >= 0.95).
"""

from __future__ import annotations

import logging

import numpy as np

from actbert.data import VideoFeatures
from indexer.index.clip_index import ClipIndex
from indexer.index.files import ClipIndexError, IndexMissingError, remove_orphans
from indexer.library.feature_check import FeatureWidths, drop_unusable
from indexer.library.store import Library

log = logging.getLogger(__name__)

REGION_SLOTS = 4096  # region ids per clip: id = clip_id * REGION_SLOTS + slot
FOLDER = "regions"   # LIB/regions/: the region index and its manifest
RECORD = {"vectors": "region_features", "metric": "cosine"}  # the index manifest's "model" field


def region_ids(clip_ids, counts) -> np.ndarray:
    """``(N,)`` int64 region ids of clips ``clip_ids`` holding ``counts`` regions each, clip by
    clip, slots ascending (at most ``REGION_SLOTS`` per clip)."""
    clip_ids = np.asarray(clip_ids, np.int64).reshape(-1)
    counts = np.minimum(np.asarray(counts, np.int64).reshape(-1), REGION_SLOTS)
    if not clip_ids.size:
        return np.zeros(0, np.int64)
    starts = np.repeat(clip_ids * REGION_SLOTS, counts)
    slots = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return starts + slots


def split_region_ids(ids) -> tuple[np.ndarray, np.ndarray]:
    """``(clip ids, slots)`` of region ids."""
    ids = np.asarray(ids, np.int64)
    return ids // REGION_SLOTS, ids % REGION_SLOTS


def clip_region_rows(features: VideoFeatures, clip_index: int) -> np.ndarray:
    """Feature-file rows of clip ``clip_index``'s regions; slot ``s`` is row ``rows[s]``."""
    return np.flatnonzero(np.asarray(features.region_clip) == int(clip_index))


def video_regions(features: VideoFeatures, clip_ids) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """The regions of a video whose clips (in clip-index order) have catalog ids ``clip_ids``:
    ``(vectors (N, F) float32, region ids (N,), region count of each clip)``."""
    rows, ids, counts = [], [], []
    for index, clip_id in enumerate(clip_ids):
        found = clip_region_rows(features, index)
        counts.append(len(found))
        found = found[:REGION_SLOTS]
        rows.append(found)
        ids.append(region_ids([clip_id], [len(found)]))
    rows_ = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    vectors = np.array(features.region_features, np.float32)[rows_]
    vectors[~np.any(vectors, axis=1)] = 1.0  # no direction: indexed as the uniform one
    return vectors, (np.concatenate(ids) if ids else np.zeros(0, np.int64)), counts


def open_region_index(library: Library) -> ClipIndex:
    """The library's saved region index; ``ClipIndexError`` subclasses when missing or unreadable
    (their message names the region index; ``reindex`` or ``repair`` rebuilds it)."""
    try:
        return ClipIndex.load(library.root / FOLDER, expected_model=RECORD, library=library.root)
    except ClipIndexError as exc:
        raise type(exc)(f"the region index: {exc.problem}", library.root) from exc


def catalog_region_ids(library: Library) -> tuple[np.ndarray, list[int]]:
    """The region ids the catalog's finished clips hold (sorted) and the clips not yet counted."""
    rows = library.catalog.region_counts()
    counted = [(i, n) for i, n in rows if n is not None]
    uncounted = [i for i, n in rows if n is None]
    ids = region_ids([i for i, _ in counted], [n for _, n in counted])
    return np.sort(ids), uncounted


def _read(library: Library, video_ids: list[str], widths: FeatureWidths) -> tuple[list, dict]:
    """``[(vectors, ids, {clip id: count})]`` of the videos whose feature file is usable, and the
    reasons of those that are not (marked failed by ``drop_unusable``)."""
    failed = drop_unusable(library, video_ids, widths)
    out = []
    for video_id in video_ids:
        if video_id in failed:
            continue
        row = library.catalog.video(video_id)
        clip_ids = [int(c["id"]) for c in library.catalog.clips_of(video_id)]
        vectors, ids, counts = video_regions(VideoFeatures.load(library.file(row["feature_path"])), clip_ids)
        out.append((vectors, ids, dict(zip(clip_ids, counts))))
    return out, failed


def reconcile_regions(library: Library) -> tuple[ClipIndex | None, dict]:
    """Bring the region index to the catalog's finished clips (see the module docstring); returns
    the index (None when there is nothing to index and no width to make an empty one) and a report:
    ``added``, ``removed``, ``counted`` (clips whose regions were counted), ``rebuilt``, ``failed``
    (video id -> reason), ``orphans`` (files removed)."""
    report = {"added": 0, "removed": 0, "counted": 0, "rebuilt": False, "failed": {}, "orphans": []}
    with library.writing():
        folder = library.root / FOLDER
        report["orphans"] = remove_orphans(folder) if folder.is_dir() else []
        widths = FeatureWidths.of_library(library)
        try:
            index = open_region_index(library)
        except ClipIndexError as exc:
            if not isinstance(exc, IndexMissingError):
                log.warning("rebuilding the region index: %s", exc.problem)
            return _rebuild(library, widths, report)
        if widths.region and widths.region != index.dim:  # the library's model takes other features
            log.warning("rebuilding the region index: it holds %d-wide regions, the model takes %d",
                        index.dim, widths.region)
            return _rebuild(library, widths, report)
        widths = FeatureWidths(widths.action, widths.region or index.dim)
        want, uncounted = catalog_region_ids(library)
        missing = np.setdiff1d(want, index.ids())
        videos = library.catalog.videos_of_clips(
            sorted(set(uncounted) | set(split_region_ids(missing)[0].tolist())))
        if videos:
            read, report["failed"] = _read(library, videos, widths)
            # counts first: a crash before the save below leaves regions the catalog counts and the
            # index lacks, which the next run adds (ids never change meaning)
            library.catalog.set_region_counts({k: v for _, _, c in read for k, v in c.items()})
            report["counted"] = sum(len(c) for _, _, c in read)
            for vectors, ids, _ in read:
                new = ~np.isin(ids, index.ids())
                if new.any():
                    index.add(vectors[new], ids[new])
                    report["added"] += int(new.sum())
        want, _ = catalog_region_ids(library)
        extra = np.setdiff1d(index.ids(), want)
        if extra.size:
            report["removed"] = index.remove(extra)
        if index.needs_rebuild():
            index.rebuild()
            report["rebuilt"] = True
        if report["added"] or report["removed"] or report["rebuilt"]:
            index.save(folder)
    return index, report


def _rebuild(library: Library, widths: FeatureWidths, report: dict) -> tuple[ClipIndex | None, dict]:
    """A fresh region index of every finished video, saved (the writer lock is held)."""
    videos = [r["video_id"] for r in library.catalog.videos("done")]
    read, report["failed"] = _read(library, videos, widths)
    vectors = [v for v, _, _ in read if len(v)]
    dim = vectors[0].shape[1] if vectors else widths.region
    index = None
    if dim:
        ids = np.concatenate([i for _, i, _ in read]) if read else np.zeros(0, np.int64)
        index = ClipIndex.build(np.concatenate(vectors), ids, model=RECORD) if vectors else \
            ClipIndex.empty(int(dim), model=RECORD)
        index.save(library.root / FOLDER)
        report.update(rebuilt=True, added=len(index))
    library.catalog.set_region_counts({k: v for _, _, c in read for k, v in c.items()})
    report["counted"] = sum(len(c) for _, _, c in read)
    return index, report


def region_state(library: Library) -> dict:
    """The region index against the catalog, read-only: ``state`` is ``ok``, ``missing``,
    ``unreadable``, ``uncounted`` (clips whose regions were not counted yet) or ``mismatch``; with
    the counts and up to 10 region ids each way."""
    want, uncounted = catalog_region_ids(library)
    state = {"state": "ok", "catalog_regions": int(want.size), "index_regions": None,
             "uncounted_clips": len(uncounted), "missing": [], "extra": [], "problem": None}
    try:
        index = open_region_index(library)
    except ClipIndexError as exc:
        if isinstance(exc, IndexMissingError) and not want.size and not uncounted:
            return state  # nothing to index, no index: equal
        state.update(state="missing" if isinstance(exc, IndexMissingError) else "unreadable",
                     problem=exc.problem)
        return state
    held = index.ids()
    missing, extra = np.setdiff1d(want, held), np.setdiff1d(held, want)
    state.update(index_regions=int(held.size), missing=missing[:10].tolist(), extra=extra[:10].tolist())
    if uncounted:
        state.update(state="uncounted", problem=f"the regions of {len(uncounted)} clips are not counted yet")
    elif missing.size or extra.size:
        state.update(state="mismatch", problem=f"{missing.size} catalog regions are not in the region "
                                               f"index, {extra.size} index ids are not in the catalog")
    return state
