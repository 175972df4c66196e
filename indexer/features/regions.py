"""Region features: detected boxes with their RoI feature and class distribution (paper 3.2.1).

``RegionExtractor`` runs a torchvision Faster R-CNN exactly as its own ``forward`` does in eval mode
(resize transform, backbone, RPN, box head, per-class NMS) to get the final detections, then pools
the backbone features again for those FINAL boxes (``roi_heads.box_roi_pool``) and applies
``box_head`` and ``box_predictor``, as bottom-up-attention feature extraction does: the feature of a
region describes the box that is shown, and its class distribution is the full softmax over all
classes, background included. Boxes are mapped from the detector's resized input back to the
pixels of the frame that was passed in.

Detectors: a torchvision architecture name with COCO weights (``weights="default"``: cached or
downloaded, else :class:`~indexer.features.detector.DetectorWeightsUnavailable` naming the ways out), the same
with random weights (``weights="none"``, for tests and timing only, labelled so in ``name`` and
``version``), or the path of a checkpoint written by ``python -m indexer train-detector``.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torchvision
from torchvision.models.detection import FasterRCNN

from indexer.features.boxes import box_locations, scale_xyxy
from indexer.features.detector import (
    TORCHVISION_ARCHS,
    build_detector,
    coco_categories,
    load_coco_detector,
    load_detector,
)

log = logging.getLogger(__name__)

RANDOM_WEIGHTS_TAG = "random-weights-for-tests"


@dataclass(frozen=True, eq=False)
class FrameRegions:
    """The regions of one frame, sorted by descending score (k boxes, C classes with background at
    0, F feature width). ``boxes_xyxy`` (k, 4) float32 pixels of the input frame; ``scores`` (k,)
    float32; ``labels`` (k,) int64 class index in 1..C-1; ``class_probs`` (k, C) float32 softmax;
    ``features`` (k, F) float32 box-head representation."""

    boxes_xyxy: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    class_probs: np.ndarray
    features: np.ndarray

    def __len__(self) -> int:
        return len(self.boxes_xyxy)

    def locations(self, width: float, height: float) -> np.ndarray:
        """(k, 5) locations (x1/W, y1/H, x2/W, y2/H, area/(W*H)) in a frame of ``width`` x ``height``."""
        return box_locations(self.boxes_xyxy, width, height)


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


class RegionExtractor:
    """Detect at most ``max_boxes`` regions per frame with score > ``score_threshold``.

    ``detector``: a torchvision architecture name (see :data:`indexer.features.detector.TORCHVISION_ARCHS`) or
    a checkpoint path (``X.safetensors`` with ``X.json``). ``weights``: "default" (COCO) or "none"
    (random; architecture names only). ``min_size``/``max_size`` override the detector's input
    resize (short/long side in pixels). Frames go through the model ``batch_size`` at a time.
    """

    def __init__(self, detector: str | Path = "fasterrcnn_resnet50_fpn_v2", weights: str = "default",
                 score_threshold: float = 0.4, max_boxes: int = 5, device: str = "cpu",
                 min_size: int | None = None, max_size: int | None = None, batch_size: int = 4) -> None:
        if weights not in ("default", "none"):
            raise ValueError(f"weights must be 'default' (COCO) or 'none' (random, tests only), got {weights!r}")
        sizes = {"min_size": min_size, "max_size": max_size}
        if str(detector) in TORCHVISION_ARCHS:
            arch = str(detector)
            if weights == "default":
                model = load_coco_detector(arch, **sizes)
                name, version = f"{arch}-coco", f"torchvision-{torchvision.__version__}:COCO_V1"
            else:
                model = build_detector(arch, 91, **sizes).eval()
                name, version = f"{arch}-{RANDOM_WEIGHTS_TAG}", f"{RANDOM_WEIGHTS_TAG}:untrained"
                log.warning("region detector %s has RANDOM weights: its regions are meaningless (tests only)", arch)
            class_names = coco_categories(arch)
        else:
            path = Path(detector)
            if weights == "none":
                raise ValueError("weights='none' applies to architecture names, not to a checkpoint path")
            if not (path.is_file() or path.with_name(path.name + ".safetensors").is_file()):
                raise ValueError(f"detector {str(detector)!r} is neither a torchvision architecture "
                                 f"({', '.join(TORCHVISION_ARCHS)}) nor an existing checkpoint file")
            model, meta = load_detector(path)
            weights_file = path if path.suffix == ".safetensors" else path.with_name(path.name + ".safetensors")
            name, version = f"{meta['arch']}:{weights_file.stem}", f"sha256:{_file_digest(weights_file)}"
            class_names = tuple(meta["class_names"])
            _set_sizes(model, **sizes)
        self._setup(model, class_names, name, version, score_threshold, max_boxes, device, batch_size)

    @classmethod
    def from_model(cls, model: FasterRCNN, class_names: Sequence[str], *, name: str, version: str,
                   score_threshold: float = 0.4, max_boxes: int = 5, device: str = "cpu",
                   batch_size: int = 4) -> "RegionExtractor":
        """Wrap a detector already in memory (``class_names`` with background at index 0)."""
        self = cls.__new__(cls)
        self._setup(model, tuple(class_names), name, version, score_threshold, max_boxes, device, batch_size)
        return self

    def _setup(self, model: FasterRCNN, class_names: tuple[str, ...], name: str, version: str,
               score_threshold: float, max_boxes: int, device: str, batch_size: int) -> None:
        if not 0.0 <= score_threshold < 1.0:
            raise ValueError(f"score_threshold must be in [0, 1), got {score_threshold}")
        if max_boxes < 1 or batch_size < 1:
            raise ValueError(f"max_boxes and batch_size must be >= 1, got {max_boxes}, {batch_size}")
        num_classes = model.roi_heads.box_predictor.cls_score.out_features
        if len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names for a detector with {num_classes} classes")
        self.model = model.to(device).eval()
        self.model.roi_heads.score_thresh = float(score_threshold)
        self.model.roi_heads.detections_per_img = int(max_boxes)
        self.class_names, self.name, self.version = class_names, name, version
        self.score_threshold, self.max_boxes, self.batch_size = score_threshold, max_boxes, batch_size
        self.device = torch.device(device)
        self.feature_size = int(model.roi_heads.box_predictor.cls_score.in_features)

    def info(self) -> dict:
        """What produced the regions (for ``VideoFeatures.extractors``)."""
        return {"name": self.name, "version": self.version, "score_threshold": self.score_threshold,
                "max_boxes": self.max_boxes, "feature_size": self.feature_size,
                "num_classes": len(self.class_names),
                "input_size": [int(self.model.transform.min_size[0]), int(self.model.transform.max_size)]}

    def input_size(self, height: int, width: int) -> tuple[int, int]:
        """The (height, width) this detector resizes a ``height`` x ``width`` frame to, never larger
        than the frame: frames decoded at this size give the detector the same input without the
        decoder holding (and the detector converting) full-resolution frames (an 8K frame is 100 MB)."""
        transform = self.model.transform
        scale = min(transform.min_size[-1] / min(height, width), transform.max_size / max(height, width))
        if scale >= 1:
            return height, width
        return max(2, int(height * scale)), max(2, int(width * scale))

    def _images(self, frames: np.ndarray) -> list[torch.Tensor]:
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"frames must be an (N, H, W, 3) uint8 RGB array, got {frames.shape} {frames.dtype}")
        return [torch.from_numpy(np.ascontiguousarray(f)).to(self.device).permute(2, 0, 1).float().div_(255)
                for f in frames]

    def _describe(self, features, boxes_resized: list[torch.Tensor], image_sizes) -> tuple[torch.Tensor, torch.Tensor]:
        """Box-head features (K, F) and class softmax (K, C) for boxes in the resized input's pixels."""
        heads = self.model.roi_heads
        pooled = heads.box_roi_pool(features, boxes_resized, image_sizes)
        represented = heads.box_head(pooled)
        class_logits, _ = heads.box_predictor(represented)
        return represented.flatten(1), torch.softmax(class_logits, -1)

    def _frame_regions(self, boxes, scores, labels, feats, probs, resized_hw, original_hw) -> FrameRegions:
        boxes = scale_xyxy(boxes.cpu().numpy(), (resized_hw[1], resized_hw[0]), (original_hw[1], original_hw[0]))
        return FrameRegions(boxes_xyxy=boxes.astype(np.float32), scores=scores.cpu().numpy().astype(np.float32),
                            labels=labels.cpu().numpy().astype(np.int64),
                            class_probs=probs.cpu().numpy().astype(np.float32),
                            features=feats.cpu().numpy().astype(np.float32))

    @torch.inference_mode()
    def __call__(self, frames: np.ndarray) -> list[FrameRegions]:
        """Regions of each frame of ``frames`` (N, H, W, 3) uint8 RGB; one :class:`FrameRegions` per frame."""
        images = self._images(frames)
        out: list[FrameRegions] = []
        model = self.model
        for start in range(0, len(images), self.batch_size):
            batch = images[start:start + self.batch_size]
            original = [tuple(im.shape[-2:]) for im in batch]
            resized, _ = model.transform(batch)
            features = model.backbone(resized.tensors)
            if isinstance(features, torch.Tensor):
                features = {"0": features}
            proposals, _ = model.rpn(resized, features)
            detections, _ = model.roi_heads(features, proposals, resized.image_sizes)
            boxes = [d["boxes"] for d in detections]
            feats, probs = self._describe(features, boxes, resized.image_sizes)
            counts = [len(b) for b in boxes]
            for d, f, p, hw, ohw in zip(detections, feats.split(counts), probs.split(counts),
                                        resized.image_sizes, original):
                out.append(self._frame_regions(d["boxes"], d["scores"], d["labels"], f, p, hw, ohw))
        return out

    @torch.inference_mode()
    def describe_boxes(self, frames: np.ndarray, boxes_xyxy: Sequence[np.ndarray]) -> list[FrameRegions]:
        """Features and class distributions of GIVEN boxes ((k_i, 4) pixels of frame i), for example
        ground-truth boxes. ``labels``/``scores`` are the most probable non-background class and its
        probability."""
        images = self._images(frames)
        if len(boxes_xyxy) != len(images):
            raise ValueError(f"{len(boxes_xyxy)} box arrays for {len(images)} frames")
        out: list[FrameRegions] = []
        for start in range(0, len(images), self.batch_size):
            batch = images[start:start + self.batch_size]
            original = [tuple(im.shape[-2:]) for im in batch]
            resized, _ = self.model.transform(batch)
            features = self.model.backbone(resized.tensors)
            if isinstance(features, torch.Tensor):
                features = {"0": features}
            given = [np.asarray(b, np.float32).reshape(-1, 4) for b in boxes_xyxy[start:start + self.batch_size]]
            boxes = [torch.from_numpy(scale_xyxy(b, (o[1], o[0]), (r[1], r[0]))).to(self.device)
                     for b, o, r in zip(given, original, resized.image_sizes)]
            feats, probs = self._describe(features, boxes, resized.image_sizes)
            counts = [len(b) for b in boxes]
            for b, f, p, hw, ohw in zip(boxes, feats.split(counts), probs.split(counts), resized.image_sizes,
                                        original):
                scores, labels = p[:, 1:].max(1)
                out.append(self._frame_regions(b, scores, labels + 1, f, p, hw, ohw))
        return out


def _set_sizes(model: FasterRCNN, min_size: int | None, max_size: int | None) -> None:
    if min_size is not None:
        model.transform.min_size = (int(min_size),)
    if max_size is not None:
        model.transform.max_size = int(max_size)
