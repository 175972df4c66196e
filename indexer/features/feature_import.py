"""Import of pre-extracted features into the per-video format (:class:`actbert.data.VideoFeatures`).

Formats read:

- bottom-up-attention TSV (Anderson et al.'s ``generate_tsv.py`` and its forks): one tab-separated
  line per image, no header, fields ``image_id, image_w, image_h, num_boxes, boxes, features`` and
  optionally ``cls_prob`` (and ``objects_id, objects_conf, attrs_id, attrs_conf`` in some forks);
  arrays are base64 of raw little-endian buffers (float32; int64 for ``*_id``), reshaped to
  ``(num_boxes, -1)``. Boxes are xyxy pixels of the image.
- the npz variant (one file per image): ``x`` or ``features`` (K, F), ``bbox`` or ``boxes`` (K, 4),
  ``image_w``, ``image_h``, ``num_bbox`` (optional), ``cls_prob`` (optional); read without pickle.
- per-video action features: an ``.npy`` (C, F) array with clip times given ((C, 2) seconds) or
  assumed to be consecutive fixed windows of ``window_sec`` seconds from 0.

Regions without a class distribution get ``region_classes`` of shape (K, 0) and score
``objects_conf`` when present, else 1.
"""

from __future__ import annotations

import base64
import csv
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from actbert.data import VideoFeatures
from indexer.features.boxes import scale_xyxy

log = logging.getLogger(__name__)

TSV_FIELDS = ("image_id", "image_w", "image_h", "num_boxes", "boxes", "features")
TSV_FIELDS_CLS = (*TSV_FIELDS, "cls_prob")
TSV_FIELDS_OBJECTS = (*TSV_FIELDS, "objects_id", "objects_conf", "attrs_id", "attrs_conf")
_ARRAY_DTYPES = {"boxes": np.float32, "features": np.float32, "cls_prob": np.float32, "objects_id": np.int64,
                 "objects_conf": np.float32, "attrs_id": np.int64, "attrs_conf": np.float32}


@dataclass(frozen=True, eq=False)
class RegionRecord:
    """The regions of one image: ``boxes_xyxy`` (K, 4) float32 pixels of an ``image_w`` x ``image_h``
    image, ``features`` (K, F) float32, ``cls_prob`` (K, C) float32 or None, ``scores`` (K,) float32."""

    image_id: str
    image_w: int
    image_h: int
    boxes_xyxy: np.ndarray
    features: np.ndarray
    cls_prob: np.ndarray | None
    scores: np.ndarray


def _record(source: str, image_id: str, w, h, boxes, feats, cls_prob, conf) -> RegionRecord:
    boxes = np.asarray(boxes, np.float32)
    feats = np.asarray(feats, np.float32)
    if boxes.size == 0:  # an image without regions; its arrays decode as (0, 0)
        boxes = boxes.reshape(0, 4)
        feats = feats.reshape(0, feats.shape[1] if feats.ndim == 2 else 0)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{source}: boxes of {image_id!r} must be (K, 4), got {boxes.shape}")
    if feats.ndim != 2 or len(feats) != len(boxes):
        raise ValueError(f"{source}: features of {image_id!r} must be (K={len(boxes)}, F), got {feats.shape}")
    if cls_prob is not None:
        cls_prob = np.asarray(cls_prob, np.float32)
        if cls_prob.ndim != 2 or len(cls_prob) != len(boxes):
            raise ValueError(f"{source}: cls_prob of {image_id!r} must be (K={len(boxes)}, C), got {cls_prob.shape}")
        if not len(boxes):
            cls_prob = cls_prob.reshape(0, cls_prob.shape[1])
        scores = cls_prob[:, 1:].max(1) if cls_prob.shape[1] > 1 else np.ones(len(boxes), np.float32)
    elif conf is not None:
        scores = np.asarray(conf, np.float32).reshape(-1)
    else:
        scores = np.ones(len(boxes), np.float32)
    w, h = int(w), int(h)
    if w <= 0 or h <= 0:
        raise ValueError(f"{source}: image size of {image_id!r} must be positive, got {w}x{h}")
    return RegionRecord(str(image_id), w, h, boxes, feats, cls_prob, scores.astype(np.float32))


def _decode(source: str, field: str, text: str, rows: int) -> np.ndarray:
    try:
        raw = base64.b64decode(text, validate=False)
        arr = np.frombuffer(raw, dtype=np.dtype(_ARRAY_DTYPES[field]).newbyteorder("<"))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{source}: field {field} is not base64 of {_ARRAY_DTYPES[field].__name__}: {exc}") from exc
    if rows == 0:
        return arr.reshape(0, 0) if arr.size == 0 else arr.reshape(0, -1)
    if arr.size % rows:
        raise ValueError(f"{source}: field {field} has {arr.size} values, not a multiple of num_boxes={rows}")
    return arr.reshape(rows, -1).astype(_ARRAY_DTYPES[field], copy=False)


def read_bua_tsv(path: str | Path, fieldnames: Sequence[str] | None = None) -> Iterator[RegionRecord]:
    """Records of a bottom-up-attention TSV. ``fieldnames`` default: from the column count (6: the
    standard fields, 7: + ``cls_prob``, 10: + objects/attributes)."""
    path = Path(path)
    csv.field_size_limit(sys.maxsize)  # one feature field holds megabytes
    by_count = {len(f): f for f in (TSV_FIELDS, TSV_FIELDS_CLS, TSV_FIELDS_OBJECTS)}
    with open(path, newline="") as handle:
        for line_no, row in enumerate(csv.reader(handle, delimiter="\t"), 1):
            if not row:
                continue
            names = tuple(fieldnames) if fieldnames else by_count.get(len(row))
            if names is None or len(names) != len(row):
                raise ValueError(f"{path}:{line_no}: {len(row)} tab-separated fields; expected "
                                 f"{sorted(by_count)} or pass fieldnames")
            item = dict(zip(names, row))
            missing = [f for f in TSV_FIELDS if f not in item]
            if missing:
                raise ValueError(f"{path}:{line_no}: fields {missing} missing from {names}")
            source = f"{path}:{line_no}"
            k = int(item["num_boxes"])
            arrays = {f: _decode(source, f, item[f], k) for f in _ARRAY_DTYPES if f in item}
            yield _record(source, item["image_id"], item["image_w"], item["image_h"], arrays["boxes"],
                          arrays["features"], arrays.get("cls_prob"), arrays.get("objects_conf"))


def read_bua_npz(path: str | Path, image_id: str | None = None) -> RegionRecord:
    """One image's record from a bottom-up-attention npz (``image_id`` default: the file stem)."""
    path = Path(path)
    with np.load(path, allow_pickle=False) as data:
        keys = set(data.files)

        def pick(*names: str, required: bool = True):
            for n in names:
                if n in keys:
                    return data[n]
            if required:
                raise ValueError(f"{path}: none of the keys {names} present (keys: {sorted(keys)})")
            return None

        feats, boxes = pick("x", "features"), pick("bbox", "boxes")
        w, h = pick("image_w", "w"), pick("image_h", "h")
        num = pick("num_bbox", "num_boxes", required=False)
        if num is not None and int(num) != len(boxes):
            raise ValueError(f"{path}: num_bbox={int(num)} but {len(boxes)} boxes")
        return _record(str(path), image_id or path.stem, w, h, boxes, feats, pick("cls_prob", required=False),
                       pick("objects_conf", "obj_conf", required=False))


def read_action_features(path: str | Path, clip_times_sec: np.ndarray | None = None,
                         window_sec: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features (C, F) float32, clip_start_sec (C,), clip_end_sec (C,)) from an ``.npy`` (C, F).

    Clip times are ``clip_times_sec`` (C, 2) seconds when given, else windows ``[i * window_sec,
    (i + 1) * window_sec)``; one of the two is required.
    """
    feats = np.load(Path(path), allow_pickle=False)
    if feats.ndim != 2:
        raise ValueError(f"{path}: action features must be a (C, F) array, got shape {feats.shape}")
    if clip_times_sec is not None:
        times = np.asarray(clip_times_sec, np.float64)
        if times.shape != (len(feats), 2):
            raise ValueError(f"{path}: clip_times_sec must be ({len(feats)}, 2), got {times.shape}")
        if np.any(times[:, 1] <= times[:, 0]):
            raise ValueError(f"{path}: every clip must end after it starts")
        return feats.astype(np.float32), times[:, 0].copy(), times[:, 1].copy()
    if window_sec is None or window_sec <= 0:
        raise ValueError(f"{path}: give clip_times_sec or a positive window_sec (got {window_sec})")
    starts = np.arange(len(feats), dtype=np.float64) * window_sec
    return feats.astype(np.float32), starts, starts + window_sec


_TRAILING_INT = re.compile(r"(\d+)(?:\.\w+)?$")


def frame_index_of(image_id: str) -> int:
    """The trailing integer of an image id such as ``video_000012`` or ``abc/12.jpg`` (-> 12)."""
    match = _TRAILING_INT.search(str(image_id))
    if match is None:
        raise ValueError(f"image id {image_id!r} has no trailing frame number; pass region_times_sec")
    return int(match.group(1))


def video_features_from_imports(video_id: str, action_features: np.ndarray, clip_start_sec: np.ndarray,
                                clip_end_sec: np.ndarray, regions: Iterable[RegionRecord] = (), *,
                                region_times_sec: Sequence[float] | None = None, region_fps: float = 1.0,
                                frame_size: tuple[int, int] | None = None,
                                extractors: dict | None = None) -> VideoFeatures:
    """Assemble a :class:`VideoFeatures` from imported action arrays and region records.

    Each record is one frame at ``region_times_sec[i]`` seconds, or at ``frame_index_of(image_id) /
    region_fps``. A region belongs to the clip containing its time (the nearest clip when it falls
    in a gap). Boxes are scaled to ``frame_size`` (width, height; default: the first record's size).
    Records with a class distribution must all have the same class count.
    """
    records = list(regions)
    if region_times_sec is not None and len(region_times_sec) != len(records):
        raise ValueError(f"{len(region_times_sec)} region times for {len(records)} region records")
    starts, ends = np.asarray(clip_start_sec, np.float64), np.asarray(clip_end_sec, np.float64)
    if frame_size is None:
        frame_size = (records[0].image_w, records[0].image_h) if records else (0, 0)
    with_probs = {r.cls_prob.shape[1] for r in records if r.cls_prob is not None and len(r.cls_prob)}
    if len(with_probs) > 1 or (with_probs and any(r.cls_prob is None for r in records)):
        raise ValueError(f"{video_id}: region records disagree on the class distribution ({sorted(with_probs)} "
                         f"classes, some missing)")
    n_classes = with_probs.pop() if with_probs else 0
    widths = {r.features.shape[1] for r in records if len(r.features)}
    if len(widths) > 1:
        raise ValueError(f"{video_id}: region features of different widths {sorted(widths)}")
    width = widths.pop() if widths else 0
    feats, boxes, probs, scores, times = [], [], [], [], []
    for i, r in enumerate(records):
        t = float(region_times_sec[i]) if region_times_sec is not None else frame_index_of(r.image_id) / region_fps
        k = len(r.boxes_xyxy)
        feats.append(r.features.reshape(k, width))
        boxes.append(scale_xyxy(r.boxes_xyxy, (r.image_w, r.image_h), frame_size))
        probs.append(r.cls_prob.reshape(k, n_classes) if r.cls_prob is not None else np.zeros((k, 0), np.float32))
        scores.append(r.scores)
        times.append(np.full(k, t))
    region_features = np.concatenate(feats) if feats else np.zeros((0, 0), np.float32)
    time_sec = np.concatenate(times) if times else np.zeros(0)
    return VideoFeatures(
        video_id=video_id, clip_start_sec=starts, clip_end_sec=ends,
        action_features=np.asarray(action_features, np.float32), region_features=region_features,
        region_boxes_xyxy=np.concatenate(boxes).reshape(-1, 4) if boxes else np.zeros((0, 4), np.float32),
        region_classes=np.concatenate(probs) if probs else np.zeros((0, 0), np.float32),
        region_scores=np.concatenate(scores) if scores else np.zeros(0, np.float32),
        region_clip=clip_of_times(time_sec, starts, ends), region_time_sec=time_sec,
        frame_size=(int(frame_size[0]), int(frame_size[1])), extractors=extractors or {"imported": True})


def clip_of_times(times_sec: np.ndarray, clip_start_sec: np.ndarray, clip_end_sec: np.ndarray) -> np.ndarray:
    """(N,) int64 index of the clip [start, end) holding each time; times in gaps or outside all
    clips go to the clip whose span is nearest."""
    t = np.asarray(times_sec, np.float64)[:, None]
    starts, ends = np.asarray(clip_start_sec)[None], np.asarray(clip_end_sec)[None]
    if starts.size == 0:
        if t.size:
            raise ValueError("regions given for a video without clips")
        return np.zeros(0, np.int64)
    distance = np.maximum(starts - t, 0) + np.maximum(t - ends, 0) + (t == ends) * 1e-9  # end is exclusive
    return np.argmin(distance, axis=1).astype(np.int64)
