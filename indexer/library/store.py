"""The library: a folder holding the SQLite catalog, per-video feature files, models and the index.

```
LIB/library.json          manifest: format version, settings, the model that produced the vectors
LIB/catalog.sqlite        videos, clips (+ FTS5 over narrations), transcripts, ground-truth steps
LIB/features/<id>.safetensors   one feature file per video (actbert.data.VideoFeatures)
LIB/index/                FAISS index + its manifest
LIB/models/               detector, verb classifier, ActBERT checkpoint (the demo's)
LIB/previews/             browser-playable transcodes when a source codec is not
```

Catalog ids: ``videos.id`` and ``clips.id`` are SQLite INTEGER PRIMARY KEYs; clip ids are the FAISS
ids and are never reused (``AUTOINCREMENT``; older catalogs are migrated when opened for writing).
A video's clips are replaced in the same transaction that marks the video done, so a crash never
leaves half a video's clips; an interrupted video stays ``pending`` and is redone.

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
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

log = logging.getLogger(__name__)

LIBRARY_FORMAT = 1
STATUSES = ("pending", "done", "failed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS videos (
    id INTEGER PRIMARY KEY,
    video_id TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    fingerprint TEXT,
    size_bytes INTEGER,
    duration_sec REAL, fps REAL, width INTEGER, height INTEGER, rotation_deg INTEGER, codec TEXT,
    transcript_path TEXT,
    task TEXT, task_instance TEXT, split TEXT,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
    error TEXT,
    warnings TEXT NOT NULL DEFAULT '[]',
    extractors TEXT NOT NULL DEFAULT '{}',
    timings TEXT NOT NULL DEFAULT '{}',
    feature_path TEXT,
    preview_path TEXT,
    updated_at REAL
);
CREATE TABLE IF NOT EXISTS clips (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    video INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    clip_index INTEGER NOT NULL,
    start_sec REAL NOT NULL, end_sec REAL NOT NULL,
    narration TEXT NOT NULL DEFAULT '',
    verbs TEXT NOT NULL DEFAULT '[]',
    has_verb INTEGER NOT NULL DEFAULT 0,
    predicted_verbs TEXT NOT NULL DEFAULT '[]',
    action_classes TEXT NOT NULL DEFAULT '[]',
    UNIQUE (video, clip_index)
);
CREATE INDEX IF NOT EXISTS clips_by_video ON clips (video);
CREATE TABLE IF NOT EXISTS cues (
    video INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    start_sec REAL NOT NULL, end_sec REAL NOT NULL, text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS cues_by_video ON cues (video);
CREATE TABLE IF NOT EXISTS steps (
    video INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    step_index INTEGER NOT NULL, start_sec REAL NOT NULL, end_sec REAL NOT NULL,
    verb TEXT, description TEXT NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS clips_fts USING fts5(
    narration, content='clips', content_rowid='id', tokenize='porter unicode61'
);
CREATE TRIGGER IF NOT EXISTS clips_ai AFTER INSERT ON clips BEGIN
    INSERT INTO clips_fts(rowid, narration) VALUES (new.id, new.narration);
END;
CREATE TRIGGER IF NOT EXISTS clips_ad AFTER DELETE ON clips BEGIN
    INSERT INTO clips_fts(clips_fts, rowid, narration) VALUES ('delete', old.id, old.narration);
END;
CREATE TRIGGER IF NOT EXISTS clips_au AFTER UPDATE OF narration ON clips BEGIN
    INSERT INTO clips_fts(clips_fts, rowid, narration) VALUES ('delete', old.id, old.narration);
    INSERT INTO clips_fts(rowid, narration) VALUES (new.id, new.narration);
END;
"""


class LibraryError(Exception):
    """A library folder that cannot be opened or used, with the reason and the fix."""


class LibraryBusyError(LibraryError):
    """Another command holds the library's writer lock."""


@dataclass(frozen=True)
class ClipRecord:
    """One clip to store: times in seconds on the video's timeline."""

    clip_index: int
    start_sec: float
    end_sec: float
    narration: str = ""
    verbs: tuple[str, ...] = ()
    action_classes: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Hit:
    """A clip with its video, as search and the app show it."""

    clip_id: int
    video_id: str
    video_path: str
    clip_index: int
    start_sec: float
    end_sec: float
    narration: str
    task: str | None


class Catalog:
    """The SQLite catalog. Safe to share between threads (one connection, a lock)."""

    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        self.path = Path(path)
        if readonly and not self.path.is_file():
            raise LibraryError(f"no catalog at {self.path}")
        uri = f"file:{self.path}?mode=ro" if readonly else f"file:{self.path}"
        try:
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA foreign_keys = ON")
            if not readonly:
                self._db.execute("PRAGMA journal_mode = WAL")
                _migrate_clip_ids(self._db)
                self._db.executescript(_SCHEMA)
            else:
                self._db.execute("SELECT count(*) FROM videos").fetchone()
        except sqlite3.DatabaseError as exc:
            raise LibraryError(f"{self.path}: not a readable catalog ({exc})") from exc
        self._lock = threading.RLock()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Catalog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    # ---- videos ---------------------------------------------------------------------------

    def upsert_video(self, video_id: str, path: str, fingerprint: str, size_bytes: int,
                     **fields: Any) -> int:
        """Register a video (or update its path/fingerprint); returns its row id. A changed
        fingerprint resets it to ``pending``."""
        with self._lock, self._db:
            row = self._db.execute("SELECT id, fingerprint FROM videos WHERE video_id = ?",
                                   (video_id,)).fetchone()
            if row is None:
                cur = self._db.execute(
                    "INSERT INTO videos (video_id, path, fingerprint, size_bytes, updated_at) "
                    "VALUES (?, ?, ?, ?, ?)", (video_id, path, fingerprint, size_bytes, time.time()))
                rowid = cur.lastrowid
            else:
                rowid = row["id"]
                reset = ", status = 'pending'" if row["fingerprint"] != fingerprint else ""
                self._db.execute(
                    f"UPDATE videos SET path = ?, fingerprint = ?, size_bytes = ?{reset} WHERE id = ?",
                    (path, fingerprint, size_bytes, rowid))
            if fields:
                self._set(rowid, fields)
            return rowid

    def _set(self, rowid: int, fields: dict[str, Any]) -> None:
        encoded = {k: (json.dumps(v) if isinstance(v, (dict, list, tuple)) else v)
                   for k, v in fields.items()}
        names = ", ".join(f"{k} = ?" for k in encoded)
        self._db.execute(f"UPDATE videos SET {names}, updated_at = ? WHERE id = ?",
                         (*encoded.values(), time.time(), rowid))

    def update_video(self, rowid: int, **fields: Any) -> None:
        with self._lock, self._db:
            self._set(rowid, fields)

    def mark_failed(self, rowid: int, error: str, **fields: Any) -> None:
        self.update_video(rowid, status="failed", error=error, **fields)

    def video(self, video_id: str) -> sqlite3.Row | None:
        rows = self.query("SELECT * FROM videos WHERE video_id = ?", (video_id,))
        return rows[0] if rows else None

    def videos(self, status: str | None = None) -> list[sqlite3.Row]:
        if status:
            return self.query("SELECT * FROM videos WHERE status = ? ORDER BY video_id", (status,))
        return self.query("SELECT * FROM videos ORDER BY video_id")

    def delete_video(self, video_id: str) -> list[int]:
        """Remove a video and its clips; returns the removed clip ids (to drop from the index)."""
        with self._lock, self._db:
            ids = [r["id"] for r in self._db.execute(
                "SELECT clips.id FROM clips JOIN videos ON videos.id = clips.video "
                "WHERE videos.video_id = ?", (video_id,))]
            self._db.execute("DELETE FROM videos WHERE video_id = ?", (video_id,))
        return ids

    # ---- a finished video, in one transaction -----------------------------------------------

    def complete_video(self, rowid: int, clips: list[ClipRecord], cues: list[tuple[float, float, str]],
                       steps: list[tuple[int, float, float, str | None, str]] = (),
                       **fields: Any) -> tuple[list[int], list[int]]:
        """Replace the video's clips, cues and steps and mark it done, atomically.

        Returns (removed clip ids, new clip ids)."""
        with self._lock, self._db:
            removed = [r[0] for r in self._db.execute("SELECT id FROM clips WHERE video = ?", (rowid,))]
            for table in ("clips", "cues", "steps"):
                self._db.execute(f"DELETE FROM {table} WHERE video = ?", (rowid,))
            new = []
            for clip in clips:
                cur = self._db.execute(
                    "INSERT INTO clips (video, clip_index, start_sec, end_sec, narration, verbs, "
                    "has_verb, action_classes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (rowid, clip.clip_index, clip.start_sec, clip.end_sec, clip.narration,
                     json.dumps(list(clip.verbs)), int(bool(clip.verbs)),
                     json.dumps([list(c) for c in clip.action_classes])))
                new.append(cur.lastrowid)
            self._db.executemany("INSERT INTO cues (video, start_sec, end_sec, text) VALUES (?, ?, ?, ?)",
                                 [(rowid, *cue) for cue in cues])
            self._db.executemany(
                "INSERT INTO steps (video, step_index, start_sec, end_sec, verb, description) "
                "VALUES (?, ?, ?, ?, ?, ?)", [(rowid, *step) for step in steps])
            self._set(rowid, {"status": "done", "error": None, **fields})
        return removed, new

    # ---- clips --------------------------------------------------------------------------------

    def reserve_clip_ids(self, upto: int) -> None:
        """Make every new clip id larger than ``upto`` (ids an index may still hold)."""
        with self._lock, self._db:
            row = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'clips'").fetchone()
            if row is None:
                self._db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('clips', ?)", (upto,))
            elif row[0] < upto:
                self._db.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'clips'", (upto,))

    def videos_of_clips(self, clip_ids: Iterable[int]) -> list[str]:
        """The video ids owning ``clip_ids`` (sorted, each once)."""
        ids = [int(i) for i in clip_ids]
        found: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            found |= {r[0] for r in self.query(
                "SELECT DISTINCT videos.video_id FROM clips JOIN videos ON videos.id = clips.video "
                f"WHERE clips.id IN ({','.join('?' * len(chunk))})", chunk)}
        return sorted(found)

    def clip_ids(self) -> list[int]:
        return [r[0] for r in self.query(
            "SELECT clips.id FROM clips JOIN videos ON videos.id = clips.video "
            "WHERE videos.status = 'done' ORDER BY clips.id")]

    def clips_of(self, video_id: str) -> list[sqlite3.Row]:
        return self.query("SELECT clips.* FROM clips JOIN videos ON videos.id = clips.video "
                          "WHERE videos.video_id = ? ORDER BY clip_index", (video_id,))

    def hits(self, clip_ids: Iterable[int]) -> dict[int, Hit]:
        ids = [int(i) for i in clip_ids]
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.query(
            "SELECT clips.id, videos.video_id, videos.path, clips.clip_index, clips.start_sec, "
            f"clips.end_sec, clips.narration, videos.task FROM clips JOIN videos ON videos.id = clips.video "
            f"WHERE clips.id IN ({marks}) AND videos.status = 'done'", ids)
        return {r[0]: Hit(*r) for r in rows}

    def set_predicted_verbs(self, predictions: dict[int, list[tuple[str, float]]]) -> None:
        with self._lock, self._db:
            self._db.executemany("UPDATE clips SET predicted_verbs = ? WHERE id = ?",
                                 [(json.dumps(v), k) for k, v in predictions.items()])

    def search_narration(self, query: str, limit: int = 50) -> list[tuple[int, float]]:
        """FTS5 full-text search over narrations: [(clip id, bm25 score (higher = better))]."""
        terms = [t for t in "".join(c if c.isalnum() else " " for c in query).split() if t]
        if not terms:
            return []
        match = " OR ".join(f'"{t}"' for t in terms)
        rows = self.query(
            "SELECT rowid, -bm25(clips_fts) FROM clips_fts WHERE clips_fts MATCH ? "
            "ORDER BY bm25(clips_fts) LIMIT ?", (match, limit))
        return [(r[0], r[1]) for r in rows]

    def integrity_check(self) -> str:
        """SQLite's ``PRAGMA integrity_check``: "ok", or the first problem it reports."""
        return str(self.query("PRAGMA integrity_check")[0][0])

    def stats(self) -> dict[str, int]:
        counts = {s: 0 for s in STATUSES}
        for row in self.query("SELECT status, count(*) FROM videos GROUP BY status"):
            counts[row[0]] = row[1]
        counts["clips"] = self.query("SELECT count(*) FROM clips")[0][0]
        return counts


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
                self._manifest, self._manifest_stamp = json.loads(path.read_text()), stamp
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


def write_json_atomic(path: Path, data: Any) -> None:
    """Replace ``path`` with ``data`` as JSON: a temporary file of this writer's own, fsync, rename."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "w") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


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


def _migrate_clip_ids(db: sqlite3.Connection) -> None:
    """Catalogs made before clip ids were AUTOINCREMENT: rebuild ``clips`` with it, ids kept, in one
    transaction (the FTS index, keyed by clip id, stays valid; triggers are recreated by the schema)."""
    row = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'clips'").fetchone()
    if row is None or "AUTOINCREMENT" in row[0].upper():
        return
    create = _SCHEMA[_SCHEMA.index("CREATE TABLE IF NOT EXISTS clips ("):]
    create = create[:create.index(");") + 2].replace("IF NOT EXISTS clips (", "clips_new (")
    columns = ", ".join(r[1] for r in db.execute("PRAGMA table_info(clips)"))
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute(create)
        db.execute(f"INSERT INTO clips_new ({columns}) SELECT {columns} FROM clips")
        db.execute("DROP TABLE clips")
        db.execute("ALTER TABLE clips_new RENAME TO clips")
        db.commit()
    except BaseException:
        db.rollback()
        raise
    log.info("catalog %s: clip ids are now never reused (AUTOINCREMENT)", db)
