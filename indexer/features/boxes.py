"""Box geometry: pure, vectorised numpy functions.

Conventions: ``xyxy`` boxes are (x1, y1, x2, y2) corners and ``xywh`` boxes are (x, y, width,
height) with (x, y) the top-left corner (COCO style); both in pixels of a named frame, x to the
right and y down. Arrays have shape (N, 4) (any leading shape where stated). Frame sizes are always
``(width, height)`` in pixels. The 5-d region location of the paper is :func:`box_locations`, owned
by :mod:`actbert.data` (the feature-file format) and re-exported here.
"""

from __future__ import annotations

import numpy as np

from actbert.data import box_locations

__all__ = ["xyxy_to_xywh", "xywh_to_xyxy", "box_area", "clip_xyxy", "box_iou", "scale_xyxy",
           "valid_boxes", "box_locations"]


def _as_boxes(boxes: np.ndarray, name: str = "boxes") -> np.ndarray:
    arr = np.asarray(boxes, dtype=np.float32)
    if arr.size == 0 and (arr.ndim == 0 or arr.shape[-1] != 4):
        return arr.reshape(0, 4)  # [] and the like: no boxes
    if arr.ndim == 0 or arr.shape[-1] != 4:
        raise ValueError(f"{name} must have a last axis of 4 (got shape {arr.shape})")
    return arr


def _check_size(width: float, height: float) -> None:
    if not (width > 0 and height > 0):
        raise ValueError(f"frame size must be positive, got width={width}, height={height}")


def xyxy_to_xywh(boxes_xyxy: np.ndarray) -> np.ndarray:
    """(..., 4) corners -> (..., 4) top-left corner and size, float32."""
    b = _as_boxes(boxes_xyxy)
    return np.concatenate([b[..., :2], b[..., 2:] - b[..., :2]], axis=-1)


def xywh_to_xyxy(boxes_xywh: np.ndarray) -> np.ndarray:
    """(..., 4) top-left corner and size -> (..., 4) corners, float32."""
    b = _as_boxes(boxes_xywh)
    return np.concatenate([b[..., :2], b[..., :2] + b[..., 2:]], axis=-1)


def box_area(boxes_xyxy: np.ndarray) -> np.ndarray:
    """(..., 4) -> (...,) area in square pixels; inverted boxes have area 0."""
    b = _as_boxes(boxes_xyxy)
    return (b[..., 2] - b[..., 0]).clip(min=0) * (b[..., 3] - b[..., 1]).clip(min=0)


def clip_xyxy(boxes_xyxy: np.ndarray, width: float, height: float) -> np.ndarray:
    """(..., 4) boxes clipped to the frame [0, width] x [0, height] (pixels)."""
    _check_size(width, height)
    b = _as_boxes(boxes_xyxy)
    return np.clip(b, 0.0, np.array([width, height, width, height], dtype=np.float32))


def box_iou(a_xyxy: np.ndarray, b_xyxy: np.ndarray) -> np.ndarray:
    """Intersection over union of every pair: (N, 4), (M, 4) -> (N, M) float32 in [0, 1].

    Pairs whose union is empty (two degenerate boxes) have IoU 0.
    """
    a = _as_boxes(a_xyxy, "a_xyxy").reshape(-1, 4)
    b = _as_boxes(b_xyxy, "b_xyxy").reshape(-1, 4)
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (bottom_right - top_left).clip(min=0).prod(axis=-1)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def scale_xyxy(boxes_xyxy: np.ndarray, from_size: tuple[float, float], to_size: tuple[float, float]) -> np.ndarray:
    """Map (..., 4) boxes from a frame of ``from_size`` (width, height) to the same content resized to
    ``to_size`` (for example from a detector's resized input back to the original frame)."""
    _check_size(*from_size)
    _check_size(*to_size)
    sx, sy = to_size[0] / from_size[0], to_size[1] / from_size[1]
    return _as_boxes(boxes_xyxy) * np.array([sx, sy, sx, sy], dtype=np.float32)


def valid_boxes(boxes_xyxy: np.ndarray, min_side: float = 1.0) -> np.ndarray:
    """(..., 4) -> (...,) bool: finite boxes at least ``min_side`` pixels wide and high."""
    b = _as_boxes(boxes_xyxy)
    finite = np.isfinite(b).all(axis=-1)
    return finite & (b[..., 2] - b[..., 0] >= min_side) & (b[..., 3] - b[..., 1] >= min_side)
