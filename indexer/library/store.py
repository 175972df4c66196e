"""The library: a folder holding the SQLite catalog, per-video feature files, models and the index.

```
LIB/library.json          manifest (``indexer.library.manifest.LibraryManifest``): format version,
                          settings, the model that produced the vectors
LIB/catalog.sqlite        videos, clips (+ FTS5 over narrations), transcripts, ground-truth steps
LIB/features/<id>.safetensors   one feature file per video (actbert.data.VideoFeatures)
LIB/index/                FAISS index + its manifest
LIB/regions/              FAISS index over every clip's regions + its manifest (indexer.index.region_index)
LIB/models/               detector, verb classifier, ActBERT checkpoint (the demo's)
LIB/previews/             browser-playable transcodes when a source codec is not
```

The catalog (``indexer.library.catalog``) holds every table and every query.

One writer, many readers: every writing command holds ``Library.writing()``, an exclusive
``fcntl.flock`` on ``LIB/.lock`` (re-entrant within a process; the holder's pid, host, command and
start are written in the file, so a waiting writer can say whom it waits for, and gives up after
``WRITER_WAIT_SEC``); readers take no lock. library.json is
re-read under the lock before each change and replaced atomically, so no writer loses another's field.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from actbert.atomic import write_json
from indexer.errors import LibraryBusyError, LibraryError
from indexer.library.catalog import Catalog
from indexer.library.paths import checked_path
from indexer.library.manifest import LIBRARY_FORMAT, LibraryManifest, ModelEntry, read_manifest

__all__ = ["LIBRARY_FORMAT", "Library", "LibraryBusyError", "LibraryError", "checked_path", "write_json_atomic",
           "writer_lock"]

log = logging.getLogger(__name__)

# How long a writing command waits for another's lock before it gives up naming the holder (s),
# and how often a waiting writer says again whom it waits for.
WRITER_WAIT_SEC = 600.0
WAIT_REPORT_SEC = 30.0


class Library:
    """A library folder. ``Library.create`` makes one; ``Library(path)`` opens an existing one."""

    def __init__(self, root: str | Path, readonly: bool = False) -> None:
        self.root = Path(root).expanduser().resolve()
        if not (self.root / "library.json").is_file():
            raise LibraryError(
                f"{self.root} is not an ActBERT library (no library.json): create one with "
                f"`python -m indexer ingest VIDEOS --library {root}` or `python -m indexer demo`")
        self._manifest: LibraryManifest | None = None
        self._manifest_stamp: tuple | None = None
        self._reread_manifest()  # checked now: a library of another format or shape is refused here
        self.catalog = Catalog(self.root / "catalog.sqlite", readonly=readonly)

    @property
    def manifest(self) -> LibraryManifest:
        """library.json as on disk now (re-read when another process has replaced it)."""
        return self._reread_manifest()

    def _reread_manifest(self) -> LibraryManifest:
        path = self.root / "library.json"
        try:
            stat = path.stat()
        except OSError as exc:
            raise LibraryError(f"{path} is unreadable ({exc})") from exc
        stamp = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if stamp != self._manifest_stamp or self._manifest is None:
            self._manifest, self._manifest_stamp = read_manifest(path), stamp
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
                write_json_atomic(manifest, LibraryManifest.new(settings).to_json())
        return cls(root)

    def writing(self, timeout: float | None = None) -> contextlib.AbstractContextManager:
        """Hold the library's exclusive writer lock (``LIB/.lock``) for a block; re-entrant.

        ``timeout`` None waits up to ``WRITER_WAIT_SEC``; then ``LibraryBusyError`` naming the holder."""
        return writer_lock(self.root, timeout)

    def update_manifest(self, **fields: Any) -> LibraryManifest:
        """Set top-level keys of library.json (JSON values, or records with ``to_json``: a
        ``ModelEntry``): re-read under the writer lock, checked, replaced atomically."""
        path = self.root / "library.json"
        with self.writing():
            self._manifest_stamp = None
            data = {**self.manifest.to_json(),
                    **{k: v.to_json() if hasattr(v, "to_json") else v for k, v in fields.items()}}
            manifest = LibraryManifest.from_json(data, path)
            write_json_atomic(path, manifest.to_json())
            self._manifest, self._manifest_stamp = manifest, None
            return manifest

    def model_dir(self, model: ModelEntry) -> Path:
        """The checkpoint folder ``model`` names (``ModelEntry.folder``: a relative one checked to
        stay inside the library)."""
        return model.folder(self.root)

    def feature_path(self, video_id: str) -> Path:
        """``LIB/features/<video_id>.safetensors``; ``LibraryError`` for an id that would leave it."""
        return checked_path(self.root / "features", video_id, ".safetensors", what="video id")

    def preview_path(self, video_id: str) -> Path:
        """``LIB/previews/<video_id>.mp4``; ``LibraryError`` for an id that would leave it."""
        return checked_path(self.root / "previews", video_id, ".mp4", what="video id")

    def file(self, relative: str) -> Path:
        """A path the catalog or library.json records relative to the library (``feature_path``,
        a model folder), checked to stay inside it."""
        return checked_path(self.root, relative, nested=True, what="library path")

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
        return [self.root] + [Path(p).resolve() for p in self.manifest.sources]

    def add_source(self, folder: str | Path) -> None:
        """Register a folder the user named (the app may serve the videos under it)."""
        folder = str(Path(folder).expanduser().resolve())
        with self.writing():
            sources = self.manifest.sources
            if folder not in sources:
                self.update_manifest(sources=[*sources, folder])

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
        if not self.rlock.acquire(timeout=WRITER_WAIT_SEC if timeout is None else timeout):
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
                    _release(self.fd)
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
    """An fd of ``path`` holding LOCK_EX, with this process recorded as the holder; waits (saying
    whom it waits for, again every ``WAIT_REPORT_SEC``) up to ``timeout`` (None: ``WRITER_WAIT_SEC``),
    then ``LibraryBusyError`` naming the holder and how long it has held the lock."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + (WRITER_WAIT_SEC if timeout is None else timeout)
    next_report = time.monotonic()
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            holder = describe_holder(os.pread(fd, 4096, 0))
            if time.monotonic() >= deadline:
                os.close(fd)
                raise LibraryBusyError(f"{path.parent} is being written by another command ({holder}); "
                                       "try again when it has finished") from None
            if time.monotonic() >= next_report:
                log.warning("waiting for the writer of %s: %s", path.parent, holder)
                next_report = time.monotonic() + WAIT_REPORT_SEC
            time.sleep(0.05)
    previous = os.pread(fd, 4096, 0)
    if previous.strip():  # a holder clears its record on release: this one was killed
        log.warning("%s: taking over a stale lock (%s; it ended without releasing it)", path.parent,
                    describe_holder(previous))
    record = {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv)[:200],
              "since": time.time()}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(record).encode(), 0)
    return fd


def _release(fd: int) -> None:
    """Clear the holder record, then release the flock (closing the fd)."""
    try:
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)


def describe_holder(raw: bytes) -> str:
    """Who holds (or held) a lock, from its record: pid, host, command and how long ago it took
    the lock; "stale" when that process is gone from this host (the lock then lives on in a
    process that inherited it). Older records hold only a pid."""
    try:
        record = json.loads(raw.decode(errors="replace"))
    except ValueError:
        record = None
    if not isinstance(record, dict):
        return f"pid {raw.decode(errors='replace').strip()[:20] or '?'}"
    pid, host = record.get("pid"), str(record.get("host", "?"))[:80]
    text = f"pid {pid} on {host}"
    if record.get("command"):
        text += f", command {str(record['command'])[:200]!r}"
    if isinstance(record.get("since"), (int, float)):
        text += f", holding it for {max(0.0, time.time() - record['since']):.0f} s"
    if host == socket.gethostname() and isinstance(pid, int) and not pid_alive(pid):
        text += f"; stale: pid {pid} is no longer running (a process it started may still hold the lock)"
    return text


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (one we may not signal counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
