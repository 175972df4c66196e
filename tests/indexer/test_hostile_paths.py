"""Every path built from a catalog or manifest value stays inside the library (issue 29, item 1).

A shared or hand-edited catalog names a video ``../../../victim_dir/victim`` (feature file
``../../../victim_dir/victim.safetensors``): every writing command (delete, merge either way,
repair, reindex, ingest, export-corpus) and the app's preview and feature readers run against it,
and the files outside the library survive byte for byte; each command ends with rc 0 or a one-line
reason, never a traceback."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from indexer.__main__ import main
from app.model_card import action_head_evidence, model_cards
from indexer.errors import LibraryError
from indexer.features.video import write_video
from indexer.index.compare import compare_checkpoint
from indexer.index.embed import library_model_dir
from indexer.library.feature_cache import load_features
from indexer.library.preview import playable_path
from indexer.library.store import Library, checked_path
from tests.app.tiny_library import build_tiny_library
from tests.indexer.library_helpers import assert_consistent, copy_library

HOSTILE = "../../../victim_dir/victim"


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return build_tiny_library(tmp_path_factory.mktemp("template"))


@pytest.fixture
def world(template, tmp_path) -> dict:
    """``tmp/a/lib`` (features three levels below ``tmp``) holding a finished video whose id and
    feature path climb to ``tmp/victim_dir``, where two files must survive."""
    lib = copy_library(template, tmp_path / "a" / "lib")
    victims = tmp_path / "victim_dir"
    victims.mkdir()
    for name in ("victim.safetensors", "victim.mp4"):
        (victims / name).write_bytes(b"precious " + name.encode())
    db = sqlite3.connect(lib / "catalog.sqlite")
    video = db.execute("SELECT video_id FROM videos LIMIT 1").fetchone()[0]
    db.execute("UPDATE videos SET video_id = ?, feature_path = ? WHERE video_id = ?",
               (HOSTILE, f"{HOSTILE}.safetensors", video))
    db.commit()
    db.close()
    return {"lib": lib, "victims": victims, "tmp": tmp_path}


def survivors(world) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(world["victims"].iterdir())}


ORIGINAL = {"victim.mp4": b"precious victim.mp4", "victim.safetensors": b"precious victim.safetensors"}


def one_line_or_ok(rc: int, err: str) -> None:
    assert rc in (0, 1)
    assert "Traceback" not in err
    if rc:
        assert err.strip().count("\n") == 0, err


@pytest.mark.parametrize("command", ["delete", "repair", "reindex", "ingest", "export-corpus", "merge-from",
                                     "merge-into"])
def test_a_hostile_id_never_touches_a_file_outside_the_library(world, command, capsys):
    lib, tmp = world["lib"], world["tmp"]
    args = {"delete": ["delete", str(lib), HOSTILE],
            "repair": ["repair", str(lib)],
            "reindex": ["reindex", str(lib)],
            "ingest": ["ingest", str(tmp / "b"), "--library", str(lib), "--action-weights", "none",
                       "--no-regions"],  # an empty folder: the run is its reconciliation
            "export-corpus": ["export-corpus", str(lib)],
            "merge-from": ["merge", str(tmp / "b" / "out"), str(lib)],  # the shard is hostile
            "merge-into": ["merge", str(lib), str(tmp / "c" / "clean")],
            }[command]
    (tmp / "b").mkdir()
    if command == "merge-into":  # the destination holds the hostile row; the shard is clean
        copy_library(lib, tmp / "c" / "clean")
        db = sqlite3.connect(tmp / "c" / "clean" / "catalog.sqlite")
        db.execute("DELETE FROM videos WHERE video_id = ?", (HOSTILE,))
        db.commit()
        db.close()
    rc = main(args)
    one_line_or_ok(rc, capsys.readouterr().err)
    assert survivors(world) == ORIGINAL
    if command in ("delete", "repair", "reindex"):
        assert rc == 0
        assert_consistent(lib)


def test_a_hostile_id_gets_no_preview_and_no_feature_read(world):
    library = Library(world["lib"])
    source = world["lib"] / "corpus" / "legacy.avi"  # not browser-playable: a preview would be written
    write_video(source, [np.full((48, 64, 3), 90, np.uint8)] * 6, fps=6, codec="mpeg4")
    with pytest.raises(LibraryError, match="outside the library"):
        playable_path(library, source, HOSTILE)
    with pytest.raises(LibraryError, match="outside the library"):
        load_features(library, f"{HOSTILE}.safetensors")
    library.update_manifest(model=replace(library.manifest.model, checkpoint="../../../victim_dir"),
                            model_no_regions=replace(library.manifest.model, checkpoint="../../../victim_dir"))
    with pytest.raises(LibraryError, match="outside the library"):
        library_model_dir(library)
    with pytest.raises(LibraryError, match="outside the library"):  # the side-by-side's second model
        compare_checkpoint(library)
    # the Model page and the Clip page's caption say so, and read nothing there
    cards = model_cards(library.root, library.manifest)
    assert [c.role for c in cards] == ["model", "model_no_regions"]
    assert all("outside the library" in c.problem and c.run is None and not c.evaluations for c in cards)
    assert action_head_evidence(library.root, library.manifest) is None
    assert survivors(world) == ORIGINAL


@pytest.mark.parametrize("name", ["..", ".", "", "a/b", "a\\b", "/etc/passwd", "x\x00y", 7, None])
def test_the_checked_constructor_refuses(tmp_path, name):
    with pytest.raises(LibraryError):
        checked_path(tmp_path, name, ".safetensors")


def test_the_checked_constructor_refuses_links_out_and_keeps_plain_names(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "out.safetensors").symlink_to(tmp_path / "elsewhere.safetensors")
    with pytest.raises(LibraryError):
        checked_path(tmp_path / "lib", "out", ".safetensors")
    assert checked_path(tmp_path / "lib", "épices l'été-0a1b", ".mp4").parent == tmp_path / "lib"
    assert checked_path(tmp_path, "models/pretrain/last", nested=True) == tmp_path / "models/pretrain/last"
    with pytest.raises(LibraryError):
        checked_path(tmp_path, "models/../../x", nested=True)
