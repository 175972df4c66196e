"""The library: a folder holding the SQLite catalog, per-video feature files, models and the index.

```
LIB/library.json          manifest: format version, settings, the model that produced the vectors
LIB/catalog.sqlite        videos, clips (+ FTS5 over narrations), transcripts, ground-truth steps
LIB/features/<id>.safetensors   one feature file per video (actbert.data.VideoFeatures)
LIB/index/                FAISS index + its manifest
LIB/models/               detector, verb classifier, ActBERT checkpoint (the demo's)
LIB/previews/             browser-playable transcodes when a source codec is not
```

The catalog (``indexer.library.catalog``) holds every table and every query.

One writer, many readers: every writing command holds ``Library.writing()``, an exclusive
``fcntl.flock`` on ``LIB/.lock`` (re-entrant within a process); readers take no lock. library.json is
re-read under the lock before each change and replaced atomically, so no writer loses another's field.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from actbert.atomic import write_json
from indexer.errors import LibraryBusyError, LibraryError
from indexer.library.catalog import Catalog

__all__ = ["LIBRARY_FORMAT", "Library", "LibraryBusyError", "LibraryError", "write_json_atomic", "writer_lock"]

log = logging.getLogger(__name__)

LIBRARY_FORMAT = 1


class Library:
    """A library folder. ``Library.create`` makes one; ``Library(path)`` opens an existing one."""

    def __init__(self, root: str | Path, readonly: bool = False) -> None:
        self.root = Path(root).expanduser().resolve()
        if not (self.root / "library.json").is_file():
            raise LibraryError(
                f"{self.root} is not an ActBERT library (no library.json): create one with "
                f"`python -m indexer ingest VIDEOS --library {root}` or `python -m indexer demo`")
        self._manifest: dict = {}
        self._manifest_stamp: tuple | None = None
        if self.manifest.get("format") != LIBRARY_FORMAT:
            raise LibraryError(f"{self.root}: library format {self.manifest.get('format')} is not "
                               f"{LIBRARY_FORMAT}; rebuild it with `python -m indexer ingest`")
        self.catalog = Catalog(self.root / "catalog.sqlite", readonly=readonly)

    @property
    def manifest(self) -> dict:
        """library.json as on disk now (re-read when another process has replaced it)."""
        path = self.root / "library.json"
        try:
            stat = path.stat()
            stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
            if stamp != self._manifest_stamp:
                manifest = json.loads(path.read_text())
                _check_manifest(path, manifest)
                self._manifest, self._manifest_stamp = manifest, stamp
        except (OSError, json.JSONDecodeError) as exc:
            raise LibraryError(f"{path} is unreadable ({exc})") from exc
        return self._manifest

    @classmethod
    def create(cls, root: str | Path, **settings: Any) -> "Library":
        root = Path(root).expanduser().resolve()
        root.mkdir(parents=True, exist_ok=True)
        for sub in ("features", "index", "models", "previews"):
            (root / sub).mkdir(exist_ok=True)
        with writer_lock(root):
            manifest = root / "library.json"
            if not manifest.exists():
                write_json_atomic(manifest, {"format": LIBRARY_FORMAT, "created": time.time(),
                                             "settings": settings, "model": None})
        return cls(root)

    def writing(self, timeout: float | None = None) -> contextlib.AbstractContextManager:
        """Hold the library's exclusive writer lock (``LIB/.lock``) for a block; re-entrant.

        ``timeout`` None waits as long as another writer runs; otherwise ``LibraryBusyError``."""
        return writer_lock(self.root, timeout)

    def update_manifest(self, **fields: Any) -> None:
        """Set top-level fields of library.json: re-read under the writer lock, replaced atomically."""
        with self.writing():
            self._manifest_stamp = None
            manifest = dict(self.manifest)
            manifest.update(fields)
            write_json_atomic(self.root / "library.json", manifest)
            self._manifest, self._manifest_stamp = manifest, None

    def feature_path(self, video_id: str) -> Path:
        return self.root / "features" / f"{video_id}.safetensors"

    def resolve_inside(self, path: str | Path) -> Path:
        """``path`` resolved, if it lies inside the library or one of its registered source
        folders; otherwise ``LibraryError`` (the app serves nothing else)."""
        resolved = Path(path).expanduser().resolve()
        if not any(resolved == r or r in resolved.parents for r in self.allowed_roots()):
            raise LibraryError(f"{path} is outside the library's folders")
        if not resolved.is_file():
            raise LibraryError(f"{path} does not exist")
        return resolved

    def allowed_roots(self) -> list[Path]:
        """The library folder and its registered source folders."""
        return [self.root] + [Path(p).resolve() for p in self.manifest.get("sources", [])]

    def add_source(self, folder: str | Path) -> None:
        """Register a folder the user named (the app may serve the videos under it)."""
        folder = str(Path(folder).expanduser().resolve())
        with self.writing():
            sources = list(self.manifest.get("sources", []))
            if folder not in sources:
                self.update_manifest(sources=sources + [folder])

    def remove_orphans(self) -> list[str]:
        """Delete files killed writers left: temporary files, and feature files of videos the
        catalog does not hold. Takes the writer lock."""
        with self.writing():
            known = {r["video_id"] for r in self.catalog.videos()}
            features = self.root / "features"
            candidates = [*self.root.glob(".library.json.tmp-*"), *features.glob(".*.tmp-*"),
                          *(p for p in features.glob("*.safetensors")
                            if p.name[:-len(".safetensors")] not in known)]
            for path in candidates:
                path.unlink(missing_ok=True)
            return [str(path.relative_to(self.root)) for path in candidates]

    def close(self) -> None:
        self.catalog.close()


# the manifest's fields that are read by path (``manifest["model"]["checkpoint"]``): their JSON types
_MANIFEST_OBJECTS = ("settings", "extractors", "demo", "index_backend")
_MANIFEST_MODELS = ("model", "model_no_regions")


def _check_manifest(path: Path, manifest: Any) -> None:
    """A one-line ``LibraryError`` when library.json does not have the shape its readers rely on."""
    def refuse(problem: str) -> None:
        raise LibraryError(f"{path}: {problem}; fix the file or rebuild the library with "
                           "`python -m indexer ingest`")

    if not isinstance(manifest, dict):
        refuse(f"the manifest is a JSON {type(manifest).__name__}, not an object")
    for key in _MANIFEST_OBJECTS:
        if manifest.get(key) is not None and not isinstance(manifest[key], dict):
            refuse(f'"{key}" is {json.dumps(manifest[key])[:60]}, not an object')
    for key in _MANIFEST_MODELS:
        model = manifest.get(key)
        if model is not None and not (isinstance(model, dict) and isinstance(model.get("checkpoint"), str)):
            refuse(f'"{key}" is {json.dumps(model)[:60]}, not an object naming its "checkpoint" folder')
    for key in ("sources", "verbs"):
        value = manifest.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            refuse(f'"{key}" is {json.dumps(value)[:60]}, not a list of strings')


def write_json_atomic(path: Path, data: Any) -> None:
    """Replace ``path`` with ``data`` as JSON: a temporary file of this writer's own, fsync, rename."""
    write_json(path, data, indent=2, sort_keys=True)


# ---- the writer lock ------------------------------------------------------------------------------


class _WriterLock:
    """flock on ``LIB/.lock`` held while any thread of this process is inside ``hold``; threads of
    one process take turns through an RLock (flock alone does not exclude them)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rlock = threading.RLock()
        self.depth = 0
        self.fd: int | None = None

    @contextlib.contextmanager
    def hold(self, timeout: float | None):
        if not self.rlock.acquire(timeout=-1 if timeout is None else timeout):
            raise LibraryBusyError(f"{self.path.parent} is being written by another task of this process")
        try:
            if self.depth == 0:
                self.fd = _flock(self.path, timeout)
            self.depth += 1
            try:
                yield
            finally:
                self.depth -= 1
                if self.depth == 0:
                    os.close(self.fd)  # releases the flock
                    self.fd = None
        finally:
            self.rlock.release()


_LOCKS: dict[Path, _WriterLock] = {}
_LOCKS_GUARD = threading.Lock()


def writer_lock(root: str | Path, timeout: float | None = None) -> contextlib.AbstractContextManager:
    """The exclusive writer lock of the library folder ``root`` (see ``Library.writing``)."""
    path = Path(root).resolve() / ".lock"
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault(path, _WriterLock(path))
    return lock.hold(timeout)


def _flock(path: Path, timeout: float | None) -> int:
    """An fd of ``path`` holding LOCK_EX; waits (saying so once) or raises ``LibraryBusyError``."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = None if timeout is None else time.monotonic() + timeout
    told = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            if deadline is not None and time.monotonic() >= deadline:
                os.close(fd)
                raise LibraryBusyError(f"{path.parent} is being written by another command "
                                       f"(pid {holder}); try again when it has finished") from None
            if not told:
                log.warning("waiting for pid %s, which is writing %s", holder, path.parent)
                told = True
            time.sleep(0.05)
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd
