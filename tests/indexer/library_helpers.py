"""Builders and checks shared by the library-integrity tests (lock, reconciliation, faults)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from actbert.data import VideoFeatures
from indexer.index.reconcile import index_state
from indexer.library.catalog import ClipRecord
from indexer.library.store import Library


def clone_videos(source: Library, target: Library, suffix: str) -> list[str]:
    """Copy every finished video of ``source`` into ``target`` under ids ``<id>-<suffix>`` (rows,
    clips and feature file, through the public catalog API). Returns the new video ids."""
    made = []
    for row in source.catalog.videos("done"):
        video_id = f"{row['video_id']}-{suffix}"
        features = VideoFeatures.load(source.root / row["feature_path"])
        features.save(target.feature_path(video_id))
        rowid = target.catalog.upsert_video(video_id, row["path"], row["fingerprint"], row["size_bytes"])
        clips = [ClipRecord(c["clip_index"], c["start_sec"], c["end_sec"], c["narration"])
                 for c in source.catalog.clips_of(row["video_id"])]
        target.catalog.complete_video(rowid, clips, [], feature_path=f"features/{video_id}.safetensors",
                                      duration_sec=row["duration_sec"], width=row["width"],
                                      height=row["height"], task=row["task"])
        made.append(video_id)
    return made


def copy_library(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".lock"))
    return target


def orphan_files(root: Path) -> list[str]:
    """Files a finished library must not hold: temporary files, feature files of no catalog video,
    index files the index manifest does not name."""
    library = Library(root, readonly=True)
    known = {r["video_id"] for r in library.catalog.videos()}
    found = [str(p.relative_to(root)) for p in root.rglob("*") if ".tmp" in p.name]
    found += [p.name for p in (root / "features").glob("*.safetensors") if p.stem not in known]
    manifest = root / "index" / "manifest.json"
    named = json.loads(manifest.read_text())["index_file"] if manifest.exists() else None
    found += [p.name for p in (root / "index").glob("clips-*.faiss") if p.name != named]
    library.close()
    return found


def assert_consistent(root: Path) -> None:
    """catalog = index ids, SQLite integrity ok, no orphan files."""
    library = Library(root, readonly=True)
    assert library.catalog.integrity_check() == "ok"
    state = index_state(library)
    assert state["state"] in ("ok", "no model"), state
    library.close()
    assert orphan_files(root) == []


def search_snapshot(root: Path, queries: list[np.ndarray], k: int = 8) -> list:
    """Vector-search results as (video, clip index, rounded score): comparable across libraries."""
    from indexer.index.clip_index import ClipIndex

    library = Library(root, readonly=True)
    index = ClipIndex.load(root / "index", expected_model=library.manifest.get("model"))
    out = []
    for query in queries:
        scores, ids = index.search(query, k)
        hits = library.catalog.clips_by_id(ids[0][ids[0] >= 0])
        ranked = sorted(((hits[int(i)].video_id, hits[int(i)].clip_index, round(float(s), 4))
                         for s, i in zip(scores[0], ids[0]) if int(i) in hits), key=lambda h: (-h[2], h[:2]))
        out.append(ranked)
    library.close()
    return out
