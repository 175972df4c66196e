"""Catalog and index kept in step: the FAISS index holds exactly the catalog's finished clip ids.

Every writing command ends with ``reconcile_index`` (and ``python -m indexer repair LIB`` runs it
alone): under the library's writer lock it removes files left by killed writers, drops index ids the
catalog no longer has, embeds and adds the finished clips the index lacks, and rebuilds an index that
is missing, unreadable or built by another model. Clip ids are never reused
(``indexer.library.catalog``), so an id present on both sides always means the same clip. ``index_state`` reports the same comparison
read-only (``indexer status``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from indexer.index.backends import open_index
from indexer.index.clip_index import ClipIndex
from indexer.index.embed import (
    embed_library,
    library_model_dir,
    load_model,
    set_library_model,
)
from indexer.index.files import ClipIndexError, IndexMissingError, remove_orphans
from indexer.library.store import Library, LibraryError

log = logging.getLogger(__name__)

# What one unreadable video's features may raise while it is embedded (it is marked failed).
_VIDEO_ERRORS = (LibraryError, OSError, ValueError, RuntimeError, KeyError)


def model_record(library: Library, checkpoint: str | Path) -> dict:
    """The ``model`` entry library.json would name for ``checkpoint``, without writing it: the
    record ``embed.set_library_model`` makes, caught before it reaches the manifest."""

    class _Capture:
        root = library.root
        record: dict = {}

        def update_manifest(self, **fields) -> None:
            self.record = fields["model"]

    try:
        return set_library_model(_Capture(), checkpoint)
    except (OSError, ValueError) as exc:
        raise LibraryError(f"{checkpoint} is not a model checkpoint ({exc})".splitlines()[0]) from exc


def build_index(library: Library, checkpoint: str | Path | None = None,
                model: dict | None = None) -> ClipIndex:
    """Embed every finished clip and write a fresh index naming ``model`` (default: the library's)."""
    from indexer.index.search import build_index as build

    return build(library, checkpoint, model=model)


def reconcile_index(library: Library) -> tuple[ClipIndex | None, dict]:
    """Bring the index to the catalog's finished clip ids; returns (index or None, report).

    Report: ``added`` and ``removed`` ids, ``rebuilt`` (bool), ``failed`` videos (their features
    could not be embedded: marked failed, so the next ingest redoes them), ``orphans`` removed."""
    report = {"added": 0, "removed": 0, "rebuilt": False, "failed": {}, "orphans": []}
    with library.writing():
        report["orphans"] = library.remove_orphans() + remove_orphans(library.root / "index")
        model = library.manifest.get("model")
        if not model:
            return None, report
        folder = library.root / "index"
        try:
            index = open_index(library)  # FAISS in the library, or Milvus (indexer.index.backends)
        except ClipIndexError as exc:
            log.warning("rebuilding the index: %s", exc.problem)
            report["failed"] = _drop_unreadable(library, library.catalog.videos_of_clips(
                library.catalog.clip_ids()))
            index = build_index(library)
            report.update(rebuilt=True, added=len(index))
            return index, report
        held = index.ids()
        if held.size:
            library.catalog.reserve_clip_ids(int(held.max()))
        missing = np.setdiff1d(np.array(library.catalog.clip_ids(), np.int64), held)
        if missing.size:
            videos = library.catalog.videos_of_clips(missing.tolist())
            report["failed"] = _drop_unreadable(library, videos)
            videos = [v for v in videos if v not in report["failed"]]
            if videos:
                vectors, ids = embed_library(library, load_model(str(library_model_dir(library))), videos)
                keep = np.isin(ids, missing)
                index.add(vectors[keep], ids[keep])
                report["added"] = int(keep.sum())
        extra = np.setdiff1d(index.ids(), np.array(library.catalog.clip_ids(), np.int64))
        if extra.size:
            report["removed"] = index.remove(extra)
        if report["added"] or report["removed"]:
            index.save(folder)
    return index, report


def _drop_unreadable(library: Library, video_ids: list[str]) -> dict[str, str]:
    """Videos among ``video_ids`` whose feature file cannot be read or disagrees with the catalog,
    marked failed with the reason (the next ingest redoes them)."""
    from actbert.data import VideoFeatures

    failed = {}
    for video_id in video_ids:
        row = library.catalog.video(video_id)
        try:
            if not row["feature_path"]:
                raise LibraryError("no feature file recorded")
            features = VideoFeatures.load(library.root / row["feature_path"])
            clips = len(library.catalog.clips_of(video_id))
            if features.num_clips != clips:
                raise LibraryError(f"{features.num_clips} feature clips but {clips} catalog clips")
        except _VIDEO_ERRORS as exc:
            reason = f"features unusable, re-ingest: {type(exc).__name__}: {exc}".splitlines()[0]
            library.catalog.mark_failed(row["id"], reason)
            failed[video_id] = reason
            log.warning("%s: %s", video_id, reason)
    return failed


def index_state(library: Library) -> dict:
    """Catalog against index, read-only: ``state`` is ``ok``, ``no model``, ``missing``,
    ``unreadable`` or ``mismatch`` (ids differ); with the counts and up to 10 ids each way."""
    want = np.array(library.catalog.clip_ids(), np.int64)
    state = {"state": "ok", "catalog_clips": int(want.size), "index_clips": None,
             "missing": [], "extra": [], "problem": None}
    model = library.manifest.get("model")
    if not model:
        state["state"] = "no model"
        return state
    try:
        index = open_index(library)
    except ClipIndexError as exc:
        missing_index = isinstance(exc, IndexMissingError)
        state.update(state="missing" if missing_index else "unreadable", problem=exc.problem)
        return state
    held = index.ids()
    missing, extra = np.setdiff1d(want, held), np.setdiff1d(held, want)
    state.update(index_clips=int(held.size), missing=missing[:10].tolist(), extra=extra[:10].tolist())
    if missing.size or extra.size:
        state.update(state="mismatch", problem=f"{missing.size} catalog clips are not in the index, "
                                               f"{extra.size} index ids are not in the catalog")
    return state
