"""SynthKitchen as a source of detector training frames: a corpus's object classes and its frames
with their ground-truth boxes, in the samples ``indexer.features.detector_train.train_detector`` takes.

``python -m indexer train-detector --corpus DIR --out detector.safetensors`` trains any architecture of
:mod:`indexer.features.detector` on a SynthKitchen corpus (train split), reports mAP@0.5 on its val split, and
writes a checkpoint that ``RegionExtractor(detector=PATH)`` loads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import numpy as np

from indexer.features.boxes import clip_xyxy, valid_boxes
from indexer.features.detector_train import Sample
from indexer.library.ground_truth import read_json
from indexer.library.store import checked_path


def synthkitchen_class_names(corpus_dir: str | Path) -> tuple[str, ...]:
    """The object classes of a SynthKitchen corpus (label ``i + 1`` is ``names[i]``)."""
    manifest = Path(corpus_dir) / "synthkitchen.json"
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest} not found: {corpus_dir} is not a SynthKitchen corpus "
                                f"(make one with `python -m indexer synthkitchen --out DIR`)")
    return tuple(json.loads(manifest.read_text())["object_classes"])


def synthkitchen_detection_samples(corpus_dir: str | Path, split: str | None = "train",
                                   every_n_frames: int = 12, min_side: float = 2.0) -> Iterator[Sample]:
    """Frames of a SynthKitchen corpus with their ground-truth boxes, video by video.

    Takes every ``every_n_frames``-th frame (from frame 0) of each video of ``split`` ("train", "val",
    "test", or None for all), decoded from the mp4 (what the detector sees at ingestion). Boxes come
    from ``ground_truth/<id>.npz`` (``box_frame``, ``box_xyxy``, ``box_class``); boxes thinner than
    ``min_side`` pixels (objects almost out of the frame) are dropped. Labels are class index + 1.
    """
    from indexer.features.video import read_frames_at

    if every_n_frames < 1:
        raise ValueError(f"every_n_frames must be >= 1, got {every_n_frames}")
    corpus_dir = Path(corpus_dir)
    synthkitchen_class_names(corpus_dir)  # checks that this is a corpus
    records = [read_json(p) for p in sorted((corpus_dir / "ground_truth").glob("*.json"))]
    for rec in records:
        if split is not None and rec["split"] != split:
            continue
        gt = np.load(checked_path(corpus_dir, rec["files"]["frames"], nested=True), allow_pickle=False)
        frame_ids = np.arange(0, rec["n_frames"], every_n_frames)
        frames = read_frames_at(checked_path(corpus_dir, rec["files"]["video"], nested=True),
                                frame_ids / rec["fps"])
        for fi, frame in zip(frame_ids, frames):
            rows = gt["box_frame"] == fi
            boxes = clip_xyxy(gt["box_xyxy"][rows], rec["width"], rec["height"])
            labels = gt["box_class"][rows].astype(np.int64) + 1
            keep = valid_boxes(boxes, min_side)
            yield frame, boxes[keep], labels[keep]
