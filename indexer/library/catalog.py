"""The SQLite catalog of a library (``LIB/catalog.sqlite``): the only module that speaks SQL.

Tables: ``videos`` (one row per source video: path, fingerprint, probe results, task/split,
status, error, warnings, stage timings, feature file), ``clips`` (spans, narration, verbs, action
classes, ``narrated``: 0 for a window over a stretch nobody talks over; ``region_count``: the
regions its feature file holds, NULL until the region index has read them; FTS5 ``clips_fts`` over
the narrations), ``cues`` (the transcript) and ``steps`` (ground
truth). Every query the product runs is a named method here; ``tests/test_architecture.py`` fails
when SQL appears in any other module.

Catalog ids: ``videos.id`` and ``clips.id`` are SQLite INTEGER PRIMARY KEYs; clip ids are the FAISS
ids and are never reused (``AUTOINCREMENT``; older catalogs are migrated when opened for writing).
A video's clips are replaced in the same transaction that marks the video done, so a crash never
leaves half a video's clips; an interrupted video stays ``pending`` and is redone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from indexer.errors import LibraryError

log = logging.getLogger(__name__)

STATUSES = ("pending", "done", "failed")
TABLES = ("videos", "clips", "cues", "steps")

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
    narrated INTEGER NOT NULL DEFAULT 1,
    region_count INTEGER,
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


@dataclass(frozen=True)
class ClipRecord:
    """One clip to store: times in seconds on the video's timeline."""

    clip_index: int
    start_sec: float
    end_sec: float
    narration: str = ""
    verbs: tuple[str, ...] = ()
    action_classes: tuple[tuple[str, float], ...] = ()
    narrated: bool = True  # False: a window over a stretch without narration (``cover_gaps``)


@dataclass(frozen=True)
class Clip:
    """One clip of a library as every reader sees it (search hits, the inspector, the app): its
    catalog row joined with its video. Times in seconds on the video's timeline;
    ``feature_path`` relative to the library; ``verbs`` from the narration; ``action_classes``
    (the backbone's) and ``predicted_verbs`` (the verb classifier's) as (name, probability);
    ``narrated`` False for a window over a stretch nobody talks over (found by the visual signal
    only)."""

    clip_id: int
    video_id: str
    video_path: str
    feature_path: str | None
    clip_index: int
    start_sec: float
    end_sec: float
    narration: str
    task: str | None
    verbs: tuple[str, ...] = ()
    action_classes: tuple[tuple[str, float], ...] = ()
    predicted_verbs: tuple[tuple[str, float], ...] = ()
    narrated: bool = True


def parse_pairs(text: str | None) -> tuple[tuple[str, float], ...]:
    """A JSON list of [name, probability] pairs as tuples (empty when unreadable)."""
    try:
        return tuple((str(name), float(prob)) for name, prob in json.loads(text or "[]"))
    except (ValueError, TypeError):
        return ()


def _clip(row: sqlite3.Row) -> Clip:
    return Clip(clip_id=int(row["id"]), video_id=row["vid"], video_path=row["vpath"],
                feature_path=row["fpath"], clip_index=int(row["clip_index"]),
                start_sec=float(row["start_sec"]), end_sec=float(row["end_sec"]),
                narration=row["narration"] or "", task=row["vtask"],
                verbs=tuple(json.loads(row["verbs"] or "[]")),
                action_classes=parse_pairs(row["action_classes"]),
                predicted_verbs=parse_pairs(row["predicted_verbs"]),
                narrated=clip_narrated(row))


def clip_narrated(row: sqlite3.Row) -> bool:
    """A clip row's ``narrated`` flag; True in catalogs made before whole-video coverage (the
    column is added when such a catalog is first opened for writing)."""
    return "narrated" not in row.keys() or bool(row["narrated"])


_CLIP_SELECT = ("SELECT clips.*, videos.video_id AS vid, videos.path AS vpath, videos.task AS vtask, "
                "videos.feature_path AS fpath FROM clips JOIN videos ON videos.id = clips.video ")


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
                _add_narrated_column(self._db)
                _add_region_counts(self._db)
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
        """Rows of one SQL statement. For this module's methods (and tests that poke a catalog):
        other modules call the named methods below."""
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
                    "has_verb, action_classes, narrated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (rowid, clip.clip_index, clip.start_sec, clip.end_sec, clip.narration,
                     json.dumps(list(clip.verbs)), int(bool(clip.verbs)),
                     json.dumps([list(c) for c in clip.action_classes]), int(bool(clip.narrated))))
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

    def region_counts(self) -> list[tuple[int, int | None]]:
        """(clip id, region count) of every clip of a finished video, by clip id; the count is None
        until the region index has read the clip's feature file (``set_region_counts``), and for
        every clip of a catalog made before the column existed and opened read-only."""
        count = "clips.region_count" if "region_count" in self.columns("clips") else "NULL"
        return [(int(r[0]), None if r[1] is None else int(r[1])) for r in self.query(
            f"SELECT clips.id, {count} FROM clips JOIN videos ON videos.id = clips.video "
            "WHERE videos.status = 'done' ORDER BY clips.id")]

    def set_region_counts(self, counts: dict[int, int]) -> None:
        """Record how many regions each clip's feature file holds (clip id -> count)."""
        with self._lock, self._db:
            self._db.executemany("UPDATE clips SET region_count = ? WHERE id = ?",
                                 [(int(n), int(i)) for i, n in counts.items()])

    def clips_of(self, video_id: str) -> list[sqlite3.Row]:
        return self.query("SELECT clips.* FROM clips JOIN videos ON videos.id = clips.video "
                          "WHERE videos.video_id = ? ORDER BY clip_index", (video_id,))

    def clips_by_id(self, clip_ids: Iterable[int]) -> dict[int, Clip]:
        """The clips of finished videos among ``clip_ids`` (others are absent)."""
        ids = [int(i) for i in clip_ids]
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.query(_CLIP_SELECT + f"WHERE clips.id IN ({marks}) AND videos.status = 'done'", ids)
        return {int(r["id"]): _clip(r) for r in rows}

    def clip(self, clip_id: int) -> Clip | None:
        """One clip (whatever its video's status); None when the catalog has no such clip."""
        rows = self.query(_CLIP_SELECT + "WHERE clips.id = ?", (int(clip_id),))
        return _clip(rows[0]) if rows else None

    def clip_counts(self) -> dict[int, int]:
        """Clips per video, keyed by the video's row id (videos without clips are absent)."""
        return {r[0]: r[1] for r in self.query("SELECT video, count(*) FROM clips GROUP BY video")}

    def narrations(self, limit: int | None = None) -> list[str]:
        """Non-empty clip narrations in clip id order (at most ``limit``)."""
        return [r[0] for r in self.query(
            "SELECT narration FROM clips WHERE narration != '' ORDER BY id LIMIT ?",
            (-1 if limit is None else int(limit),))]

    def narrated_clips(self) -> list[tuple[int, str]]:
        """(clip id, narration) of every clip of a finished video with a non-empty narration, by
        clip id (what the semantic narration signal ranks, ``indexer.index.narration_meaning``)."""
        return [(int(r[0]), r[1]) for r in self.query(
            "SELECT clips.id, clips.narration FROM clips JOIN videos ON videos.id = clips.video "
            "WHERE videos.status = 'done' AND clips.narration != '' ORDER BY clips.id")]

    # ---- transcripts and ground truth -----------------------------------------------------------

    def cues_of(self, video_id: str) -> list[sqlite3.Row]:
        """The video's transcript cues (``start_sec``, ``end_sec``, ``text``) in stored order."""
        return self.query("SELECT cues.start_sec, cues.end_sec, cues.text FROM cues "
                          "JOIN videos ON videos.id = cues.video WHERE videos.video_id = ? "
                          "ORDER BY cues.rowid", (video_id,))

    def steps_of(self, video_id: str) -> list[sqlite3.Row]:
        """The video's ground-truth steps (``step_index``, ``start_sec``, ``end_sec``, ``verb``,
        ``description``) in step order."""
        return self.query("SELECT steps.step_index, steps.start_sec, steps.end_sec, steps.verb, "
                          "steps.description FROM steps JOIN videos ON videos.id = steps.video "
                          "WHERE videos.video_id = ? ORDER BY steps.step_index", (video_id,))

    def step_descriptions(self, distinct: bool = False, limit: int | None = None) -> list[str]:
        """Non-empty ground-truth step descriptions of every video (each once if ``distinct``)."""
        select = "SELECT DISTINCT" if distinct else "SELECT"
        return [r[0] for r in self.query(
            f"{select} description FROM steps WHERE description != '' LIMIT ?",
            (-1 if limit is None else int(limit),))]

    def columns(self, table: str) -> set[str]:
        """The column names of ``table`` (one of the catalog's tables) as this file has them."""
        if table not in TABLES:
            raise ValueError(f"{table!r} is not a catalog table ({', '.join(TABLES)})")
        return {r[1] for r in self.query(f"PRAGMA table_info({table})")}

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

    def content_fingerprint(self) -> str:
        """16 hex digits of SHA-256 over the finished clips (clip id, video id, the video file's
        fingerprint, span): two catalogs with the same value serve the same clips under the same
        ids (what a shared link's ``clip=`` means)."""
        digest = hashlib.sha256()
        for row in self.query(
                "SELECT clips.id, videos.video_id, videos.fingerprint, clips.start_sec, clips.end_sec "
                "FROM clips JOIN videos ON videos.id = clips.video WHERE videos.status = 'done' "
                "ORDER BY clips.id"):
            digest.update(json.dumps([row[0], row[1], row[2], round(row[3], 3), round(row[4], 3)]).encode())
        return digest.hexdigest()[:16]

    def stats(self) -> dict[str, int]:
        counts = {s: 0 for s in STATUSES}
        for row in self.query("SELECT status, count(*) FROM videos GROUP BY status"):
            counts[row[0]] = row[1]
        counts["clips"] = self.query("SELECT count(*) FROM clips")[0][0]
        return counts


def _add_region_counts(db: sqlite3.Connection) -> None:
    """Catalogs made before ``clips.region_count``: add the column (NULL: counted by the next
    reconciliation of the region index)."""
    if "region_count" not in {r[1] for r in db.execute("PRAGMA table_info(clips)")}:
        with db:
            db.execute("ALTER TABLE clips ADD COLUMN region_count INTEGER")


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


def _add_narrated_column(db: sqlite3.Connection) -> None:
    """Catalogs made before whole-video coverage: add ``clips.narrated`` (1: their clips were all
    made from narration, or were windows of a video without any)."""
    if "narrated" not in {r[1] for r in db.execute("PRAGMA table_info(clips)")}:
        with db:
            db.execute("ALTER TABLE clips ADD COLUMN narrated INTEGER NOT NULL DEFAULT 1")
        log.info("catalog %s: clips carry a narrated flag", db)
