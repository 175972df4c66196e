"""Builders and checks shared by the library-integrity tests (lock, reconciliation, faults)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from actbert.data import VideoFeatures
from indexer.index.reconcile import index_state
from indexer.library.catalog import ClipRecord
from indexer.library.store import Library, LibraryError


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
    """catalog = index ids = region index ids, SQLite integrity ok, no orphan files."""
    library = Library(root, readonly=True)
    assert library.catalog.integrity_check() == "ok"
    state = index_state(library)
    assert state["state"] in ("ok", "no model"), state
    assert_region_index_equals_features(library)
    library.close()
    assert orphan_files(root) == []


def expected_regions(library: Library) -> tuple[np.ndarray, np.ndarray]:
    """The naive reference of the region index, read from the feature files alone: for every clip
    of every finished video, its regions in file order, id ``clip_id * 4096 + k`` for the k-th;
    returns (sorted ids, their unit feature vectors). A video whose recorded feature path leaves
    the library (a hostile catalog) is not read: its ids come from the catalog's region counts and
    its vectors are NaN."""
    ids, vectors, width = [], [], None
    counts = dict(library.catalog.region_counts())
    for row in library.catalog.videos("done"):
        clips = library.catalog.clips_of(row["video_id"])
        try:
            features = VideoFeatures.load(library.file(row["feature_path"]))
        except LibraryError:
            for clip in clips:
                ids += [int(clip["id"]) * 4096 + k for k in range(counts[int(clip["id"])] or 0)]
                vectors += [None] * (counts[int(clip["id"])] or 0)
            continue
        width = features.region_features.shape[1]
        for clip in clips:
            for k, r in enumerate(np.flatnonzero(features.region_clip == clip["clip_index"])):
                ids.append(int(clip["id"]) * 4096 + k)
                vector = features.region_features[r].astype(np.float64)
                vector = vector if vector.any() else np.ones_like(vector)  # no direction: the uniform one
                vectors.append(vector / np.linalg.norm(vector))
    if not ids:
        return np.zeros(0, np.int64), np.zeros((0, 0), np.float32)
    order = np.argsort(ids)
    vectors = [np.full(width or 1, np.nan) if v is None else v for v in vectors]
    return np.array(ids, np.int64)[order], np.array(vectors, np.float32)[order]


def assert_region_index_equals_features(library: Library) -> None:
    """The region index (LIB/regions) holds exactly ``expected_regions``' ids and vectors."""
    from indexer.index.clip_index import ClipIndex

    ids, vectors = expected_regions(library)
    folder = library.root / "regions"
    if not (folder / "manifest.json").exists():
        assert ids.size == 0, f"no region index, {ids.size} regions in the catalog's feature files"
        return
    index = ClipIndex.load(folder)
    assert np.array_equal(index.ids(), ids), (index.ids()[:10], ids[:10])
    read = ~np.isnan(vectors).any(axis=1) if ids.size else np.zeros(0, bool)
    if read.any():
        np.testing.assert_allclose(index.reconstruct_many(ids[read]), vectors[read], atol=1e-5)
    named = json.loads((folder / "manifest.json").read_text())["index_file"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(["manifest.json", named])


def search_snapshot(root: Path, queries: list[np.ndarray], k: int = 8) -> list:
    """Vector-search results as (video, clip index, rounded score): comparable across libraries."""
    from indexer.index.clip_index import ClipIndex

    library = Library(root, readonly=True)
    index = ClipIndex.load(root / "index", expected_model=library.manifest.model.to_json())
    out = []
    for query in queries:
        scores, ids = index.search(query, k)
        hits = library.catalog.clips_by_id(ids[0][ids[0] >= 0])
        ranked = sorted(((hits[int(i)].video_id, hits[int(i)].clip_index, round(float(s), 4))
                         for s, i in zip(scores[0], ids[0]) if int(i) in hits), key=lambda h: (-h[2], h[:2]))
        out.append(ranked)
    library.close()
    return out
