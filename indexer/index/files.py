"""On-disk form of a ``ClipIndex``: one FAISS file plus ``manifest.json``, replaced atomically.

Layout of an index directory::

    manifest.json               {"format", "dimension", "metric", "factory", "count", "nprobe",
                                 "auto_factory", "index_file", "bytes", "sha256", "model",
                                 "faiss_version", "saved_at"}
    clips-<sha256[:16]>.faiss   faiss.write_index output named by its checksum

Save order: write the FAISS file under a temporary name, fsync, rename it to its checksum name, fsync
the directory, then write the manifest the same way (temporary file, fsync, rename, fsync), and only
then delete the file the previous manifest named. A save killed at any point leaves the previous
manifest naming the previous, complete file, so the previous index still loads. A save touches only
its own temporary files; files left by a killed save are removed by ``remove_orphans`` (run under the
library's writer lock). A reader that meets a file replaced by a save in progress retries once.

Load checks, in order: the manifest parses and has every field, the file exists with the recorded
size and SHA-256, every size it declares fits in it (``faiss_check``: FAISS would allocate them
first), FAISS reads it, its width, metric and count match, and the model fingerprint equals
the caller's. Every failure is a ``ClipIndexError`` naming the fix, ``python -m indexer reindex LIB``.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import faiss

from actbert.atomic import fsync_file, temp_path, write_text
from indexer.errors import ClipIndexError, LibraryError
from indexer.index.faiss_check import DeclaredSizeError, check_declared_sizes
from indexer.library.store import checked_path

logger = logging.getLogger(__name__)

FORMAT = 1
MANIFEST = "manifest.json"
METRIC = "inner_product"
FIELDS = ("format", "dimension", "metric", "factory", "count", "nprobe", "auto_factory", "index_file",
          "bytes", "sha256", "model", "faiss_version", "saved_at")


class IndexMissingError(ClipIndexError):
    """No index has been saved in the directory."""


class IndexCorruptError(ClipIndexError):
    """The manifest or the index file is unreadable, truncated or fails its checksum."""


class IndexMismatchError(ClipIndexError):
    """The index is intact but was built by another model or format than the one asked for."""


def fingerprint(model: Any) -> str:
    """Canonical JSON of a model fingerprint (checkpoint, config), for comparison and display."""
    return json.dumps(model, sort_keys=True, separators=(",", ":"))


def sha256_file(path: Path, block: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def _atomic_write_text(path: Path, text: str) -> None:
    write_text(path, text)
    fsync_file(path.parent)


def save(directory: str | Path, index: faiss.Index, *, factory: str, nprobe: int, model: Any,
         auto_factory: bool) -> Path:
    """Write ``index`` and its manifest into ``directory`` (created if needed); returns the manifest path.

    The caller must keep ``index`` unchanged meanwhile and run one save per directory at a time.
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    fingerprint(model)  # fail before writing anything when the fingerprint is not JSON
    previous = _named_file(folder)
    tmp = temp_path(folder / "clips.faiss")
    try:
        faiss.write_index(index, str(tmp))
        fsync_file(tmp)
        digest = sha256_file(tmp)
        final = folder / f"clips-{digest[:16]}.faiss"
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_file(folder)
    manifest = {
        "format": FORMAT, "dimension": int(index.d), "metric": METRIC, "factory": factory,
        "count": int(index.ntotal), "nprobe": int(nprobe), "auto_factory": bool(auto_factory),
        "index_file": final.name, "bytes": final.stat().st_size, "sha256": digest, "model": model,
        "faiss_version": faiss.__version__,
        "saved_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    _atomic_write_text(folder / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    if previous and previous != final.name:
        (folder / previous).unlink(missing_ok=True)
    logger.info("saved %d clips (%s, %d bytes) to %s", manifest["count"], factory, manifest["bytes"], final)
    return folder / MANIFEST


def _named_file(folder: Path) -> str | None:
    """The index file the current manifest names, if there is a readable manifest."""
    try:
        name = json.loads((folder / MANIFEST).read_text(encoding="utf-8")).get("index_file")
        checked_path(folder, name)
    except (OSError, ValueError, AttributeError, LibraryError):
        return None
    return name


def remove_orphans(directory: str | Path) -> list[str]:
    """Delete what killed saves left in ``directory``: temporary files and index files the manifest
    does not name. Only for a writer holding the library lock (no save runs meanwhile)."""
    folder = Path(directory)
    named = _named_file(folder)
    removed = []
    for path in [*folder.glob("clips-*.faiss"), *folder.glob(".clips.faiss.tmp-*"),
                 *folder.glob(f".{MANIFEST}.tmp-*")]:
        if path.name != named:
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return removed


def read_manifest(directory: str | Path, library: str | Path | None = None) -> dict[str, Any]:
    """The parsed manifest of ``directory``, every field present; raises ``ClipIndexError`` otherwise."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise IndexMissingError(f"no clip index in {directory} ({MANIFEST} is missing)", library)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise IndexCorruptError(f"the index manifest {path} is unreadable ({error})", library) from error
    missing = [f for f in FIELDS if not isinstance(manifest, dict) or f not in manifest]
    if missing:
        raise IndexCorruptError(f"the index manifest {path} lacks {', '.join(missing)}", library)
    try:
        checked_path(Path(directory), manifest["index_file"], what="index file")
    except LibraryError as error:
        raise IndexCorruptError(f"the index manifest {path} is unusable ({error})", library) from error
    if manifest["format"] != FORMAT or manifest["metric"] != METRIC:
        raise IndexMismatchError(f"the index in {directory} has format {manifest['format']} and metric "
                                 f"{manifest['metric']}; this version reads format {FORMAT}, {METRIC}", library)
    return manifest


def load(directory: str | Path, *, expected_model: Any = None,
         library: str | Path | None = None) -> tuple[faiss.Index, dict[str, Any]]:
    """Verified ``(faiss index, manifest)`` from ``directory``; checks listed in the module docstring.

    A save may replace the manifest and delete the file it named between our reads (the file
    vanishes under us, or the manifest names a file already gone): up to three retries."""
    for attempt in range(3):
        try:
            return _load(directory, expected_model, library)
        except IndexCorruptError:
            time.sleep(0.05 * (attempt + 1))
    return _load(directory, expected_model, library)


def _load(directory: str | Path, expected_model: Any,
          library: str | Path | None) -> tuple[faiss.Index, dict[str, Any]]:
    manifest = read_manifest(directory, library)
    path = checked_path(Path(directory), manifest["index_file"])  # checked by read_manifest
    try:
        size = path.stat().st_size
        digest = sha256_file(path) if size == manifest["bytes"] else None
    except FileNotFoundError:  # never written, or deleted by a save since we read the manifest
        raise IndexCorruptError(f"the index file {path} named by the manifest is missing", library) from None
    if size != manifest["bytes"]:
        raise IndexCorruptError(f"the index file {path} has {size} bytes, the manifest says "
                                f"{manifest['bytes']} (truncated or overwritten)", library)
    if digest != manifest["sha256"]:
        raise IndexCorruptError(f"the index file {path} fails its SHA-256 check (corrupted)", library)
    try:  # FAISS allocates what a file declares before reading it: sizes are checked first
        check_declared_sizes(path)
    except DeclaredSizeError as error:
        raise IndexCorruptError(f"the index file {path} {error}: not read", library) from error
    except FileNotFoundError:  # deleted by a save since its checksum was read: load retries
        raise IndexCorruptError(f"the index file {path} named by the manifest is missing", library) from None
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as error:
        raise IndexCorruptError(f"FAISS cannot read {path} ({str(error).splitlines()[0]})", library) from error
    facts = {"dimension": int(index.d), "count": int(index.ntotal),
             "metric": METRIC if index.metric_type == faiss.METRIC_INNER_PRODUCT else str(index.metric_type)}
    wrong = {k: (v, manifest[k]) for k, v in facts.items() if v != manifest[k]}
    if wrong:
        detail = ", ".join(f"{k} {got} (manifest: {want})" for k, (got, want) in wrong.items())
        raise IndexCorruptError(f"the index file {path} disagrees with its manifest: {detail}", library)
    if expected_model is not None and fingerprint(expected_model) != fingerprint(manifest["model"]):
        raise IndexMismatchError(f"the index in {directory} was built from model {fingerprint(manifest['model'])}, "
                                 f"not the model in use {fingerprint(expected_model)}", library)
    return index, manifest
