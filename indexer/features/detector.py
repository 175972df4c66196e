"""Object detectors for region features: building, checkpoints and mAP.

Every detector is a torchvision ``FasterRCNN`` (so the region extractor treats them alike):

- ``fasterrcnn_resnet50_fpn_v2``, ``fasterrcnn_mobilenet_v3_large_fpn``,
  ``fasterrcnn_mobilenet_v3_large_320_fpn``: torchvision's architectures; COCO weights through
  :func:`load_coco_detector` when they are cached or downloadable.
- ``tiny``: a small GroupNorm conv net (about 1 M backbone parameters, strides 8/16/32 plus an FPN)
  that trains from scratch on CPU in minutes on synthetic frames such as SynthKitchen's.

Class indices follow torchvision: 0 is background, objects are 1..C, and ``num_classes = C + 1``.
Checkpoints written by :func:`save_detector` are ``X.safetensors`` (the state dict, no pickle) plus a
``X.json`` sidecar (architecture, build options, class names, training report).
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torchvision.models.detection import (
    FasterRCNN,
    fasterrcnn_mobilenet_v3_large_320_fpn,
    fasterrcnn_mobilenet_v3_large_fpn,
    fasterrcnn_resnet50_fpn_v2,
)
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.ops import FeaturePyramidNetwork, MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from actbert.atomic import atomic_write, write_json
from indexer.errors import ExplorerError
from indexer.features.boxes import box_iou

log = logging.getLogger(__name__)

TORCHVISION_ARCHS = {
    "fasterrcnn_resnet50_fpn_v2": fasterrcnn_resnet50_fpn_v2,
    "fasterrcnn_mobilenet_v3_large_fpn": fasterrcnn_mobilenet_v3_large_fpn,
    "fasterrcnn_mobilenet_v3_large_320_fpn": fasterrcnn_mobilenet_v3_large_320_fpn,
}
ARCHS = ("tiny", *TORCHVISION_ARCHS)
BACKGROUND = "__background__"
CHECKPOINT_FORMAT = "indexer-detector-1"
WAYS_OUT = ("pass --detector-weights PATH (a checkpoint written by `python -m indexer train-detector`), "
            "use the demo's trained detector, or pass --no-regions to index actions and text only")


class DetectorWeightsUnavailable(ExplorerError, RuntimeError):
    """Pretrained detector weights are neither cached nor downloadable."""


class TinyBackbone(nn.Module):
    """Five stride-2 stages of GroupNorm conv blocks (strides 2..32; the two high-resolution stages
    have one conv, the others two) and an FPN over strides 8, 16, 32 (plus a max-pooled stride-64
    level). Input (B, 3, H, W) normalised images; output an ordered dict of (B, out_channels, H/s,
    W/s) maps named "0", "1", "2", "pool"."""

    def __init__(self, widths: Sequence[int] = (16, 32, 64, 128, 192), out_channels: int = 64) -> None:
        super().__init__()
        stages, c_in = [], 3
        for i, c in enumerate(widths):
            layers = [nn.Conv2d(c_in, c, 3, stride=2, padding=1, bias=False), nn.GroupNorm(8, c), nn.ReLU(inplace=True)]
            if i >= 2:
                layers += [nn.Conv2d(c, c, 3, padding=1, bias=False), nn.GroupNorm(8, c), nn.ReLU(inplace=True)]
            stages.append(nn.Sequential(*layers))
            c_in = c
        self.stages = nn.ModuleList(stages)
        self.fpn = FeaturePyramidNetwork(list(widths[2:]), out_channels, extra_blocks=LastLevelMaxPool())
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        feats = OrderedDict()
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i >= 2:
                feats[str(i - 2)] = x
        return self.fpn(feats)


def _build_tiny(num_classes: int, min_size: int, max_size: int, representation_size: int = 1024,
                **kwargs) -> FasterRCNN:
    backbone = TinyBackbone()
    anchors = AnchorGenerator(sizes=((16,), (32,), (64,), (128,)), aspect_ratios=((0.5, 1.0, 2.0),) * 4)
    roi_pool = MultiScaleRoIAlign(featmap_names=["0", "1", "2"], output_size=7, sampling_ratio=2)
    box_head = TwoMLPHead(backbone.out_channels * 7 * 7, representation_size)
    options = dict(rpn_pre_nms_top_n_train=600, rpn_post_nms_top_n_train=300, rpn_pre_nms_top_n_test=300,
                   rpn_post_nms_top_n_test=100, rpn_batch_size_per_image=128, box_batch_size_per_image=128)
    options.update(kwargs)
    return FasterRCNN(backbone, num_classes=None, min_size=min_size, max_size=max_size,
                      rpn_anchor_generator=anchors, box_roi_pool=roi_pool, box_head=box_head,
                      box_predictor=FastRCNNPredictor(representation_size, num_classes), **options)


def build_detector(arch: str, num_classes: int, *, pretrained_backbone: bool = False,
                   min_size: int | None = None, max_size: int | None = None, **kwargs) -> FasterRCNN:
    """A randomly initialised detector (train mode) for ``num_classes`` (background included).

    ``min_size``/``max_size`` set the resize of the detector's input transform (pixels of the short
    and long side); None keeps the architecture's default (800/1333 for ResNet-50, 320/640 for the
    320 MobileNet, 240/320 for ``tiny``). ``pretrained_backbone`` loads torchvision's ImageNet
    backbone weights (downloaded; :class:`DetectorWeightsUnavailable` when that is impossible).
    Other keyword arguments go to ``FasterRCNN`` (for ``tiny`` also ``representation_size``).
    """
    if num_classes < 2:
        raise ValueError(f"num_classes counts background too and must be >= 2, got {num_classes}")
    sizes = {k: v for k, v in (("min_size", min_size), ("max_size", max_size)) if v is not None}
    if arch == "tiny":
        if pretrained_backbone:
            raise ValueError("the tiny detector has no pretrained backbone; it trains from scratch")
        return _build_tiny(num_classes, sizes.get("min_size", 240), sizes.get("max_size", 320), **kwargs)
    if arch not in TORCHVISION_ARCHS:
        raise ValueError(f"unknown detector architecture {arch!r}; choose one of {', '.join(ARCHS)}")
    try:
        return TORCHVISION_ARCHS[arch](weights=None, num_classes=num_classes,
                                       weights_backbone="DEFAULT" if pretrained_backbone else None,
                                       **sizes, **kwargs)
    except (OSError, RuntimeError) as exc:
        raise DetectorWeightsUnavailable(
            f"ImageNet backbone weights for {arch} could not be loaded ({exc}); train with "
            f"pretrained_backbone=False instead") from exc


def coco_categories(arch: str) -> tuple[str, ...]:
    """The 91 COCO category names (index 0 is background) of torchvision's weights for ``arch``."""
    if arch not in TORCHVISION_ARCHS:
        raise ValueError(f"no COCO weights for {arch!r}; torchvision architectures: {', '.join(TORCHVISION_ARCHS)}")
    from torchvision.models import get_model_weights

    return tuple(get_model_weights(TORCHVISION_ARCHS[arch]).DEFAULT.meta["categories"])


def load_coco_detector(arch: str, *, min_size: int | None = None, max_size: int | None = None,
                       **kwargs) -> FasterRCNN:
    """torchvision's COCO-trained ``arch`` (eval mode), from the torch hub cache or downloaded.

    Raises :class:`DetectorWeightsUnavailable` naming the ways out when the weights cannot be had;
    never falls back to random weights.
    """
    if arch not in TORCHVISION_ARCHS:
        raise ValueError(f"no COCO weights for {arch!r}; torchvision architectures: {', '.join(TORCHVISION_ARCHS)}")
    sizes = {k: v for k, v in (("min_size", min_size), ("max_size", max_size)) if v is not None}
    try:
        model = TORCHVISION_ARCHS[arch](weights="DEFAULT", **sizes, **kwargs)
    except (OSError, RuntimeError) as exc:  # URLError is an OSError; a corrupt download a RuntimeError
        raise DetectorWeightsUnavailable(
            f"COCO weights for the detector {arch} are not cached and could not be downloaded "
            f"({type(exc).__name__}: {exc}). To get region features without them, {WAYS_OUT}.") from exc
    return model.eval()


def save_detector(model: FasterRCNN, path: str | Path, *, arch: str, class_names: Sequence[str],
                  build_options: dict | None = None, report: dict | None = None) -> Path:
    """Write ``path`` (``.safetensors``, the state dict) and its ``.json`` sidecar; returns the weights path.

    ``class_names`` are the object classes 1..C (background excluded).
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_name(path.name + ".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    num_classes = model.roi_heads.box_predictor.cls_score.out_features
    if len(class_names) + 1 != num_classes:
        raise ValueError(f"{len(class_names)} class names for a detector with {num_classes - 1} object classes")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(state, str(tmp),
                                             metadata={"format": CHECKPOINT_FORMAT, "arch": arch}))
    sidecar = {"format": CHECKPOINT_FORMAT, "arch": arch, "num_classes": num_classes,
               "class_names": [BACKGROUND, *class_names],
               "min_size": int(model.transform.min_size[0]), "max_size": int(model.transform.max_size),
               "build_options": build_options or {}, "report": report or {}}
    write_json(path.with_suffix(".json"), sidecar, indent=1)
    return path


def load_detector(path: str | Path, *, device: str | torch.device = "cpu") -> tuple[FasterRCNN, dict]:
    """Load a checkpoint written by :func:`save_detector` (eval mode); returns (model, sidecar dict).

    The sidecar's ``class_names`` include background at index 0.
    """
    path = Path(path)
    weights = path if path.suffix == ".safetensors" else path.with_name(path.name + ".safetensors")
    sidecar_path = weights.with_suffix(".json")
    for p in (weights, sidecar_path):
        if not p.is_file():
            raise FileNotFoundError(f"detector checkpoint file {p} is missing (a checkpoint is "
                                    f"X.safetensors + X.json, written by `python -m indexer train-detector`)")
    meta = json.loads(sidecar_path.read_text())
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{sidecar_path} is not an indexer detector checkpoint (format {meta.get('format')!r})")
    model = build_detector(meta["arch"], meta["num_classes"], min_size=meta["min_size"],
                           max_size=meta["max_size"], **meta.get("build_options", {}))
    model.load_state_dict(load_file(str(weights)), strict=True)
    return model.to(device).eval(), meta


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """VOC all-point interpolated AP: the area under the precision envelope (max precision at any
    recall >= r) as a step function of recall. Inputs (K,) along the ranked detections."""
    mrec = np.concatenate([[0.0], np.asarray(recall, np.float64), [1.0]])
    mpre = np.concatenate([[0.0], np.asarray(precision, np.float64), [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def match_detections(det_boxes: np.ndarray, det_scores: np.ndarray, gt_boxes: np.ndarray,
                     iou: float = 0.5) -> np.ndarray:
    """VOC greedy matching within one image and class: detections in descending score order take
    their highest-IoU ground truth if IoU >= ``iou`` and it is not taken yet. Returns (K,) bool
    true positives in the input order."""
    tp = np.zeros(len(det_boxes), bool)
    if len(det_boxes) == 0 or len(gt_boxes) == 0:
        return tp
    overlaps = box_iou(det_boxes, gt_boxes)
    taken = np.zeros(len(gt_boxes), bool)
    for k in np.argsort(-np.asarray(det_scores), kind="stable"):
        best = int(np.argmax(overlaps[k]))
        if overlaps[k, best] >= iou and not taken[best]:
            taken[best] = tp[k] = True
    return tp


def detection_ap(detections: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]],
                 ground_truth: Iterable[tuple[np.ndarray, np.ndarray]], num_classes: int,
                 iou: float = 0.5) -> dict[int, float]:
    """Per-class AP over images. ``detections`` per image: (boxes (K, 4), scores (K,), labels (K,));
    ``ground_truth`` per image: (boxes (G, 4), labels (G,)). Classes without ground truth are left out."""
    scores: dict[int, list] = {c: [] for c in range(1, num_classes)}
    hits: dict[int, list] = {c: [] for c in range(1, num_classes)}
    n_gt = dict.fromkeys(range(1, num_classes), 0)
    for (d_boxes, d_scores, d_labels), (g_boxes, g_labels) in zip(detections, ground_truth, strict=True):
        d_labels, g_labels = np.asarray(d_labels), np.asarray(g_labels)
        for c in range(1, num_classes):
            d, g = d_labels == c, g_labels == c
            n_gt[c] += int(g.sum())
            if d.any():
                scores[c].append(np.asarray(d_scores)[d])
                hits[c].append(match_detections(np.asarray(d_boxes)[d], np.asarray(d_scores)[d],
                                                np.asarray(g_boxes)[g], iou))
    aps = {}
    for c in range(1, num_classes):
        if n_gt[c] == 0:
            continue
        s = np.concatenate(scores[c]) if scores[c] else np.zeros(0)
        h = np.concatenate(hits[c]) if hits[c] else np.zeros(0, bool)
        order = np.argsort(-s, kind="stable")
        tp = np.cumsum(h[order])
        fp = np.cumsum(~h[order])
        aps[c] = average_precision(tp / n_gt[c], tp / np.maximum(tp + fp, 1)) if len(s) else 0.0
    return aps


@torch.no_grad()
def detect(detector: FasterRCNN, frames: Sequence[np.ndarray], batch_size: int = 8) -> list[dict[str, np.ndarray]]:
    """Run ``detector`` (put in eval mode) on (H, W, 3) uint8 RGB frames; per frame a dict of numpy
    ``boxes`` (K, 4) xyxy pixels, ``scores`` (K,), ``labels`` (K,)."""
    detector.eval()
    device = next(detector.parameters()).device
    out = []
    for i in range(0, len(frames), batch_size):
        images = [torch.from_numpy(np.ascontiguousarray(f)).permute(2, 0, 1).float().div(255).to(device)
                  for f in frames[i:i + batch_size]]
        out.extend({k: v.cpu().numpy() for k, v in d.items()} for d in detector(images))
    return out


def evaluate_map(detector: FasterRCNN, samples: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]],
                 iou: float = 0.5, batch_size: int = 8) -> float:
    """mAP@``iou`` (VOC all-point AP averaged over classes with ground truth) of ``detector`` on
    ``samples`` of (frame (H, W, 3) uint8 RGB, boxes (G, 4) xyxy pixels, labels (G,) in 1..C)."""
    samples = list(samples)
    if not samples:
        raise ValueError("evaluate_map needs at least one sample")
    dets = detect(detector, [s[0] for s in samples], batch_size)
    num_classes = detector.roi_heads.box_predictor.cls_score.out_features
    aps = detection_ap([(d["boxes"], d["scores"], d["labels"]) for d in dets],
                       [(s[1], s[2]) for s in samples], num_classes, iou)
    return float(np.mean(list(aps.values()))) if aps else 0.0
