"""Catalog and index kept in step: the FAISS index holds exactly the catalog's finished clip ids,
and the region index exactly their regions (``indexer.index.region_index``).

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
    model_fingerprint,
    model_entry,
)
from indexer.index.files import ClipIndexError, IndexMismatchError, IndexMissingError, remove_orphans
from indexer.index.region_index import reconcile_regions
from indexer.library.feature_check import FeatureWidths, drop_unusable
from indexer.library.manifest import ModelEntry
from indexer.library.store import Library, LibraryError

log = logging.getLogger(__name__)

def model_record(library: Library, checkpoint: str | Path) -> ModelEntry:
    """The ``model`` entry library.json would name for ``checkpoint`` (``embed.model_entry``),
    without writing it; ``LibraryError`` when ``checkpoint`` is no model checkpoint."""
    try:
        return model_entry(library.root, checkpoint)
    except (OSError, ValueError) as exc:
        raise LibraryError(f"{checkpoint} is not a model checkpoint ({exc})".splitlines()[0]) from exc


def build_index(library: Library, checkpoint: str | Path | None = None,
                model: ModelEntry | None = None) -> tuple[ClipIndex, dict[str, str]]:
    """Embed every finished clip and write a fresh index naming ``model`` (default: the library's).
    Videos whose feature file is unusable for that model are marked failed first; returns the
    index and those videos' reasons (``drop_unusable``)."""
    from indexer.index.search import build_index as build

    widths = FeatureWidths.of_checkpoint(checkpoint) if checkpoint else None
    failed = drop_unusable(library, [row["video_id"] for row in library.catalog.videos("done")], widths)
    return build(library, checkpoint, model=model), failed


def reconcile_index(library: Library) -> tuple[ClipIndex | None, dict]:
    """Bring the clip index, then the region index (``indexer.index.region_index``), to the
    catalog's finished clips; returns (clip index or None, report).

    Report: ``added`` and ``removed`` ids, ``rebuilt`` (bool), ``failed`` videos (their features
    could not be embedded or read: marked failed, so the next ingest redoes them), ``orphans``
    removed, ``reindex`` (what was done about an interrupted ``reindex --checkpoint``, or None),
    ``regions`` (``reconcile_regions``'s report)."""
    report = {"added": 0, "removed": 0, "rebuilt": False, "failed": {}, "orphans": [], "reindex": None}
    with library.writing():
        report["orphans"] = library.remove_orphans() + remove_orphans(library.root / "index")
        index = _reconcile_clips(library, report) if library.manifest.model else None
        _, report["regions"] = reconcile_regions(library)
        failed = report["regions"]["failed"]
        if failed:  # videos the region index could not read left the catalog: the clips follow
            report["failed"].update(failed)
            if index is not None:
                extra = np.setdiff1d(index.ids(), np.array(library.catalog.clip_ids(), np.int64))
                if extra.size:
                    report["removed"] += index.remove(extra)
                    index.save(library.root / "index")
    return index, report


def _reconcile_clips(library: Library, report: dict) -> ClipIndex:
    """The clip index brought to the catalog (the writer lock is held); fills ``report``."""
    folder = library.root / "index"
    try:
        try:
            index = open_index(library)  # FAISS in the library, or Milvus (indexer.index.backends)
        except IndexMismatchError:  # built by another model: an interrupted reindex to finish?
            report["reindex"] = finish_interrupted_reindex(library)
            if not report["reindex"]:
                raise
            index = open_index(library)
    except ClipIndexError as exc:
        log.warning("rebuilding the index: %s", exc.problem)
        index, report["failed"] = build_index(library)
        report.update(rebuilt=True, added=len(index))
        return index
    held = index.ids()
    if held.size:
        library.catalog.reserve_clip_ids(int(held.max()))
    missing = np.setdiff1d(np.array(library.catalog.clip_ids(), np.int64), held)
    if missing.size:
        videos = library.catalog.videos_of_clips(missing.tolist())
        report["failed"] = drop_unusable(library, videos)
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
    return index


def finish_interrupted_reindex(library: Library) -> str | None:
    """Roll an interrupted ``reindex --checkpoint`` forward: it writes the new index (naming the new
    model) before it switches library.json, so an intact index naming another model whose
    checkpoint is still there with the same weights is that run's finished work. library.json is
    switched to it instead of rebuilding the index back for the old model; returns what was done
    (None when there was nothing to finish)."""
    try:
        index = open_index(library, check_model=False)
    except ClipIndexError:
        return None
    old = library.manifest.model
    if not isinstance(index.model, dict) or not isinstance(index.model.get("checkpoint"), str) or \
            (old is not None and index.model == old.to_json()):
        return None
    new = ModelEntry.from_json(index.model)
    try:
        if model_fingerprint(library.model_dir(new)) != index.model.get("fingerprint"):
            return None
    except (OSError, LibraryError):
        return None
    library.update_manifest(model=new)
    message = (f"finished an interrupted reindex: the library now uses the model {new.checkpoint} "
               f"its index was built with (was {old.checkpoint if old else None})")
    log.warning(message)
    return message


def index_state(library: Library) -> dict:
    """Catalog against index, read-only: ``state`` is ``ok``, ``no model``, ``missing``,
    ``unreadable`` or ``mismatch`` (ids differ); with the counts and up to 10 ids each way."""
    want = np.array(library.catalog.clip_ids(), np.int64)
    state = {"state": "ok", "catalog_clips": int(want.size), "index_clips": None,
             "missing": [], "extra": [], "problem": None}
    if library.manifest.model is None:
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


def update_index(library: Library, removed: list[int] = (), video_ids: list[str] = ()) -> ClipIndex:
    """After a change of the catalog: the index brought to its finished clip ids
    (``reconcile_index``; ``removed`` and ``video_ids`` are implied by the catalog)."""
    index, _ = reconcile_index(library)
    return index
