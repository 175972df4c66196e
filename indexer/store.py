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
ids. A video's clips are replaced in the same transaction that marks the video done, so a crash
never leaves half a video's clips; an interrupted video stays ``pending`` and is redone.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
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
    id INTEGER PRIMARY KEY,
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
        try:
            self.manifest = json.loads((self.root / "library.json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise LibraryError(f"{self.root}/library.json is unreadable ({exc})") from exc
        if self.manifest.get("format") != LIBRARY_FORMAT:
            raise LibraryError(f"{self.root}: library format {self.manifest.get('format')} is not "
                               f"{LIBRARY_FORMAT}; rebuild it with `python -m indexer ingest`")
        self.catalog = Catalog(self.root / "catalog.sqlite", readonly=readonly)

    @classmethod
    def create(cls, root: str | Path, **settings: Any) -> "Library":
        root = Path(root).expanduser().resolve()
        root.mkdir(parents=True, exist_ok=True)
        for sub in ("features", "index", "models", "previews"):
            (root / sub).mkdir(exist_ok=True)
        manifest = root / "library.json"
        if not manifest.exists():
            write_json_atomic(manifest, {"format": LIBRARY_FORMAT, "created": time.time(),
                                         "settings": settings, "model": None})
        return cls(root)

    def update_manifest(self, **fields: Any) -> None:
        self.manifest.update(fields)
        write_json_atomic(self.root / "library.json", self.manifest)

    def feature_path(self, video_id: str) -> Path:
        return self.root / "features" / f"{video_id}.safetensors"

    def resolve_inside(self, path: str | Path) -> Path:
        """``path`` resolved, if it lies inside the library or one of its registered source
        folders; otherwise ``LibraryError`` (the app serves nothing else)."""
        resolved = Path(path).expanduser().resolve()
        roots = [self.root] + [Path(p).resolve() for p in self.manifest.get("sources", [])]
        if not any(resolved == r or r in resolved.parents for r in roots):
            raise LibraryError(f"{path} is outside the library's folders")
        if not resolved.is_file():
            raise LibraryError(f"{path} does not exist")
        return resolved

    def add_source(self, folder: str | Path) -> None:
        folder = str(Path(folder).expanduser().resolve())
        sources = self.manifest.setdefault("sources", [])
        if folder not in sources:
            sources.append(folder)
            self.update_manifest()

    def close(self) -> None:
        self.catalog.close()


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)

