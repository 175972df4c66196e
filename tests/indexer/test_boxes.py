"""Box geometry against hand-computed values and a naive per-pair IoU."""

from __future__ import annotations

import numpy as np
import pytest

from actbert import data as actbert_data
from indexer.features.boxes import (
    box_area,
    box_iou,
    box_locations,
    clip_xyxy,
    scale_xyxy,
    valid_boxes,
    xywh_to_xyxy,
    xyxy_to_xywh,
)


def test_xywh_round_trip_and_hand_values() -> None:
    xyxy = np.array([[10, 20, 30, 60], [0, 0, 1, 1]], np.float32)
    xywh = xyxy_to_xywh(xyxy)
    np.testing.assert_array_equal(xywh, [[10, 20, 20, 40], [0, 0, 1, 1]])
    np.testing.assert_array_equal(xywh_to_xyxy(xywh), xyxy)
    batched = np.stack([xyxy, xyxy + 5])  # (2, 2, 4): leading axes are kept
    assert xyxy_to_xywh(batched).shape == (2, 2, 4)
    assert xyxy_to_xywh(np.zeros((0, 4))).shape == (0, 4)
    assert xyxy_to_xywh([]).shape == (0, 4)


def test_area_and_clip() -> None:
    boxes = np.array([[-10, -5, 50, 40], [300, 200, 400, 300], [5, 5, 2, 9]], np.float32)
    np.testing.assert_array_equal(box_area(boxes), [60 * 45, 100 * 100, 0])  # inverted box has no area
    clipped = clip_xyxy(boxes, 320, 240)
    np.testing.assert_array_equal(clipped, [[0, 0, 50, 40], [300, 200, 320, 240], [5, 5, 2, 9]])
    with pytest.raises(ValueError, match="positive"):
        clip_xyxy(boxes, 0, 240)


def _naive_iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def test_iou_hand_values_and_naive_reference() -> None:
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[5, 5, 15, 15], [0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 10, 5]], np.float32)
    np.testing.assert_allclose(box_iou(a, b), [[25 / 175, 1.0, 0.0, 0.5]], rtol=1e-6)
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 100, (7, 2))
    q = rng.uniform(0, 100, (5, 2))
    boxes_a = np.concatenate([p, p + rng.uniform(1, 50, (7, 2))], 1)
    boxes_b = np.concatenate([q, q + rng.uniform(1, 50, (5, 2))], 1)
    expected = [[_naive_iou(x, y) for y in boxes_b] for x in boxes_a]
    np.testing.assert_allclose(box_iou(boxes_a, boxes_b), expected, rtol=1e-5, atol=1e-7)
    assert box_iou(np.zeros((0, 4)), boxes_b).shape == (0, 5)
    degenerate = np.array([[3, 3, 3, 3]], np.float32)
    assert box_iou(degenerate, degenerate)[0, 0] == 0.0


def test_scale_between_resized_and_original_frames() -> None:
    boxes = np.array([[10, 20, 30, 40]], np.float32)
    up = scale_xyxy(boxes, (320, 240), (640, 360))
    np.testing.assert_allclose(up, [[20, 30, 60, 60]])
    np.testing.assert_allclose(scale_xyxy(up, (640, 360), (320, 240)), boxes, rtol=1e-6)


def test_locations_are_actbert_data_function() -> None:
    assert box_locations is actbert_data.box_locations
    loc = box_locations(np.array([[32, 24, 160, 120]]), 320, 240)
    np.testing.assert_allclose(loc, [[0.1, 0.1, 0.5, 0.5, 0.16]], rtol=1e-6)


def test_valid_boxes_and_shape_errors() -> None:
    boxes = np.array([[0, 0, 5, 5], [0, 0, 0.5, 5], [0, 0, np.nan, 5], [4, 4, 2, 9]], np.float32)
    np.testing.assert_array_equal(valid_boxes(boxes, 1.0), [True, False, False, False])
    with pytest.raises(ValueError, match="last axis of 4"):
        box_iou(np.zeros((2, 3)), np.zeros((2, 4)))
