"""A library is one writer's, many readers': the writer lock, library.json re-read under it, the
index reconciled to the catalog (repair, status), clip ids never reused, merge validation, clip
ids from URLs, symlinked videos, and a bounded concurrency run (2 writers, 4 readers)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from indexer.__main__ import main
from indexer.index.reconcile import index_state, reconcile_index
from indexer.library.catalog import _SCHEMA
from indexer.library.inspector import parse_clip_id
from indexer.library.store import Library, LibraryBusyError
from tests.app.tiny_library import build_tiny_library
from tests.indexer.library_helpers import (
    assert_consistent,
    clone_videos,
    copy_library,
    orphan_files,
)

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A tiny library with a model and an index (random features and weights)."""
    return build_tiny_library(tmp_path_factory.mktemp("template"))


@pytest.fixture
def lib(template, tmp_path) -> Path:
    return copy_library(template, tmp_path / "lib")


HOLD_LOCK = """
import sys, time
sys.path.insert(0, {root!r})
from indexer.library.store import Library
with Library({lib!r}).writing():
    print("held", flush=True)
    time.sleep({seconds})
"""


def test_writer_lock_excludes_other_processes(lib):
    child = subprocess.Popen([sys.executable, "-c", HOLD_LOCK.format(root=str(ROOT), lib=str(lib), seconds=3)],
                             stdout=subprocess.PIPE, text=True, env=ENV)
    assert child.stdout.readline().strip() == "held"
    library = Library(lib)
    with pytest.raises(LibraryBusyError, match=f"pid {child.pid}"):
        with library.writing(timeout=0.2):
            pass
    started = time.monotonic()
    library.update_manifest(note="after")  # waits for the other writer, then writes
    assert time.monotonic() - started > 0.5
    child.wait()
    with library.writing(), library.writing():  # re-entrant in one process
        pass
    assert Library(lib).manifest.extra["note"] == "after"


def test_manifest_is_reread_under_the_lock(lib):
    first, second = Library(lib), Library(lib)
    assert first.manifest.model
    first.update_manifest(a=1)
    second.update_manifest(b=2)  # second's earlier read must not drop a
    reread = json.loads((lib / "library.json").read_text())
    assert reread["a"] == 1 and reread["b"] == 2 and reread["model"] == first.manifest.model.to_json()
    assert first.manifest.extra["b"] == 2  # readers see other processes' writes


def test_index_drift_is_reported_and_repaired(lib, capsys):
    library = Library(lib)
    before = library.catalog.clip_ids()
    # A video committed after the index was saved (a kill between catalog and index) ...
    added = clone_videos(library, library, "late")
    # ... and a catalog deletion the index did not follow.
    gone = library.catalog.delete_video(library.catalog.videos("done")[0]["video_id"])
    state = index_state(library)
    assert state["state"] == "mismatch" and state["index_clips"] == len(before)
    assert main(["status", str(lib)]) == 0
    assert "index mismatch" in capsys.readouterr().out
    assert main(["repair", str(lib), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["removed"] == len(gone) and report["added"] == sum(
        len(library.catalog.clips_of(v)) for v in added)
    assert report["integrity_check"] == "ok" and report["index"]["state"] == "ok"
    assert_consistent(lib)


def test_clip_ids_are_never_reused(lib):
    library = Library(lib)
    top = max(library.catalog.clip_ids())
    video = library.catalog.videos("done")[-1]["video_id"]  # holds the largest ids
    library.catalog.delete_video(video)
    clone_videos(library, library, "new")
    assert min(set(library.catalog.clip_ids()) - set(range(top + 1))) > top


def test_old_catalogs_are_migrated_to_unreused_ids(tmp_path):
    path = tmp_path / "catalog.sqlite"
    db = sqlite3.connect(path)
    db.executescript(_SCHEMA.replace(" AUTOINCREMENT", ""))  # the schema before this change
    db.executescript("""
        INSERT INTO videos (id, video_id, path, status) VALUES (1, 'a', '/a.mp4', 'done');
        INSERT INTO clips (id, video, clip_index, start_sec, end_sec, narration) VALUES
            (1, 1, 0, 0, 4, 'cut the tomato'), (7, 1, 1, 4, 8, 'pour the oil');
        DELETE FROM clips WHERE id = 7;""")
    db.commit()
    db.close()
    (tmp_path / "library.json").write_text(json.dumps({"format": 1, "model": None}))
    library = Library(tmp_path)  # opening for writing migrates
    sql = library.catalog.query("SELECT sql FROM sqlite_master WHERE name = 'clips'")[0][0]
    assert "AUTOINCREMENT" in sql.upper()
    assert [r["narration"] for r in library.catalog.clips_of("a")] == ["cut the tomato"]
    assert library.catalog.search_narration("tomato") and library.catalog.integrity_check() == "ok"
    library.catalog.reserve_clip_ids(7)  # ids an old index may still hold are skipped
    from indexer.library.catalog import ClipRecord

    _, new = library.catalog.complete_video(1, [ClipRecord(0, 0, 4, "stir")], [])
    assert new == [8]


def test_failed_reindex_with_a_new_checkpoint_changes_nothing(lib, tmp_path, capsys):
    before = (lib / "library.json").read_text()
    bad = tmp_path / "bad_checkpoint"
    bad.mkdir()
    (bad / "config.json").write_text("{}")
    (bad / "model.safetensors").write_bytes(b"not weights")
    assert main(["reindex", str(lib), "--checkpoint", str(bad)]) == 1
    assert (lib / "library.json").read_text() == before
    assert index_state(Library(lib, readonly=True))["state"] == "ok"
    assert main(["reindex", str(lib)]) == 0  # the suggested fix works


def test_merge_refuses_escaping_ids_and_foreign_schemas(lib, tmp_path, capsys):
    shard = copy_library(lib, tmp_path / "shard")
    db = sqlite3.connect(shard / "catalog.sqlite")
    victim = db.execute("SELECT video_id FROM videos LIMIT 1").fetchone()[0]
    db.execute("UPDATE videos SET video_id = '../../escaped' WHERE video_id = ?", (victim,))
    db.commit()
    db.close()
    out = tmp_path / "merged"
    assert main(["merge", str(out), str(shard)]) == 0
    printed = capsys.readouterr().out
    assert "1 skipped" in printed and "not a plain file name" in printed
    assert not list(tmp_path.rglob("escaped*"))
    assert_consistent(out)
    foreign = copy_library(lib, tmp_path / "foreign")
    db = sqlite3.connect(foreign / "catalog.sqlite")
    db.execute("ALTER TABLE videos DROP COLUMN task")
    db.commit()
    db.close()
    assert main(["merge", str(tmp_path / "merged2"), str(foreign)]) == 1
    assert "lacks task" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["99999999999999999999999", "9223372036854775808", "-1", "1e3", "٣", "12a"])
def test_clip_ids_from_urls_are_range_checked(text):
    with pytest.raises(ValueError, match="whole number from 0 to 9223372036854775807"):
        parse_clip_id(text)
    assert parse_clip_id(" 9223372036854775807 ") == 2**63 - 1


def test_symlinked_videos_do_not_grow_sources(lib, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    folder = tmp_path / "videos"
    folder.mkdir()
    (outside / "secret.mp4").write_bytes(b"")
    (folder / "link.mp4").symlink_to(outside / "secret.mp4")
    (folder / "loop.mp4").symlink_to(folder / "loop.mp4")
    from indexer.library.ingest import IngestSettings, ingest

    library = Library(lib)
    summary = ingest(library, [folder], IngestSettings(action_weights="none", regions=False), progress=False)
    assert summary.failed == 2 and "symlink loop" in " ".join(summary.errors.values())
    assert str(folder.resolve()) in library.manifest.sources
    assert not any(str(outside) in s for s in library.manifest.sources)
    with pytest.raises(Exception, match="outside the library"):
        library.resolve_inside(outside / "secret.mp4")
    assert_consistent(lib)


# ---- concurrency: 2 writers and 4 readers on one library -----------------------------------------

WRITER = """
import json, shutil, sys, time
sys.path.insert(0, {root!r})
from indexer.__main__ import main
from indexer.library.store import Library
from tests.indexer.library_helpers import clone_videos
lib, role, deadline = {lib!r}, {role!r}, time.time() + {seconds}
library = Library(lib)
template = Library({template!r}, readonly=True)
log = {{"merged": [], "deleted": [], "last": 0, "errors": []}}
n = 0
goal = "merged" if role == "merger" else "deleted"
# past the deadline only until it did its work once (a loaded machine may take the whole window
# to import and merge the first shard): at most 120 s more
while time.time() < deadline or (not log[goal] and time.time() < deadline + 120):
    n += 1
    try:
        if role == "merger":
            shard = Library.create(f"{{lib}}-shard{{n}}")
            log["merged"] += clone_videos(template, shard, f"m{{n}}")
            assert main(["merge", lib, str(shard.root)]) == 0
            shutil.rmtree(shard.root)
        else:
            done = [r["video_id"] for r in library.catalog.videos("done") if "-m" in r["video_id"]]
            if done:
                assert main(["delete", lib, done[0]]) == 0
                log["deleted"].append(done[0])
        library.update_manifest(**{{role: n}})
        log["last"] = n
    except Exception as exc:
        log["errors"].append(repr(exc))
print(json.dumps(log))
"""

READER = """
import json, sys, time
import numpy as np
sys.path.insert(0, {root!r})
from indexer.index.clip_index import ClipIndex
from indexer.library.store import Library
lib, deadline = {lib!r}, time.time() + {seconds}
rng = np.random.default_rng({seed})
reads, errors = 0, []
while time.time() < deadline:
    try:
        library = Library(lib, readonly=True)
        model = library.manifest.model.to_json()
        index = ClipIndex.load(library.root / "index", expected_model=model, library=library.root)
        scores, ids = index.search(rng.standard_normal(index.dim).astype("float32"), 5)
        library.catalog.clips_by_id(ids[0][ids[0] >= 0])
        library.catalog.stats()
        library.close()
        reads += 1
    except Exception as exc:
        errors.append(repr(exc))
print(json.dumps({{"reads": reads, "errors": errors[:5], "error_count": len(errors)}}))
"""


def test_two_writers_and_four_readers(template, tmp_path):
    """Bounded (~10 s of traffic, each writer longer only until it merged or deleted once):
    merges and deletes through the CLI, manifest updates, readers loading the index and the
    catalog meanwhile. 0 lost updates, 0 crashes, 0 reader errors."""
    lib = copy_library(template, tmp_path / "lib")
    seconds = 10
    fmt = {"root": str(ROOT), "lib": str(lib), "template": str(template), "seconds": seconds}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER.format(role=role, **fmt)], env=ENV,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for role in ("merger", "deleter")]
    procs += [subprocess.Popen([sys.executable, "-c", READER.format(seed=i, **fmt)], env=ENV,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for i in range(4)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=seconds + 300)
        assert proc.returncode == 0, err[-2000:]  # 0 crashes
        results.append(json.loads(out.strip().splitlines()[-1]))
    merger, deleter, readers = results[0], results[1], results[2:]
    assert merger["errors"] == [] and deleter["errors"] == []
    assert [r["error_count"] for r in readers] == [0, 0, 0, 0], [r["errors"] for r in readers]
    assert all(r["reads"] > 0 for r in readers)
    assert merger["merged"] and deleter["deleted"], (merger, deleter)
    library = Library(lib, readonly=True)
    manifest = library.manifest
    assert manifest.extra["merger"] == merger["last"] and manifest.extra["deleter"] == deleter["last"]
    assert manifest.model == Library(template, readonly=True).manifest.model
    expected = {r["video_id"] for r in Library(template, readonly=True).catalog.videos()}
    expected |= set(merger["merged"]) - set(deleter["deleted"])
    assert {r["video_id"] for r in library.catalog.videos()} == expected  # no lost catalog update
    assert_consistent(lib)  # no lost index update: catalog = index ids
    print(f"concurrency: {len(merger['merged'])} videos merged, {len(deleter['deleted'])} deleted, "
          f"{sum(r['reads'] for r in readers)} reads by 4 readers in {seconds} s")


def test_repair_on_a_library_without_a_model(tmp_path, capsys):
    Library.create(tmp_path / "empty")
    (tmp_path / "empty" / "features" / ".x.safetensors.tmp-1").write_bytes(b"partial")
    assert main(["repair", str(tmp_path / "empty"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["orphans"] == ["features/.x.safetensors.tmp-1"] and report["index"]["state"] == "no model"
    assert orphan_files(tmp_path / "empty") == []
    _, again = reconcile_index(Library(tmp_path / "empty"))
    assert again["orphans"] == []
