"""Detectors: hand-computed AP, building every architecture, pickle-free checkpoints, the trainer's
time budget and label checks (training on SynthKitchen: tests/synthkitchen/test_detection.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from indexer.features.detector import (
    ARCHS,
    average_precision,
    build_detector,
    detection_ap,
    load_detector,
    match_detections,
    save_detector,
)
from indexer.features.detector_train import train_detector


def test_average_precision_hand_example() -> None:
    # ranked detections TP, FP, TP against 3 ground-truth boxes:
    # recall 1/3, 1/3, 2/3; precision 1, 1/2, 2/3; envelope 1 up to recall 1/3, then 2/3 -> AP = 1/3 + 2/9
    recall = np.array([1, 1, 2]) / 3
    precision = np.array([1, 1 / 2, 2 / 3])
    assert average_precision(recall, precision) == pytest.approx(5 / 9)
    assert average_precision(np.array([1.0]), np.array([1.0])) == pytest.approx(1.0)
    assert average_precision(np.zeros(0), np.zeros(0)) == 0.0


def test_detection_ap_with_duplicates_misses_and_two_images() -> None:
    a, b, c = [0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]
    images_det = [
        (np.array([a, [1, 0, 11, 10], c], np.float32), np.array([0.9, 0.8, 0.7]), np.array([1, 1, 1])),
        (np.array([b], np.float32), np.array([0.6]), np.array([1])),
    ]
    images_gt = [(np.array([a, b, c], np.float32), np.array([1, 1, 2])),
                 (np.array([b], np.float32), np.array([1]))]
    # class 1: 3 ground truths; ranked .9 TP (a), .8 FP (duplicate of a), .7 FP (c is class 2), .6 TP
    # recall 1/3,1/3,1/3,2/3; precision 1,.5,.33,.5 -> AP = 1/3 * 1 + 1/3 * .5 = .5; class 2: no detection
    aps = detection_ap(images_det, images_gt, num_classes=4)
    assert aps == pytest.approx({1: 0.5, 2: 0.0})  # class 3 has no ground truth: left out
    tp = match_detections(images_det[0][0], images_det[0][1], np.array([a], np.float32))
    np.testing.assert_array_equal(tp, [True, False, False])


@pytest.mark.parametrize("arch", ARCHS)
def test_every_architecture_builds_and_detects(arch: str) -> None:
    torch.manual_seed(0)
    model = build_detector(arch, 5, min_size=96, max_size=128).eval()
    assert model.roi_heads.box_predictor.cls_score.out_features == 5
    with torch.no_grad():
        (out,) = model([torch.rand(3, 96, 128)])
    assert set(out) == {"boxes", "scores", "labels"} and out["boxes"].shape[1] == 4
    if out["labels"].numel():
        assert 1 <= int(out["labels"].min()) and int(out["labels"].max()) <= 4


def test_tiny_is_small_and_bad_arguments_are_refused() -> None:
    model = build_detector("tiny", 18)
    backbone = sum(p.numel() for p in model.backbone.parameters())
    assert 0.5e6 < backbone < 3e6
    with pytest.raises(ValueError, match="unknown detector architecture 'yolo'"):
        build_detector("yolo", 3)
    with pytest.raises(ValueError, match="counts background"):
        build_detector("tiny", 1)


def test_checkpoint_is_safetensors_plus_json_and_round_trips(tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = build_detector("tiny", 3, min_size=64, max_size=96, representation_size=128).eval()
    path = save_detector(model, tmp_path / "det", arch="tiny", class_names=["a", "b"],
                         build_options={"representation_size": 128}, report={"val_map50": 0.5})
    assert path.name == "det.safetensors"
    header_len = int.from_bytes(path.read_bytes()[:8], "little")  # safetensors: u64 length + JSON header
    assert json.loads(path.read_bytes()[8:8 + header_len])["__metadata__"]["arch"] == "tiny"
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["class_names"] == ["__background__", "a", "b"] and sidecar["min_size"] == 64
    loaded, meta = load_detector(path)
    assert meta["report"] == {"val_map50": 0.5}
    image = [torch.rand(3, 64, 80)]
    with torch.no_grad():
        torch.testing.assert_close(loaded.backbone(image[0][None])["0"], model.backbone(image[0][None])["0"])
        torch.testing.assert_close(loaded(image)[0]["scores"], model(image)[0]["scores"])
    path.with_suffix(".json").unlink()
    with pytest.raises(FileNotFoundError, match="det.json is missing"):
        load_detector(path)
    with pytest.raises(ValueError, match="2 class names for a detector with 1 object classes"):
        save_detector(build_detector("tiny", 2), tmp_path / "x", arch="tiny", class_names=["a", "b"])


def test_time_budget_stops_training_and_bad_labels_are_refused() -> None:
    frame = np.zeros((64, 64, 3), np.uint8)
    frame[10:40, 10:40] = 200
    samples = [(frame, np.array([[10, 10, 40, 40]], np.float32), np.array([1]))] * 4
    report = train_detector(samples, ["square"], epochs=5, batch_size=2, min_size=64, max_size=64,
                            representation_size=64, max_train_sec=1e-3)
    assert report["steps"] == 1 and report["stopped_early"] and report["planned_steps"] == 10
    with pytest.raises(ValueError, match=r"sample 0: labels must be in 1..1"):
        train_detector([(frame, np.array([[1, 1, 9, 9]]), np.array([2]))], ["square"])
