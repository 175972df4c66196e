"""Smaller faults of issue 29 (item 11): an interrupted ``delete A B`` can be run again; an
interrupted ``reindex --checkpoint`` is finished, not rebuilt back to the old model; a manifest
format written as text; ``--k -3`` reported as typed; ``similar`` on a clip id that does not exist;
a folder that cannot be listed is reported; an image named ``.mp4`` is not a video."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from indexer.__main__ import main
from indexer.errors import LibraryError, VideoError
from indexer.features.video import probe, write_video
from indexer.index.reconcile import model_record
from indexer.index.search import build_index
from indexer.library.store import Library
from tests.app.tiny_library import build_tiny_library, tiny_model
from tests.indexer.library_helpers import assert_consistent, copy_library

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return build_tiny_library(tmp_path_factory.mktemp("template"))


@pytest.fixture
def lib(template, tmp_path) -> Path:
    return copy_library(template, tmp_path / "lib")


def exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's refusal of an option
        return int(exc.code)


def test_an_interrupted_delete_can_be_run_again(lib, capsys):
    first, second = [r["video_id"] for r in Library(lib).catalog.videos()][:2]
    assert main(["delete", str(lib), first]) == 0  # the run that was interrupted after its first id
    capsys.readouterr()
    assert main(["delete", str(lib), first, second]) == 0
    captured = capsys.readouterr()
    assert f"no video {first!r}" in captured.err and "1 videos" in captured.out
    assert Library(lib, readonly=True).catalog.video(second) is None
    assert_consistent(lib)
    assert main(["delete", str(lib), first]) == 1  # nothing at all to delete is an error
    assert "no video to delete" in capsys.readouterr().err


def test_an_interrupted_reindex_is_finished_not_rolled_back(lib, tmp_path, capsys):
    new = tmp_path / "new_model"
    tiny_model(seed=1).save_pretrained(new)
    library = Library(lib)
    record = model_record(library, new)
    build_index(library, new, model=record)  # reindex --checkpoint killed before library.json's switch
    assert main(["repair", str(lib)]) == 0
    assert "finished an interrupted reindex" in capsys.readouterr().out
    assert Library(lib, readonly=True).manifest.model == record
    assert_consistent(lib)


def test_a_format_written_as_text_gets_a_sensible_message(lib):
    manifest = json.loads((lib / "library.json").read_text())
    (lib / "library.json").write_text(json.dumps({**manifest, "format": "1"}))
    with pytest.raises(LibraryError, match=r"\"format\" is '1' \(str\); it must be the number 1"):
        Library(lib)


def test_k_is_reported_as_typed_and_a_missing_clip_is_named(lib, capsys):
    assert exit_code(["similar", str(lib), "1", "--k", "-3"]) != 0
    err = capsys.readouterr().err
    assert "'-3'" in err and "-2" not in err
    assert exit_code(["search", str(lib), "tomato", "--k", "0"]) != 0
    assert "'0'" in capsys.readouterr().err
    assert main(["similar", str(lib), "999999"]) == 1
    err = capsys.readouterr().err
    assert "no clip 999999" in err and "not finished" not in err


def test_an_image_named_mp4_is_not_a_video(tmp_path):
    for suffix in (".png", ".jpg"):
        image = tmp_path / f"image{suffix}"
        cv2.imwrite(str(image), np.full((40, 60, 3), 128, np.uint8))
        named = image.rename(tmp_path / f"image_{suffix[1:]}.mp4")
        with pytest.raises(VideoError, match="an image .*not a video"):
            probe(named)


LIST = """
import json, sys
sys.path.insert(0, {root!r})
from indexer.library.discovery import discover
problems = []
videos = discover([{folder!r}], problems)
print(json.dumps({{"videos": [str(v) for v in videos], "problems": problems}}))
"""
# Root reads every folder: the listing then runs without the capabilities that let it.
AS_ROOT_WITHOUT_DAC = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search"]


def test_a_folder_that_cannot_be_listed_is_reported(tmp_path):
    (tmp_path / "ok").mkdir()
    (tmp_path / "locked").mkdir()
    write_video(tmp_path / "ok" / "a.mp4", [np.zeros((32, 32, 3), np.uint8)] * 2, fps=2)
    (tmp_path / "locked" / "hidden.mp4").write_bytes(b"")
    (tmp_path / "locked").chmod(0o000)
    try:
        prefix = AS_ROOT_WITHOUT_DAC if os.getuid() == 0 else []
        result = subprocess.run([*prefix, sys.executable, "-c", LIST.format(root=str(ROOT), folder=str(tmp_path))],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        found = json.loads(result.stdout)
        assert [Path(v).name for v in found["videos"]] == ["a.mp4"]
        assert len(found["problems"]) == 1 and "locked: folder not searched" in found["problems"][0]
    finally:
        (tmp_path / "locked").chmod(0o755)
