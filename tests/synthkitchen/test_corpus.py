"""SynthKitchen corpus: files, decodable H.264, boxes, labels, splits, narration noise, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
import webvtt

from synthkitchen.corpus import (
    ACTION_LABELS,
    OBJECT_CLASSES,
    NarrationNoise,
    generate,
    plan,
    plan_video,
)
from synthkitchen.render import finish, render_background

SMALL = dict(size=(160, 128), fps=12, step_sec=(1.5, 2.5))
SEED = 7


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synthkitchen")
    generate(out, 3, SEED, **SMALL)
    return out


def _records(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / "ground_truth").glob("*.json"))]


def _decode(path: Path) -> tuple[list[np.ndarray], av.video.stream.VideoStream]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        info = (s.codec_context.name, s.codec_context.pix_fmt, s.average_rate, s.width, s.height)
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(s)]
    return frames, info


def test_files_exist(corpus: Path) -> None:
    manifest = json.loads((corpus / "synthkitchen.json").read_text())
    assert manifest["seed"] == SEED and manifest["object_classes"] == list(OBJECT_CLASSES)
    assert manifest["action_labels"][0] == "background"
    recs = _records(corpus)
    assert len(recs) == 3
    for r in recs:
        for rel in r["files"].values():
            assert (corpus / rel).is_file() and (corpus / rel).stat().st_size > 0
    assert not list(corpus.rglob(".*.tmp-*")), "temporary files left behind"


def test_mp4_is_browser_h264_and_matches_ground_truth(corpus: Path) -> None:
    for r in _records(corpus):
        frames, (codec, pix_fmt, rate, w, h) = _decode(corpus / r["files"]["video"])
        assert codec == "h264" and pix_fmt == "yuv420p"
        assert (w, h) == (r["width"], r["height"]) == SMALL["size"]
        assert rate == r["fps"] == SMALL["fps"]
        assert len(frames) == r["n_frames"]
        assert r["duration_sec"] == pytest.approx(r["n_frames"] / r["fps"])
        assert r["steps"][-1]["end_sec"] <= r["duration_sec"]


def test_boxes_lie_in_frame_and_enclose_drawn_objects(corpus: Path) -> None:
    hand = OBJECT_CLASSES.index("hand")
    for r in _records(corpus):
        gt = np.load(corpus / r["files"]["frames"])
        xyxy, frame, klass = gt["box_xyxy"], gt["box_frame"], gt["box_class"]
        w, h = r["width"], r["height"]
        assert (xyxy[:, 0] >= 0).all() and (xyxy[:, 1] >= 0).all()
        assert (xyxy[:, 2] <= w).all() and (xyxy[:, 3] <= h).all()
        assert (xyxy[:, 2] > xyxy[:, 0]).all() and (xyxy[:, 3] > xyxy[:, 1]).all()
        assert set(np.unique(frame)) == set(range(r["n_frames"])), "every frame has boxes"
        assert {p["class"] for p in r["props"]} <= {OBJECT_CLASSES[k] for k in np.unique(klass)}
        assert (klass == hand).any()
        p = plan_video(r["index"], SEED, **SMALL)
        background = render_background(p)
        frames, _ = _decode(corpus / r["files"]["video"])
        checked = 0
        for fi in range(0, r["n_frames"], 9):
            empty = finish(p, background, fi).astype(np.int16)
            diff = np.abs(frames[fi].astype(np.int16) - empty).max(-1) > 12
            for (x0, y0, x1, y1) in xyxy[frame == fi]:
                i0, j0, i1, j1 = int(y0), int(x0), int(np.ceil(y1)), int(np.ceil(x1))
                if (i1 - i0) * (j1 - j0) < 30:
                    continue
                changed = diff[i0:i1, j0:j1].mean()
                assert changed > 0.2, f"{r['video_id']} frame {fi}: box {x0, y0, x1, y1} looks like background"
                checked += 1
        assert checked > 10


def test_action_labels_cover_the_steps(corpus: Path) -> None:
    for r in _records(corpus):
        labels = np.load(corpus / r["files"]["frames"])["action_label"]
        assert labels.shape == (r["n_frames"],)
        expected = np.zeros(r["n_frames"], np.int16)
        for s in r["steps"]:
            assert SMALL["step_sec"][0] - 0.1 <= s["end_sec"] - s["start_sec"] <= SMALL["step_sec"][1] + 0.1
            assert s["start_frame"] == round(s["start_sec"] * r["fps"])
            assert 1 <= len(s["objects"]) <= 2 and s["description"]
            expected[s["start_frame"]:s["end_frame"]] = ACTION_LABELS.index(s["verb"])
        np.testing.assert_array_equal(labels, expected)
        assert (labels == 0).any(), "gaps between steps are background"


def test_splits_are_by_instance_and_cover_train_val_test() -> None:
    plans = plan(60, SEED, **SMALL)
    ids = [p.video_id for p in plans]
    assert len(set(ids)) == len(ids)
    splits = [p.split for p in plans]
    assert {s: splits.count(s) for s in ("train", "val", "test")} == {"train": 42, "val": 9, "test": 9}
    assert {p.task for p in plans} == {p.task for p in plan(9, SEED, **SMALL)}, "every task in each block of 9"
    assert [p.split for p in plan(10, SEED, **SMALL)] == splits[:10], "a video's split ignores n_videos"


def test_webvtt_parses_and_matches_ground_truth(corpus: Path) -> None:
    for r in _records(corpus):
        cues = webvtt.read(str(corpus / r["files"]["narration"]))
        assert [c.text for c in cues] == [n["text"] for n in r["narration"]]
        for c, n in zip(cues, r["narration"]):
            assert c.start_in_seconds == int(n["start_sec"])
            assert n["start_sec"] < n["end_sec"] <= r["duration_sec"] + 1e-6


def test_unaligned_share_is_near_the_configured_target() -> None:
    noise = NarrationNoise()
    plans = plan(150, 11, step_sec=(3.0, 8.0), noise=noise)
    n_lines = n_unaligned = n_steps = n_described = 0
    for p in plans:
        for line in p.narration:
            mid = (line.start_sec + line.end_sec) / 2
            st = p.steps[line.step_index] if line.step_index is not None else None
            aligned = st is not None and any(s.verb == st.verb and s.objects == st.objects
                                             and s.start_sec <= mid < s.end_sec for s in p.steps)
            assert aligned == line.aligned  # independent recomputation of the flag from the times
            n_lines += 1
            n_unaligned += not aligned
        n_steps += len(p.steps)
        n_described += len({line.step_index for line in p.narration if line.step_index is not None})
    share = n_unaligned / n_lines
    assert 0.45 <= noise.expected_unaligned_share <= 0.65
    assert share == pytest.approx(noise.expected_unaligned_share, abs=0.06)
    assert 1 - n_described / n_steps == pytest.approx(noise.p_missing, abs=0.05)
    clean = plan(30, 11, noise=NarrationNoise(p_missing=0, p_shifted=0, p_offtopic=0, p_filler=0,
                                              p_word_error=0, p_word_drop=0))
    assert all(line.aligned for p in clean for line in p.narration)
    with pytest.raises(ValueError):
        NarrationNoise(p_missing=1.5)


def test_same_seed_same_corpus_and_resume(corpus: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate(again, 2, SEED, **SMALL)
    for r in _records(again):
        name = Path(r["files"]["frames"]).name
        assert (again / "ground_truth" / name.replace(".npz", ".json")).read_bytes() == \
            (corpus / "ground_truth" / name.replace(".npz", ".json")).read_bytes()
        a, b = np.load(again / r["files"]["frames"]), np.load(corpus / r["files"]["frames"])
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key])
        fa, _ = _decode(again / r["files"]["video"])
        fb, _ = _decode(corpus / r["files"]["video"])
        assert all(np.array_equal(x, y) for x, y in zip(fa, fb))
        assert (again / r["files"]["video"]).read_bytes() == (corpus / r["files"]["video"]).read_bytes()
        assert (again / r["files"]["narration"]).read_text() == (corpus / r["files"]["narration"]).read_text()
    # resume: complete videos are skipped, a missing one is rebuilt
    done = sorted((again / "videos").glob("*.mp4"))
    stamps = [p.stat().st_mtime_ns for p in done]
    (again / "ground_truth" / f"{done[1].stem}.json").unlink()
    generate(again, 2, SEED, **SMALL)
    assert done[0].stat().st_mtime_ns == stamps[0]
    assert done[1].stat().st_mtime_ns != stamps[1]
    assert (again / "ground_truth" / f"{done[1].stem}.json").is_file()
    with pytest.raises(ValueError):
        generate(again, 2, SEED + 1, **SMALL)


def test_different_seed_gives_a_different_corpus() -> None:
    a, b = plan(6, 1, **SMALL), plan(6, 2, **SMALL)
    assert [p.to_json() for p in a] != [p.to_json() for p in b]
    assert [p.task for p in a] != [p.task for p in b] or [p.steps for p in a] != [p.steps for p in b]
    assert plan(6, 1, **SMALL)[3].to_json() == a[3].to_json()


def test_rejects_odd_sizes() -> None:
    with pytest.raises(ValueError):
        plan_video(0, 0, size=(161, 120))
