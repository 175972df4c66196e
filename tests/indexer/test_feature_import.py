"""Import of bottom-up-attention TSV/npz region features and per-video action arrays, written here in
exactly those formats (base64 float32 fields, no header; npz without pickle)."""

from __future__ import annotations

import base64
import csv
import sys
from pathlib import Path

import numpy as np
import pytest

from actbert.data import VideoFeatures
from indexer.features.feature_import import (
    TSV_FIELDS,
    TSV_FIELDS_CLS,
    clip_of_times,
    frame_index_of,
    read_action_features,
    read_bua_npz,
    read_bua_tsv,
    video_features_from_imports,
)

RNG = np.random.default_rng(3)


def _b64(arr: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(arr).tobytes()).decode()


def _image(k: int, w: int = 640, h: int = 480, f: int = 2048, c: int = 1601) -> dict:
    xy = RNG.uniform(0, 300, (k, 2))
    boxes = np.concatenate([xy, xy + RNG.uniform(10, 150, (k, 2))], 1).astype(np.float32)
    probs = RNG.dirichlet(np.ones(c), k).astype(np.float32)
    return {"image_w": w, "image_h": h, "num_boxes": k, "boxes": boxes,
            "features": RNG.standard_normal((k, f)).astype(np.float32), "cls_prob": probs}


def _write_tsv(path: Path, images: dict[str, dict], fields=TSV_FIELDS_CLS) -> None:
    csv.field_size_limit(sys.maxsize)
    with open(path, "w", newline="") as handle:  # generate_tsv.py: DictWriter, tab, no header
        writer = csv.DictWriter(handle, delimiter="\t", fieldnames=list(fields))
        for image_id, im in images.items():
            writer.writerow({"image_id": image_id, **{k: (_b64(v) if isinstance(v, np.ndarray) else v)
                                                      for k, v in im.items() if k in fields}})


def test_tsv_with_and_without_class_scores(tmp_path: Path) -> None:
    images = {"vid_000000": _image(10), "vid_000001": _image(36), "vid_000002": _image(0)}
    _write_tsv(tmp_path / "a.tsv", images)
    records = list(read_bua_tsv(tmp_path / "a.tsv"))
    assert [r.image_id for r in records] == list(images)
    for r, im in zip(records, images.values()):
        assert (r.image_w, r.image_h) == (640, 480)
        np.testing.assert_array_equal(r.boxes_xyxy, im["boxes"].reshape(-1, 4))
        np.testing.assert_array_equal(r.features.reshape(-1), im["features"].reshape(-1))
        np.testing.assert_array_equal(r.cls_prob.reshape(-1), im["cls_prob"].reshape(-1))
        if len(im["boxes"]):
            np.testing.assert_allclose(r.scores, im["cls_prob"][:, 1:].max(1))
    _write_tsv(tmp_path / "b.tsv", {"x_7": images["vid_000000"]}, fields=TSV_FIELDS)
    (record,) = read_bua_tsv(tmp_path / "b.tsv")
    assert record.cls_prob is None and record.features.shape == (10, 2048)
    np.testing.assert_array_equal(record.scores, np.ones(10))


def test_tsv_errors_are_specific(tmp_path: Path) -> None:
    (tmp_path / "bad.tsv").write_text("img\t640\t480\t3\n")
    with pytest.raises(ValueError, match=r"bad.tsv:1: 4 tab-separated fields"):
        list(read_bua_tsv(tmp_path / "bad.tsv"))
    im = _image(3)
    im["features"] = im["features"][:, :5].copy().reshape(-1)[:14]  # 14 values for 3 boxes
    _write_tsv(tmp_path / "short.tsv", {"img": im})
    with pytest.raises(ValueError, match="not a multiple of num_boxes=3"):
        list(read_bua_tsv(tmp_path / "short.tsv"))


@pytest.mark.parametrize("keys", [("x", "bbox", "num_bbox"), ("features", "boxes", None)])
def test_npz_variants(tmp_path: Path, keys) -> None:
    im = _image(5, w=320, h=240, f=64, c=91)
    feat_key, box_key, num_key = keys
    arrays = {feat_key: im["features"], box_key: im["boxes"], "image_w": np.int64(320), "image_h": np.int64(240),
              "cls_prob": im["cls_prob"]}
    if num_key:
        arrays[num_key] = np.int64(5)
    np.savez(tmp_path / "frame_12.npz", **arrays)
    r = read_bua_npz(tmp_path / "frame_12.npz")
    assert r.image_id == "frame_12" and (r.image_w, r.image_h) == (320, 240)
    np.testing.assert_array_equal(r.features, im["features"])
    np.testing.assert_array_equal(r.boxes_xyxy, im["boxes"])
    np.savez(tmp_path / "pickled.npz", x=im["features"], bbox=im["boxes"], image_w=320, image_h=240,
             info=np.array([{"objects": 1}], dtype=object))
    assert read_bua_npz(tmp_path / "pickled.npz").features.shape == (5, 64)  # object array is never loaded
    np.savez(tmp_path / "nobox.npz", x=im["features"], image_w=320, image_h=240)
    with pytest.raises(ValueError, match=r"none of the keys \('bbox', 'boxes'\)"):
        read_bua_npz(tmp_path / "nobox.npz")


def test_action_arrays_fixed_windows_and_given_times(tmp_path: Path) -> None:
    feats = RNG.standard_normal((4, 16)).astype(np.float32)
    np.save(tmp_path / "v.npy", feats)
    got, start, end = read_action_features(tmp_path / "v.npy", window_sec=4.0)
    np.testing.assert_array_equal(got, feats)
    np.testing.assert_array_equal(start, [0, 4, 8, 12])
    np.testing.assert_array_equal(end, [4, 8, 12, 16])
    times = np.array([[0, 3], [3, 5.5], [6, 9], [9, 20]])
    _, start, end = read_action_features(tmp_path / "v.npy", clip_times_sec=times)
    np.testing.assert_array_equal(start, times[:, 0])
    with pytest.raises(ValueError, match="window_sec"):
        read_action_features(tmp_path / "v.npy")
    with pytest.raises(ValueError, match=r"\(4, 2\)"):
        read_action_features(tmp_path / "v.npy", clip_times_sec=times[:3])


def test_clip_assignment_and_frame_numbers() -> None:
    starts, ends = np.array([0.0, 3.0, 6.0]), np.array([3.0, 5.0, 9.0])
    np.testing.assert_array_equal(clip_of_times(np.array([0, 2.9, 3.0, 5.2, 5.8, 8.0, 12.0]), starts, ends),
                                  [0, 0, 1, 1, 2, 2, 2])
    assert frame_index_of("abc_000012") == 12 and frame_index_of("dir/7.jpg") == 7
    with pytest.raises(ValueError, match="no trailing frame number"):
        frame_index_of("frame")


def test_video_features_from_tsv_and_npy_round_trip(tmp_path: Path) -> None:
    images = {"vid_000001": _image(3, f=32, c=11), "vid_000003": _image(0, f=32, c=11),
              "vid_000006": _image(2, w=1280, h=960, f=32, c=11)}
    _write_tsv(tmp_path / "v.tsv", images)
    np.save(tmp_path / "v.npy", RNG.standard_normal((2, 8)).astype(np.float32))
    action, start, end = read_action_features(tmp_path / "v.npy", window_sec=4.0)
    vf = video_features_from_imports("vid", action, start, end, read_bua_tsv(tmp_path / "v.tsv"), region_fps=1.0)
    assert vf.frame_size == (640, 480) and vf.num_clips == 2
    np.testing.assert_array_equal(vf.region_time_sec, [1, 1, 1, 6, 6])
    np.testing.assert_array_equal(vf.region_clip, [0, 0, 0, 1, 1])
    # the second image is twice the size: its boxes are halved into the 640x480 frame
    np.testing.assert_allclose(vf.region_boxes_xyxy[3:], images["vid_000006"]["boxes"] / 2, rtol=1e-6)
    assert vf.region_classes.shape == (5, 11) and vf.region_features.shape == (5, 32)
    vf.save(tmp_path / "vid.safetensors")
    back = VideoFeatures.load(tmp_path / "vid.safetensors")
    np.testing.assert_array_equal(back.region_features, vf.region_features)
    np.testing.assert_array_equal(back.region_clip, vf.region_clip)
    assert back.extractors == {"imported": True}


def test_import_features_command(tmp_path: Path, capsys) -> None:
    """``indexer import-features``: a TSV and an action array become one feature file whose arrays
    are the inputs (region times from the image ids at --region-fps, clips from --clip-times)."""
    import json

    from indexer.cli import main

    images = {"vid_000002": _image(2, f=16, c=5), "vid_000010": _image(1, f=16, c=5)}
    _write_tsv(tmp_path / "v.tsv", images)
    actions = RNG.standard_normal((2, 8)).astype(np.float32)
    np.save(tmp_path / "a.npy", actions)
    np.save(tmp_path / "t.npy", np.array([[0.0, 3.0], [3.0, 6.0]]))
    out = tmp_path / "lib" / "vid.safetensors"
    assert main(["import-features", "--video-id", "vid", "--actions", str(tmp_path / "a.npy"),
                 "--clip-times", str(tmp_path / "t.npy"), "--regions", str(tmp_path / "v.tsv"),
                 "--region-fps", "2", "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"video_id": "vid", "out": str(out), "clips": 2,
                                                   "regions": 3}
    back = VideoFeatures.load(out)
    np.testing.assert_array_equal(back.action_features, actions)
    np.testing.assert_array_equal(back.clip_start_sec, [0, 3])
    np.testing.assert_array_equal(back.region_time_sec, [1, 1, 5])  # frames 2 and 10 at 2 FPS
    np.testing.assert_array_equal(back.region_clip, [0, 0, 1])
    np.testing.assert_array_equal(back.region_boxes_xyxy, np.concatenate(
        [images["vid_000002"]["boxes"], images["vid_000010"]["boxes"]]))
    # bad input: one line on stderr, exit 1
    assert main(["import-features", "--video-id", "vid", "--actions", str(tmp_path / "a.npy"),
                 "--window-sec", "-1", "--out", str(out)]) == 1
    assert "window_sec" in capsys.readouterr().err
