"""Poison feature files (issue 29, item 3): a truncated file, NaN features, features of another
width. Every writing command that meets one ends with rc 0 and one line per bad video, the bad
video is marked failed with its reason (``repair`` moves its file to ``LIB/quarantine/``), the
index is brought to the catalog and search keeps working; merge refuses shards made by other
extractors before copying anything; ingest refuses to write features the model cannot take."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from actbert.data import VideoFeatures
from indexer.__main__ import main
from indexer.features.video import write_video
from indexer.index.search import Searcher
from indexer.library.catalog import ClipRecord
from indexer.library.ingest import IngestSettings, ingest
from indexer.library.store import Library
from tests.app.tiny_library import build_tiny_library
from tests.indexer.library_helpers import assert_consistent, copy_library

KINDS = {"truncated": "unreadable", "nan": "NaN", "wide": "512 wide"}


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return build_tiny_library(tmp_path_factory.mktemp("template"))


def add_poisoned_video(lib: Path, kind: str) -> str:
    """A finished video the index does not hold yet (as after a kill before reconciliation), whose
    feature file is poisoned in the way ``kind`` names. Returns its id."""
    library = Library(lib)
    row = library.catalog.videos("done")[0]
    features = VideoFeatures.load(library.root / row["feature_path"])
    video_id = f"poison-{kind}"
    path = library.feature_path(video_id)
    if kind == "nan":
        features.action_features[0, 0] = np.nan
    if kind == "wide":  # a shard ingested with another action backbone
        features.action_features = np.ones((features.num_clips, 512), np.float32)
    features.save(path)
    if kind == "truncated":
        path.write_bytes(path.read_bytes()[:300])
    rowid = library.catalog.upsert_video(video_id, row["path"], "poison", 1)
    clips = [ClipRecord(c["clip_index"], c["start_sec"], c["end_sec"], c["narration"])
             for c in library.catalog.clips_of(row["video_id"])]
    library.catalog.complete_video(rowid, clips, [], feature_path=f"features/{video_id}.safetensors")
    library.close()
    return video_id


def search_works(lib: Path) -> None:
    result = Searcher(Library(lib, readonly=True)).search("cut the tomato", k=3, mode="vector")
    assert result.hits


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("command", ["repair", "reindex", "delete", "ingest"])
def test_a_poison_feature_file_fails_its_video_and_the_writer_finishes(template, tmp_path, capsys, kind,
                                                                        command):
    lib = copy_library(template, tmp_path / "lib")
    bad = add_poisoned_video(lib, kind)
    other = Library(lib).catalog.videos("done")[-1]["video_id"]
    (tmp_path / "nothing").mkdir()
    args = {"repair": ["repair", str(lib)], "reindex": ["reindex", str(lib)],
            "delete": ["delete", str(lib), other],
            "ingest": ["ingest", str(tmp_path / "nothing"), "--library", str(lib), "--action-weights", "none",
                       "--no-regions"]}[command]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert bad in out and KINDS[kind] in out, out  # the bad video, named with its reason
    row = Library(lib, readonly=True).catalog.video(bad)
    assert row["status"] == "failed" and KINDS[kind] in row["error"] and "\n" not in row["error"]
    assert not (lib / "features" / f"{bad}.safetensors").exists()
    assert (lib / "quarantine" / f"{bad}.safetensors").is_file()
    assert_consistent(lib)
    search_works(lib)


def test_merge_skips_a_poison_shard_video_and_refuses_other_extractors(template, tmp_path, capsys):
    shard = copy_library(template, tmp_path / "shard")
    bad = add_poisoned_video(shard, "wide")
    out = copy_library(template, tmp_path / "out")  # its model takes 20-wide action features
    assert main(["merge", str(out), str(shard)]) == 0
    printed = capsys.readouterr().out
    assert f"skipped {bad}" in printed and "512 wide" in printed
    assert Library(out, readonly=True).catalog.video(bad) is None
    assert_consistent(out)
    search_works(out)

    other = copy_library(template, tmp_path / "r3d")
    manifest = json.loads((other / "library.json").read_text())
    manifest["extractors"]["actions"]["name"] = "r3d_18"
    (other / "library.json").write_text(json.dumps(manifest))
    fresh = tmp_path / "fresh"
    assert main(["merge", str(fresh), str(template), str(other)]) == 1
    err = capsys.readouterr().err
    assert "other extractors" in err and "r3d_18" in err and err.count("\n") == 1
    assert Library(fresh, readonly=True).catalog.videos() == []  # nothing copied
    assert not list((fresh / "features").iterdir())
    assert main(["merge", str(out), str(other)]) == 1  # nor into a library of the other extractors
    assert "other extractors" in capsys.readouterr().err
    assert main(["merge", str(tmp_path / "fresh2"), str(shard)]) == 0  # no model: the shard's widths
    assert "skipped poison-wide" in capsys.readouterr().out


def test_ingest_refuses_features_its_model_cannot_take(template, tmp_path):
    """Real I3D features (1024 wide) into a library whose model takes 20: the video fails with the
    reason at commit, no feature file stays, the index stays whole."""
    lib = copy_library(template, tmp_path / "lib")
    folder = tmp_path / "videos"
    folder.mkdir()
    write_video(folder / "clip.mp4", [np.full((48, 64, 3), 30 * i, np.uint8) for i in range(8)], fps=8)
    summary = ingest(Library(lib), [folder], IngestSettings(action_weights="none", regions=False),
                     progress=False)
    assert summary.failed == 1
    (reason,) = summary.errors.values()
    assert "action_features are 1024 wide" in reason and "takes 20" in reason
    assert sorted(p.stem for p in (lib / "features").iterdir()) == sorted(
        r["video_id"] for r in Library(lib, readonly=True).catalog.videos("done"))
    assert_consistent(lib)
    db = sqlite3.connect(lib / "catalog.sqlite")
    assert db.execute("SELECT COUNT(*) FROM videos WHERE status = 'failed'").fetchone()[0] == 1
    db.close()
