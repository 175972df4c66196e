"""Ingestion of a messy folder: broken inputs get a clear status, the batch goes on, nothing is lost.
(A killed ingest resuming to the uninterrupted result: ``test_faults.py``, kill -9 at 20 seeded points.)"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from actbert.data import VideoFeatures
from indexer.features.detector import build_detector, save_detector
from indexer.features.video import write_video
from indexer.library.discovery import shard_of, video_id_for
from indexer.library.ingest import IngestSettings, ingest
from indexer.library.store import Library
from synthkitchen.corpus import generate
from synthkitchen.ground_truth import register

register()  # ingest and the corpus export read SynthKitchen's ground truth

CLASSES = ("bowl", "knife", "tomato")


@pytest.fixture(scope="module")
def detector_checkpoint(tmp_path_factory):
    """A real detector checkpoint file (tiny architecture, random weights: a plumbing test)."""
    torch.manual_seed(0)
    model = build_detector("tiny", len(CLASSES) + 1).eval()
    return save_detector(model, tmp_path_factory.mktemp("det") / "tiny", arch="tiny",
                         class_names=CLASSES)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("sk")
    generate(out, 2, seed=3, size=(160, 120), fps=12, step_sec=(2.0, 3.0))
    return out


def settings(detector):
    # Score threshold 0 so the random-weight detector still yields boxes to store.
    return IngestSettings(action_weights="none", detector=str(detector), score_threshold=0.0)


def colour_frames(n, w=96, h=64, seed=0):
    rng = np.random.default_rng(seed)
    return [np.full((h, w, 3), rng.integers(0, 255, 3), np.uint8) for _ in range(n)]


@pytest.fixture(scope="module")
def messy_folder(tmp_path_factory, corpus):
    """Two good SynthKitchen videos with narration, plus every broken case of the issue."""
    d = tmp_path_factory.mktemp("messy")
    for p in (corpus / "videos").glob("*"):
        shutil.copy(p, d / p.name)
    (d / "empty.mp4").write_bytes(b"")
    (d / "notes.mp4").write_text("this is a text file, not a video\n")
    good = next((corpus / "videos").glob("*.mp4")).read_bytes()
    (d / "truncated.mp4").write_bytes(good[: len(good) // 3])
    # A video whose frames do not decode: a valid container, its media data zeroed.
    write_video(d / "garbage.mp4", colour_frames(24), fps=12)
    data = bytearray((d / "garbage.mp4").read_bytes())
    at = data.find(b"mdat")
    size = int.from_bytes(data[at - 4:at], "big")
    data[at + 4:at - 4 + size] = bytes(size - 8)
    (d / "garbage.mp4").write_bytes(bytes(data))
    write_video(d / "one_frame.mp4", colour_frames(1), fps=12)
    write_video(d / "portrait.mp4", colour_frames(30, w=64, h=112), fps=12)
    write_video(d / "no_transcript.webm", colour_frames(40), fps=12, codec="vp9")
    write_video(d / "bad_srt.mp4", colour_frames(40, seed=2), fps=12)
    (d / "bad_srt.srt").write_text("1\n00:00:xx --> yy\nhello\n\n2\nnot a timestamp\nworld\n")
    write_video(d / "latin1.mp4", colour_frames(40, seed=3), fps=12)
    (d / "latin1.srt").write_bytes("1\n00:00:00,000 --> 00:00:02,500\nCoupez la tomate en dés, "
                                   "ajoutez le café\n".encode("cp1252"))
    return d


def test_messy_folder_each_video_gets_a_clear_status(tmp_path, messy_folder, detector_checkpoint):
    library = Library.create(tmp_path / "lib")
    summary = ingest(library, [messy_folder], settings(detector_checkpoint), progress=False)
    rows = {Path(r["path"]).name: r for r in library.catalog.videos()}
    assert summary.videos == len(rows) == 11
    failed = {name: rows[name]["error"] for name in rows if rows[name]["status"] == "failed"}
    assert set(failed) == {"empty.mp4", "notes.mp4", "garbage.mp4"} | (
        {"truncated.mp4"} if "truncated.mp4" in failed else set())
    assert "empty" in failed["empty.mp4"].lower()
    assert "not a video" in failed["notes.mp4"].lower()
    assert "could be decoded" in failed["garbage.mp4"]
    for name in ("one_frame.mp4", "portrait.mp4", "no_transcript.webm", "bad_srt.mp4", "latin1.mp4"):
        assert rows[name]["status"] == "done", (name, rows[name]["error"])
    assert rows["portrait.mp4"]["height"] > rows["portrait.mp4"]["width"]
    assert "no transcript" in json.loads(rows["no_transcript.webm"]["warnings"])[0]
    assert "unusable" in json.loads(rows["bad_srt.mp4"]["warnings"])[0]
    clips = library.catalog.clips_of(rows["latin1.mp4"]["video_id"])
    assert "dés" in clips[0]["narration"] and "café" in clips[0]["narration"]
    # The good SynthKitchen videos (copied without their ground truth) carry their narration,
    # verbs and features.
    for name, row in rows.items():
        if name.startswith("sk"):
            assert row["status"] == "done" and row["task"] is None
            clips = library.catalog.clips_of(row["video_id"])
            assert clips and any(json.loads(c["verbs"]) for c in clips)
            features = VideoFeatures.load(library.root / row["feature_path"])
            assert features.num_clips == len(clips)
            assert features.action_features.shape[1] == 1024  # I3D
            assert len(features.region_features) > 0
            assert (features.region_boxes_xyxy[:, 2] <= row["width"] + 1e-3).all()
            timings = json.loads(row["timings"])
            assert {"decode", "actions", "regions", "total"} <= set(timings)
    # Rerun: nothing to do, nothing duplicated.
    again = ingest(library, [messy_folder], settings(detector_checkpoint), progress=False)
    assert again.todo == len(failed)  # failed videos are retried, done ones skipped
    assert library.catalog.stats()["clips"] == sum(
        len(library.catalog.clips_of(r["video_id"])) for r in library.catalog.videos("done"))


def test_shards_split_the_corpus_and_merge(tmp_path, corpus, detector_checkpoint):
    videos = sorted((corpus / "videos").glob("*.mp4"))
    ids = [video_id_for(p.resolve()) for p in videos]
    assert sorted(shard_of(i, 2) for i in ids) == sorted(shard_of(i, 2) for i in ids)  # stable
    libs = []
    for i in range(2):
        lib = Library.create(tmp_path / f"shard{i}")
        ingest(lib, [corpus / "videos"], settings(detector_checkpoint), shard=(i, 2), progress=False)
        libs.append(lib)
    counts = [lib.catalog.stats()["done"] for lib in libs]
    assert sum(counts) == len(videos)
    # In the corpus layout the ground truth comes along: task, instance, split and steps.
    row = next(r for lib in libs for r in lib.catalog.videos("done"))
    assert row["task"] and row["split"] in ("train", "val", "test") and row["task_instance"]
    from indexer.__main__ import main

    assert main(["merge", str(tmp_path / "merged"), *(str(lib.root) for lib in libs)]) == 0
    merged = Library(tmp_path / "merged")
    assert merged.catalog.stats()["done"] == len(videos)
    assert merged.catalog.stats()["clips"] == sum(lib.catalog.stats()["clips"] for lib in libs)


def test_spread_sampling_reaches_the_features_ingest_stores(tmp_path, corpus):
    """``action_sampling="spread"``: each clip's action feature is the CNN's output on frames decoded at
    ``spread_times`` over the whole clip (checked by decoding them here), not at the centre's 2 s; the
    library records the setting and the extractor's version says it."""
    from indexer.features.actions import ActionExtractor
    from indexer.features.sampling import sample_times, spread_times
    from indexer.features.video import read_frames_at

    with pytest.raises(ValueError, match="action_sampling"):
        IngestSettings(action_sampling="edges")
    video = sorted((corpus / "videos").glob("*.mp4"))[0]
    stored = {}
    for sampling in ("centre", "spread"):
        library = Library.create(tmp_path / sampling)
        done = ingest(library, [video], IngestSettings(action_weights="none", regions=False,
                                                      action_sampling=sampling), progress=False)
        assert done.done == 1
        row = library.catalog.videos("done")[0]
        stored[sampling] = VideoFeatures.load(library.root / row["feature_path"])
        assert library.manifest.settings["action_sampling"] == sampling
        assert ("spread" in library.manifest.extractors["actions"]["version"]) == (sampling == "spread")
    features = stored["spread"]
    cnn = ActionExtractor("i3d", weights="none", frames=16, fps=8.0, crop=112, short_side=128)  # fast
    size = (128, round(160 * 128 / 120))  # the 160 x 120 video's shorter side scaled to 128
    longest = int(np.argmax(features.clip_end_sec - features.clip_start_sec))
    start, end = features.clip_start_sec[longest], features.clip_end_sec[longest]
    assert end - start > 3.0  # the centre's 16 frames at 8 FPS cover 2 s of it
    for times, expected in ((spread_times(start, end, 16), stored["spread"]),
                            (sample_times(start, end, 8.0, 16), stored["centre"])):
        reference, _ = cnn(read_frames_at(video, times, size=size)[None])
        np.testing.assert_allclose(expected.action_features[longest], reference[0], rtol=1e-3, atol=1e-4)
    assert not np.allclose(stored["spread"].action_features[longest], stored["centre"].action_features[longest])
