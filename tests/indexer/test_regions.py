"""RegionExtractor on real torchvision detectors: same detections as the detector's own forward, boxes in
input-frame pixels, class distributions consistent with the scores, features that follow the box."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from indexer.features.detector import (
    DetectorWeightsUnavailable,
    build_detector,
    save_detector,
)
from indexer.features.regions import FrameRegions, RegionExtractor

NAMES = ("__background__", "red", "green", "blue")


def _frames(n: int = 3, h: int = 75, w: int = 100) -> np.ndarray:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 60, (n, h, w, 3), dtype=np.uint8)
    for i in range(n):
        x, y = 10 + 15 * i, 8 + 5 * i
        frames[i, y:y + 30, x:x + 40, i % 3] = 230
    return frames


def _deterministic_tiny() -> torch.nn.Module:
    """A random tiny detector whose box regression is zero, so each final box IS the proposal whose
    classification produced its score (bottom-up re-pooling must then reproduce that score)."""
    torch.manual_seed(0)
    model = build_detector("tiny", len(NAMES), min_size=120, max_size=160)
    with torch.no_grad():
        model.roi_heads.box_predictor.bbox_pred.weight.zero_()
        model.roi_heads.box_predictor.bbox_pred.bias.zero_()
    return model.eval()


@pytest.fixture(scope="module")
def extractor() -> RegionExtractor:
    return RegionExtractor.from_model(_deterministic_tiny(), NAMES, name="tiny-test", version="seed0",
                                      score_threshold=0.0, max_boxes=5, batch_size=2)


@pytest.fixture(scope="module")
def regions(extractor: RegionExtractor) -> list[FrameRegions]:
    return extractor(_frames())


def test_detections_equal_the_detectors_own_forward(extractor: RegionExtractor, regions) -> None:
    frames = _frames()
    assert len(regions) == 3 and all(isinstance(r, FrameRegions) for r in regions)
    with torch.no_grad():  # the detector run as torchvision runs it, on the original frames
        reference = extractor.model([torch.from_numpy(f).permute(2, 0, 1).float() / 255 for f in frames])
    for r, ref in zip(regions, reference):
        assert 0 < len(r) <= 5
        np.testing.assert_allclose(r.boxes_xyxy, ref["boxes"].numpy(), atol=1e-3)  # 100x75 frame pixels
        np.testing.assert_allclose(r.scores, ref["scores"].numpy(), rtol=1e-5)
        np.testing.assert_array_equal(r.labels, ref["labels"].numpy())
        assert r.boxes_xyxy.dtype == np.float32 and r.boxes_xyxy[:, 2].max() <= 100 and r.boxes_xyxy[:, 3].max() <= 75


def test_class_distribution_agrees_with_scores_and_labels(extractor: RegionExtractor, regions) -> None:
    for r in regions:
        assert r.class_probs.shape == (len(r), len(NAMES)) and r.class_probs.dtype == np.float32
        np.testing.assert_allclose(r.class_probs.sum(1), 1.0, rtol=1e-5)
        rows = np.arange(len(r))
        np.testing.assert_allclose(r.class_probs[rows, r.labels], r.scores, rtol=1e-4, atol=1e-6)
        assert r.features.shape == (len(r), extractor.feature_size) == (len(r), 1024)
    top = extractor.model.roi_heads.detections_per_img
    assert top == 5


def test_features_follow_the_box_and_batching_is_invisible(extractor: RegionExtractor, regions) -> None:
    frames = _frames()
    again = extractor.describe_boxes(frames, [r.boxes_xyxy for r in regions])
    for r, a in zip(regions, again):
        np.testing.assert_allclose(a.features, r.features, rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(a.class_probs, r.class_probs, rtol=1e-3, atol=1e-5)
    box = np.array([[10, 8, 50, 38]], np.float32)
    moved = extractor.describe_boxes(frames[:1], [np.concatenate([box, box + [30, 20, 30, 20]])])[0]
    assert np.abs(moved.features[0] - moved.features[1]).max() > 1e-3
    one_by_one = RegionExtractor.from_model(extractor.model, NAMES, name="t", version="v", score_threshold=0.0,
                                            batch_size=1)(frames)
    for a, b in zip(regions, one_by_one):
        np.testing.assert_allclose(a.features, b.features, rtol=1e-4, atol=1e-5)
    empty = extractor.describe_boxes(frames[:1], [np.zeros((0, 4))])[0]
    assert len(empty) == 0 and empty.features.shape == (0, 1024)


def test_locations_and_bad_input(extractor: RegionExtractor, regions) -> None:
    r = regions[0]
    loc = r.locations(100, 75)
    np.testing.assert_allclose(loc[:, :4], r.boxes_xyxy / [100, 75, 100, 75], rtol=1e-6)
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\) uint8"):
        extractor(_frames(1).astype(np.float32))


def test_checkpoint_path_and_thresholds(tmp_path: Path) -> None:
    path = save_detector(_deterministic_tiny(), tmp_path / "det", arch="tiny", class_names=NAMES[1:])
    ex = RegionExtractor(path, score_threshold=0.06, max_boxes=2)
    assert ex.class_names == NAMES and ex.name == "tiny:det" and ex.version.startswith("sha256:")
    for r in ex(_frames(2)):
        assert len(r) <= 2 and (r.scores > 0.06).all()
    with pytest.raises(ValueError, match="neither a torchvision architecture"):
        RegionExtractor(tmp_path / "missing.safetensors")


def test_torchvision_architecture_random_weights_are_labelled() -> None:
    torch.manual_seed(0)
    ex = RegionExtractor("fasterrcnn_mobilenet_v3_large_320_fpn", weights="none", score_threshold=0.0,
                         max_boxes=3, min_size=96, max_size=128)
    assert "random" in ex.name and "random" in ex.version and len(ex.class_names) == 91
    (r,) = ex(_frames(1))
    assert r.class_probs.shape[1] == 91 and r.features.shape[1] == ex.feature_size == 1024


def test_missing_coco_weights_name_the_ways_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # nothing cached
    monkeypatch.setattr(urllib.request, "_opener", None)  # urlopen's opener keeps the proxy: not past this test
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):  # and no way to download
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    with pytest.raises(DetectorWeightsUnavailable) as err:
        RegionExtractor("fasterrcnn_mobilenet_v3_large_320_fpn")
    message = str(err.value)
    for way_out in ("--detector-weights", "train-detector", "demo", "--no-regions"):
        assert way_out in message
