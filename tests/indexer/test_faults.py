"""Faults: a bad-input corpus of 18 kinds ingested in one run (each video gets its status and reason,
the run completes, every good video is done), and ``kill -9`` of ingest at 20 seeded points, of
delete and of reindex midway: after the reruns the catalog equals the index, SQLite's integrity
check passes, no orphan file is left and searches equal those of an uninterrupted run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from actbert.config import ActBertConfig
from actbert.model import ActBertForPretraining
from indexer.features.detector import build_detector, save_detector
from indexer.features.i3d import FEATURE_SIZE as I3D_FEATURE_SIZE
from indexer.features.regions import RegionExtractor
from indexer.features.video import write_video
from indexer.index.embed import set_library_model
from indexer.index.search import build_index
from indexer.library.ingest import IngestSettings, ingest
from indexer.library.store import Library
from synthkitchen.corpus import generate
from synthkitchen.ground_truth import register
from tests.indexer.library_helpers import (
    assert_consistent,
    orphan_files,
    search_snapshot,
)

register()  # ingest and the corpus export read SynthKitchen's ground truth

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
CLASSES = ("bowl", "knife", "tomato")


@pytest.fixture(scope="module")
def detector(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return save_detector(build_detector("tiny", len(CLASSES) + 1).eval(),
                         tmp_path_factory.mktemp("det") / "tiny", arch="tiny", class_names=CLASSES)


def colour_frames(n, w=96, h=64, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for _ in range(n)]


SRT = "1\n00:00:00,000 --> 00:00:02,000\ncut the tomato into slices\n"


def bad_corpus(root: Path) -> dict[str, str]:
    """Writes the corpus (``root/videos`` + ``root/ground_truth``); returns file name -> expected
    ("done", "failed" or "done+<warning text>")."""
    videos, truth = root / "videos", root / "ground_truth"
    videos.mkdir(parents=True)
    truth.mkdir()
    expect = {}

    def video(name, frames=30, seed=0, **kw):
        write_video(videos / name, colour_frames(frames, seed=seed, **kw), fps=12)

    video("good.mp4", seed=1)
    (videos / "good.srt").write_text(SRT)
    expect["good.mp4"] = "done"
    (videos / "empty.mp4").write_bytes(b"")
    expect["empty.mp4"] = "failed+empty"
    (videos / "notes.mp4").write_text("a text file, not a video\n")
    expect["notes.mp4"] = "failed+not a video"
    video("header_only.mp4", seed=2)
    data = (videos / "header_only.mp4").read_bytes()
    (videos / "header_only.mp4").write_bytes(data[:200])
    expect["header_only.mp4"] = "failed+"
    video("one_frame.mp4", frames=1, seed=3)
    expect["one_frame.mp4"] = "done"
    video("portrait.mp4", seed=4, w=64, h=112)
    expect["portrait.mp4"] = "done"
    write_video(videos / "no_transcript.webm", colour_frames(30, seed=5), fps=12, codec="vp9")
    expect["no_transcript.webm"] = "done+no transcript"
    video("bad_srt.mp4", seed=6)
    (videos / "bad_srt.srt").write_text("1\n00:00:xx --> yy\nhello\n")
    expect["bad_srt.mp4"] = "done+unusable"
    video("latin1.mp4", seed=7)
    (videos / "latin1.srt").write_bytes(SRT.replace("tomato", "café").encode("cp1252"))
    expect["latin1.mp4"] = "done"
    video("utf16le.mp4", seed=8)
    (videos / "utf16le.srt").write_bytes(SRT.encode("utf-16") + b"\x00")  # BOM + odd byte
    expect["utf16le.mp4"] = "done"
    video("utf16be.mp4", seed=9)
    (videos / "utf16be.srt").write_bytes(b"\xfe\xff" + SRT.encode("utf-16-be") + b"\xd8")
    expect["utf16be.mp4"] = "done"
    video("huge_line.mp4", seed=10)
    (videos / "huge_line.srt").write_text("1\n00:00:00,000 --> 00:00:02,000\n" + "stir the soup " * 400_000)
    expect["huge_line.mp4"] = "done+cut"
    video("bad_truth.mp4", seed=11)
    (truth / "bad_truth.json").write_text(json.dumps({"task": "salad", "steps": [{"end_sec": 1.0}]}))
    expect["bad_truth.mp4"] = "done+ground truth"
    video("half.mp4", frames=84, seed=12)
    data = (videos / "half.mp4").read_bytes()
    (videos / "half.mp4").write_bytes(data[: len(data) // 2])
    expect["half.mp4"] = "done+truncated"
    (videos / "loop.mp4").symlink_to(videos / "loop.mp4")
    expect["loop.mp4"] = "failed+symlink"
    (videos / "dangling.mp4").symlink_to(root / "nowhere.mp4")
    expect["dangling.mp4"] = "failed+symlink"
    odd = "épices et \"oignons\" l'été.mp4"
    video(odd, seed=13)
    (videos / odd.replace(".mp4", ".srt")).write_text(SRT)
    expect[odd] = "done"
    (videos / "folder.mp4").mkdir()  # a folder named like a video: not a video file
    video("garbage.mp4", seed=14)
    data = bytearray((videos / "garbage.mp4").read_bytes())
    at = data.find(b"mdat")
    size = int.from_bytes(data[at - 4:at], "big")
    data[at + 4:at - 4 + size] = bytes(size - 8)
    (videos / "garbage.mp4").write_bytes(bytes(data))
    expect["garbage.mp4"] = "failed+decoded"
    return expect


def test_bad_input_corpus_each_video_gets_its_status(tmp_path, detector):
    expect = bad_corpus(tmp_path / "corpus")
    assert len(expect) >= 15
    library = Library.create(tmp_path / "lib")
    settings = IngestSettings(action_weights="none", detector=str(detector), score_threshold=0.0)
    summary = ingest(library, [tmp_path / "corpus" / "videos"], settings, progress=False)
    rows = {Path(r["path"]).name: r for r in library.catalog.videos()}
    assert set(rows) == set(expect), set(rows) ^ set(expect)
    for name, want in expect.items():
        status, _, text = want.partition("+")
        row = rows[name]
        assert row["status"] == status, (name, row["error"], row["warnings"])
        if status == "failed":
            assert row["error"] and "\n" not in row["error"] and text.lower() in row["error"].lower(), row["error"]
        elif text:
            assert any(text in w for w in json.loads(row["warnings"])), (name, row["warnings"])
    assert summary.done == sum(w.startswith("done") for w in expect.values())
    clips = {name: library.catalog.clips_of(rows[name]["video_id"]) for name in ("utf16le.mp4", "utf16be.mp4")}
    assert all("tomato" in c[0]["narration"] for c in clips.values())
    assert rows["half.mp4"]["duration_sec"] == pytest.approx(3.5, abs=0.2)
    assert str((tmp_path / "corpus" / "videos").resolve()) in library.manifest.sources
    assert len(library.manifest.sources) == 1


# ---- kill -9 -------------------------------------------------------------------------------------


def tiny_model_for(detector: Path, seed: int = 0) -> ActBertForPretraining:
    """A ``tiny`` ActBERT sized to what ingest extracts: I3D's 1024-d action features and the
    detector's box features and classes (background included)."""
    regions = RegionExtractor(detector)
    config = ActBertConfig.from_name(
        "tiny", action={"feature_size": I3D_FEATURE_SIZE},
        region={"feature_size": regions.model.roi_heads.box_predictor.cls_score.in_features,
                "num_classes": len(regions.class_names)})
    torch.manual_seed(seed)
    return ActBertForPretraining(config).eval()


def run_cli(args, timeout=600):
    return subprocess.run([sys.executable, "-m", "indexer", *args], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=timeout)


def kill_after(args, delay: float) -> bool:
    """Start ``indexer ARGS``; SIGKILL it after ``delay`` s. True when the kill landed (still running)."""
    proc = subprocess.Popen([sys.executable, "-m", "indexer", *args], cwd=ROOT, env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True


@pytest.fixture(scope="module")
def kill_setup(tmp_path_factory, detector):
    """Videos, a library template holding a model and an (empty) index, and the reference library
    ingested without interruption."""
    root = tmp_path_factory.mktemp("kill")
    generate(root / "corpus", 3, seed=3, size=(128, 96), fps=8, step_sec=(1.5, 2.0))
    videos = root / "corpus" / "videos"
    ingest_args = ["--action-weights", "none", "--detector", str(detector), "--score-threshold", "0"]
    template = Library.create(root / "template")
    model_dir = template.root / "models" / "actbert"
    tiny_model_for(detector).save_pretrained(model_dir)
    set_library_model(template, model_dir)
    build_index(template)
    reference = root / "reference"
    shutil.copytree(template.root, reference, ignore=shutil.ignore_patterns(".lock"))
    started = time.monotonic()
    result = run_cli(["ingest", str(videos), "--library", str(reference), *ingest_args])
    assert result.returncode == 0, result.stderr[-2000:]
    seconds = time.monotonic() - started
    queries = list(np.random.default_rng(0).standard_normal((4, tiny_model_for(detector).config.embed_size)))
    return {"videos": videos, "template": template.root, "reference": reference, "seconds": seconds,
            "args": ingest_args, "queries": queries, "model_dir": model_dir, "detector": detector}


def library_snapshot(root: Path) -> list:
    library = Library(root, readonly=True)
    rows = [(r["video_id"], r["status"], [(c["clip_index"], c["start_sec"], c["end_sec"], c["narration"])
                                          for c in library.catalog.clips_of(r["video_id"])])
            for r in library.catalog.videos()]
    library.close()
    return rows


@pytest.mark.slow
def test_ingest_killed_at_20_seeded_points_resumes_to_the_same_library(tmp_path, kill_setup):
    lib = tmp_path / "killed"

    def start_empty():
        shutil.rmtree(lib, ignore_errors=True)
        shutil.copytree(kill_setup["template"], lib, ignore=shutil.ignore_patterns(".lock"))

    start_empty()
    args = ["ingest", str(kill_setup["videos"]), "--library", str(lib), *kill_setup["args"]]
    # within the first three quarters of the reference run: a machine quieter now than when the
    # reference ran (the suite's other worker done) finishes sooner, and a kill past the end lands nowhere
    delays = np.sort(np.random.default_rng(11).uniform(0.5, 0.75 * kill_setup["seconds"], 20))
    landed = 0
    for delay in delays:
        killed = kill_after(args, float(delay))
        landed += killed
        check = Library(lib, readonly=True)
        assert check.catalog.integrity_check() == "ok"
        check.close()
        if not killed:
            # the resumed run finished before its kill point (each resume has less left to do):
            # start over from the empty library, so the later kill points fall inside a run again
            assert_consistent(lib)
            assert library_snapshot(lib) == library_snapshot(kill_setup["reference"])
            start_empty()
    assert landed >= 10, f"only {landed} of 20 kills landed mid-run"
    result = run_cli(args)
    assert result.returncode == 0, result.stderr[-2000:]
    assert_consistent(lib)
    assert library_snapshot(lib) == library_snapshot(kill_setup["reference"])
    assert search_snapshot(lib, kill_setup["queries"]) == search_snapshot(kill_setup["reference"], kill_setup["queries"])
    print(f"kill -9: {landed} of 20 kills landed mid-run (uninterrupted run {kill_setup['seconds']:.1f} s)")


@pytest.mark.slow
def test_delete_and_reindex_killed_midway_are_repaired(tmp_path, kill_setup):
    lib = tmp_path / "lib"
    shutil.copytree(kill_setup["reference"], lib, ignore=shutil.ignore_patterns(".lock"))
    videos = [r["video_id"] for r in Library(lib, readonly=True).catalog.videos("done")]
    rng = np.random.default_rng(5)
    for delay in rng.uniform(1.0, 8.0, 3):
        kill_after(["delete", str(lib), *videos[:2]], float(delay))
        if not Library(lib, readonly=True).catalog.video(videos[0]):
            break
    assert run_cli(["repair", str(lib)]).returncode == 0
    assert_consistent(lib)
    remaining = {r["video_id"] for r in Library(lib, readonly=True).catalog.videos()}
    if videos[0] in remaining or videos[1] in remaining:  # finish the delete
        assert run_cli(["delete", str(lib), *sorted({videos[0], videos[1]} & remaining)]).returncode == 0
    assert_consistent(lib)
    assert {r["video_id"] for r in Library(lib, readonly=True).catalog.videos()} == set(videos[2:])

    new_model = tmp_path / "new_model"
    tiny_model_for(kill_setup["detector"], seed=1).save_pretrained(new_model)
    before = json.loads((lib / "library.json").read_text())["model"]
    for delay in rng.uniform(1.0, 10.0, 3):
        kill_after(["reindex", str(lib), "--checkpoint", str(new_model)], float(delay))
        assert run_cli(["repair", str(lib)]).returncode == 0
        assert_consistent(lib)  # old or new model, the index agrees with library.json
        model = json.loads((lib / "library.json").read_text())["model"]
        assert model == before or model["checkpoint"] == str(new_model.resolve())
    assert run_cli(["reindex", str(lib), "--checkpoint", str(new_model)]).returncode == 0
    assert_consistent(lib)
    assert orphan_files(lib) == []
