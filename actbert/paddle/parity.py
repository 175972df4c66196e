"""Zero-shot MSR-VTT 1k-A text-to-video retrieval with the released checkpoint, as PaddleVideo runs it
(``paddlevideo/loader/dataset/msrvtt.py`` + ``paddlevideo/metrics/msrvtt_metric.py``).

Features: PaddleVideo's ``msrvtt_test.lmdb``. Key = the video id of the captions file
(``video9770``); value = a pickled dict with ``features`` (N, 2048) region features, ``boxes``
(N, 4) pixel corners x1, y1, x2, y2, ``image_h``, ``image_w``, ``action_features`` (<= 5, 2048)
(and ``video_id``). Values are read with a restricted unpickler that can only rebuild numpy arrays,
numpy scalars and plain containers, within a memory budget proportional to the record's length
(``actbert.safe_pickle``); the array fields must be arrays (a nested list could expand).

Inputs per video (fixed sizes, as PaddleVideo pads them):
- regions (36 slots): slot 0 = the mean of ALL the video's region features (computed before the
  cut), location (0, 0, 1, 1, 1); then the first 35 boxes, located as (x1/W, y1/H, x2/W, y2/H,
  (x2-x1)(y2-y1)/(W H)) without clipping; mask 1 for the filled slots.
- actions (5 slots): the features, zero-padded; mask all ones (PaddleVideo's mask, padding included).
- text (36 slots): [CLS] wordpieces [SEP] (at most 34 wordpieces) padded with [PAD] to 36: the
  padded length matters, because the tangled blocks resample action contexts to the text length.

Each caption is scored against every video of the gallery (the captions file's videos, in order):
score = softmax(match logits)[:, 0]. Ranks and figures: ``actbert.evaluation.metrics`` (0-based
ranks, R@K = rank < K, median rank floor(median + 1), mean rank mean + 1). The paper's figures for
this checkpoint: R@1 8.6, R@5 31.2, R@10 45.5, median rank 13, mean rank 28.5 (PaddleVideo model
zoo).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..benchmarks.msrvtt import MsrvttCaption
from ..evaluation.metrics import RetrievalMetrics, retrieval_metrics
from ..safe_pickle import load_record

log = logging.getLogger(__name__)

MAX_REGIONS = 36  # including the global token
MAX_ACTIONS = 5
TEXT_LENGTH = 36


class FeatureStoreError(ValueError):
    """The LMDB feature store is missing, unreadable or not in PaddleVideo's format."""


@dataclass(frozen=True)
class PaddleVideoFeatures:
    """One LMDB record: region ``features`` (N, F_r), ``boxes`` (N, 4) pixels xyxy, frame size in
    pixels, ``action_features`` (A, F_a)."""

    video_id: str
    features: np.ndarray
    boxes: np.ndarray
    image_w: float
    image_h: float
    action_features: np.ndarray


def decode_record(value: bytes, key: str) -> PaddleVideoFeatures:
    """Unpickle (restricted) and check one LMDB value."""
    item = load_record(value, key, FeatureStoreError)  # a dict whose array fields are arrays
    features = np.asarray(item["features"], dtype=np.float32)
    boxes = np.asarray(item["boxes"], dtype=np.float32).reshape(-1, 4)
    actions = np.asarray(item["action_features"], dtype=np.float32)
    if features.ndim != 2 or len(features) != len(boxes):
        raise FeatureStoreError(f"{key}: features {features.shape} and boxes {boxes.shape} disagree")
    if actions.ndim != 2 or not 1 <= len(actions) <= MAX_ACTIONS:
        raise FeatureStoreError(f"{key}: action_features must be (1..{MAX_ACTIONS}, F), got {actions.shape}")
    width, height = float(item["image_w"]), float(item["image_h"])
    if width <= 0 or height <= 0:
        raise FeatureStoreError(f"{key}: bad frame size {width} x {height}")
    video_id = item.get("video_id", key)
    video_id = video_id.decode() if isinstance(video_id, bytes) else str(video_id)
    return PaddleVideoFeatures(video_id, features, boxes, width, height, actions)


class PaddleFeatureStore:
    """Read-only access to PaddleVideo's LMDB of per-video features."""

    def __init__(self, path: str | Path) -> None:
        import lmdb

        if not Path(path).exists():
            raise FeatureStoreError(f"{path}: no such LMDB (a folder with data.mdb)")
        try:
            self._env = lmdb.open(str(path), readonly=True, lock=False, readahead=False,
                                  subdir=Path(path).is_dir())
        except lmdb.Error as exc:
            raise FeatureStoreError(f"{path}: cannot open as LMDB ({exc})") from exc
        self.path = Path(path)

    def __enter__(self) -> "PaddleFeatureStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._env.close()

    def __len__(self) -> int:
        return int(self._env.stat()["entries"])

    def sample_keys(self, count: int = 3) -> list[str]:
        with self._env.begin() as txn:
            keys = []
            for key, _ in txn.cursor():
                keys.append(key.decode(errors="replace"))
                if len(keys) >= count:
                    break
        return keys

    def get(self, video_id: str) -> PaddleVideoFeatures:
        with self._env.begin() as txn:
            value = txn.get(str(video_id).encode())
        if value is None:
            raise FeatureStoreError(f"{self.path}: no record for video {video_id!r} (keys look like "
                                    f"{self.sample_keys()})")
        return decode_record(value, str(video_id))


def region_locations(boxes: np.ndarray, image_w: float, image_h: float) -> np.ndarray:
    """(N, 4) pixel xyxy -> (N, 5) (x1/W, y1/H, x2/W, y2/H, area/(W H)), PaddleVideo's formula (no
    clipping: equal to ``actbert.data.box_locations`` for boxes inside the frame)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    area = (boxes[:, 3] - boxes[:, 1]) * (boxes[:, 2] - boxes[:, 0]) / (image_w * image_h)
    scale = np.array([image_w, image_h, image_w, image_h])
    return np.concatenate([boxes / scale, area[:, None]], 1).astype(np.float32)


def video_inputs(item: PaddleVideoFeatures) -> dict[str, np.ndarray]:
    """Fixed-size model inputs of one video (see the module docstring): region_features (36, F_r),
    region_locations (36, 5), region_mask (36,), action_features (5, F_a), action_mask (5,)."""
    num_boxes, width = item.features.shape
    # The global token averages every region, also those cut below (PaddleVideo). A video without
    # regions keeps a zero global feature (PaddleVideo would divide by zero).
    mean = item.features.astype(np.float64).mean(0) if num_boxes else np.zeros(width)
    kept = min(num_boxes, MAX_REGIONS - 1)
    features = np.zeros((MAX_REGIONS, width), np.float32)
    locations = np.zeros((MAX_REGIONS, 5), np.float32)
    mask = np.zeros(MAX_REGIONS, np.int64)
    features[0], locations[0] = mean, (0, 0, 1, 1, 1)
    features[1:kept + 1] = item.features[:kept]
    locations[1:kept + 1] = region_locations(item.boxes[:kept], item.image_w, item.image_h)
    mask[:kept + 1] = 1
    actions = np.zeros((MAX_ACTIONS, item.action_features.shape[1]), np.float32)
    actions[:len(item.action_features)] = item.action_features
    return {"region_features": features, "region_locations": locations, "region_mask": mask,
            "action_features": actions, "action_mask": np.ones(MAX_ACTIONS, np.int64)}


def text_inputs(tokenizer, caption: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, 36) ids and mask: [CLS] wordpieces [SEP] padded with [PAD] (id 0) to 36."""
    enc = tokenizer(caption)
    length = enc.ids.shape[1]
    if length > TEXT_LENGTH:
        raise ValueError(f"tokenizer produced {length} tokens; build it with max_length={TEXT_LENGTH}")
    pad = (0, TEXT_LENGTH - length)
    return torch.nn.functional.pad(enc.ids, pad), torch.nn.functional.pad(enc.mask, pad)


@torch.no_grad()
def match_scores(model, text_ids: torch.Tensor, text_mask: torch.Tensor,
                 videos: dict[str, torch.Tensor]) -> torch.Tensor:
    """softmax(match logits)[:, 0] of one caption (1, L) against N videos (N, ...) -> (N,).
    The matching head alone (the model's own ``match_input``), without the other heads."""
    return model(text_ids=text_ids, text_mask=text_mask, token_type_ids=torch.zeros_like(text_ids),
                 heads=("match",), **videos).match_score


@dataclass(frozen=True)
class MsrvttResult:
    """Figures, the (Q, V) score matrix, the true video index of each query, and timing."""

    metrics: RetrievalMetrics
    scores: np.ndarray
    targets: np.ndarray
    video_ids: tuple[str, ...]
    seconds: float


def evaluate_msrvtt(model, tokenizer, captions: tuple[MsrvttCaption, ...], store: PaddleFeatureStore,
                    batch_size: int = 128, device: str | torch.device = "cpu",
                    progress: bool = True) -> MsrvttResult:
    """Score every caption against every video of ``captions`` (the gallery is the captions' videos
    in file order, duplicates once) and compute the retrieval figures."""
    from tqdm import tqdm

    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    start = time.perf_counter()
    video_ids = tuple(dict.fromkeys(c.video_id for c in captions))
    index = {v: i for i, v in enumerate(video_ids)}
    rows = [video_inputs(store.get(v)) for v in tqdm(video_ids, desc="features", disable=not progress)]
    cfg = model.config
    if rows[0]["region_features"].shape[1] != cfg.region.feature_size or \
            rows[0]["action_features"].shape[1] != cfg.action.feature_size:
        raise FeatureStoreError(
            f"features are {rows[0]['region_features'].shape[1]} (region) and "
            f"{rows[0]['action_features'].shape[1]} (action) wide; the model expects "
            f"{cfg.region.feature_size} and {cfg.action.feature_size}")
    gallery = {k: torch.from_numpy(np.stack([r[k] for r in rows])) for k in rows[0]}
    model = model.to(device).eval()
    scores = np.zeros((len(captions), len(video_ids)), np.float32)
    for q, caption in enumerate(tqdm(captions, desc="captions", disable=not progress)):
        ids, mask = (t.to(device) for t in text_inputs(tokenizer, caption.sentence))
        for lo in range(0, len(video_ids), batch_size):
            batch = {k: v[lo:lo + batch_size].to(device) for k, v in gallery.items()}
            scores[q, lo:lo + batch_size] = match_scores(model, ids, mask, batch).cpu().numpy()
    targets = np.array([index[c.video_id] for c in captions], dtype=np.int64)
    return MsrvttResult(retrieval_metrics(scores, targets), scores, targets, video_ids,
                        time.perf_counter() - start)


def load_checkpoint(path: str | Path, heads: dict[str, int] | None = None):
    """A ``.pdparams`` file (converted on the fly) or a ``save_pretrained`` directory."""
    from ..model import ActBertForPretraining

    path = Path(path)
    if path.is_dir():
        return ActBertForPretraining.from_pretrained(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file or directory")
    return ActBertForPretraining.from_paddle(path, heads=heads or {})
