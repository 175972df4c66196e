"""What the clip inspector and the attention explorer show, computed from a library.

Every file read here goes through ``Library.resolve_inside`` (videos) or ``Library.file`` (feature
files): a catalog row whose video or feature path points outside the library's folders raises
``LibraryError`` and nothing is read.

- ``clip_view``: a clip's catalog row and its regions (boxes in pixels of the displayed frame,
  detector class names and scores, the 1 FPS frame each box belongs to).
- ``clip_frames`` / ``keyframe``: decoded RGB frames at the clip's region times.
- ``action_head_verbs``: the ActBERT action head's verb distribution for clips (video side plus the
  ``[CLS] [SEP]`` text, softmax of ``action_logits`` at the clip's action slot).
- ``video_timeline``: predicted actions, the backbone's classes and true steps across a video.
- ``attention_sample``: one forward pass with every attention map, plus labels for every token.
- ``example_queries``: queries to offer in the search box.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from actbert.data import VideoFeatures, clip_batch
from actbert.model import ActBertForPretraining
from actbert.tangled import AttentionMap
from indexer.errors import LibraryError, QueryError
from indexer.features.sampling import sample_times
from indexer.features.video import read_frames_at
from indexer.library.catalog import Clip, parse_pairs
from indexer.library.feature_cache import load_features
from indexer.library.store import Library

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClipView:
    """One clip as the inspector shows it: the catalog's ``Clip`` and its regions.

    frame_times_sec (F,): the 1 FPS frame times of the clip (the region times, or ``sample_times``
    at 1 FPS when the clip has no regions). Regions (N of them, sorted by frame then score):
    boxes_xyxy (N, 4) pixels of the displayed frame, region_labels (N,) detector class names
    (argmax of the class distribution, background excluded), region_scores (N,), region_frame (N,)
    index into ``frame_times_sec``; frame_size (width, height); region_slots (N,) each region's slot
    in the region index (its rank among the clip's regions in feature-file order,
    ``indexer.index.region_index``).
    """

    clip: Clip
    frame_times_sec: np.ndarray
    boxes_xyxy: np.ndarray
    region_labels: list[str]
    region_scores: np.ndarray
    region_frame: np.ndarray
    frame_size: tuple[int, int]
    region_slots: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


@dataclass(frozen=True)
class Segment:
    """One bar of the video timeline: ``track`` is "ActBERT verbs", "verb classifier",
    "action backbone" or "true steps"; ``clip_id`` is None for true steps, whose ``label`` is the
    step's verb and ``detail`` its description."""

    track: str
    start_sec: float
    end_sec: float
    label: str
    prob: float | None
    clip_id: int | None
    detail: str = ""


MAX_CLIP_ID = 2**63 - 1  # SQLite INTEGER and FAISS int64 labels


def parse_clip_id(text: object) -> int:
    """A clip id from user input (a URL parameter): an integer in [0, 2**63 - 1], else QueryError."""
    value = str(text).strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 19 or int(value) > MAX_CLIP_ID:
        raise QueryError(f"clip must be a catalog clip id (a whole number from 0 to {MAX_CLIP_ID}), "
                         f"got {value[:60]!r}")
    return int(value)


def region_class_names(library: Library) -> list[str]:
    """The detector's class names (index 0 = background) recorded in the library manifest."""
    return library.manifest.region_classes


def verb_names(library: Library, count: int, model_verbs: list[str] | None = None) -> list[str]:
    """The action head's verb vocabulary: the model's own (``config.extra["verbs"]``, recorded at
    pretraining), else the manifest's ("verbs"), else "verb k" placeholders."""
    names = list(model_verbs or library.manifest.verbs)
    if len(names) != count:
        if names:
            log.warning("the verb vocabulary lists %d verbs, the action head has %d", len(names), count)
        names = [f"verb {k}" for k in range(count)]
    return names


def clip_view(library: Library, clip_id: int) -> ClipView:
    """The clip ``clip_id`` with its regions; ``LibraryError`` when the catalog has no such clip."""
    clip = library.catalog.clip(clip_id)
    if clip is None:
        raise LibraryError(f"no clip {clip_id} in this library")
    features = load_features(library, clip.feature_path)
    index = clip.clip_index
    if not 0 <= index < features.num_clips:
        raise LibraryError(f"clip {clip_id}: feature file has {features.num_clips} clips, "
                           f"catalog says index {index}; re-ingest {clip.video_id}")
    names = region_class_names(library)
    picked = np.flatnonzero(features.region_clip == index)
    times = features.region_time_sec[picked]
    order = np.lexsort((-features.region_scores[picked], times))
    picked = picked[order]
    frame_times = np.unique(features.region_time_sec[picked])
    if not len(frame_times):
        frame_times = sample_times(clip.start_sec, clip.end_sec, 1.0)
    return ClipView(
        clip=clip, frame_times_sec=np.asarray(frame_times, np.float64),
        boxes_xyxy=features.region_boxes_xyxy[picked].reshape(-1, 4),
        region_labels=[_class_name(dist, names) for dist in features.region_classes[picked]],
        region_scores=features.region_scores[picked],
        region_frame=np.searchsorted(frame_times, features.region_time_sec[picked]),
        frame_size=tuple(int(v) for v in features.frame_size), region_slots=order.astype(np.int64))


def _class_name(distribution: np.ndarray, names: list[str]) -> str:
    """The detector class of a region: argmax of its distribution, background excluded."""
    k = int(np.argmax(distribution[1:]) + 1) if distribution.shape[0] > 1 else 0
    return names[k] if k < len(names) else f"class {k}"


def video_file(library: Library, video_path: str) -> Path:
    """The video file, if it lies inside the library's folders (else LibraryError)."""
    return library.resolve_inside(video_path)


def clip_frames(library: Library, view: ClipView, height: int | None = None) -> np.ndarray:
    """(F, H, W, 3) uint8 RGB frames at ``view.frame_times_sec``; ``height`` rescales (boxes must
    then be scaled by height / frame height)."""
    size = None
    if height:
        width = max(2, round(view.frame_size[0] * height / view.frame_size[1]))
        size = (height, width)
    return read_frames_at(video_file(library, view.clip.video_path), view.frame_times_sec, size)


def clip_frame(library: Library, view: ClipView, k: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB frame ``k`` of ``view.frame_times_sec``."""
    return read_frames_at(video_file(library, view.clip.video_path), view.frame_times_sec[k:k + 1])[0]


def keyframe_index(view: ClipView) -> int:
    """The frame with the most confident boxes (sum of scores), the middle one when none."""
    if not len(view.region_scores):
        return len(view.frame_times_sec) // 2
    mass = np.bincount(view.region_frame, weights=view.region_scores,
                       minlength=len(view.frame_times_sec))
    return int(np.argmax(mass))


def example_queries(library: Library, n: int = 6) -> list[str]:
    """Queries worth trying: the most frequent ground-truth step descriptions, else the most
    frequent narration lines (lower-cased), longest-first on ties."""
    texts = [t.strip().lower() for t in library.catalog.step_descriptions()]
    if not texts:
        texts = [" ".join(t.lower().split()[:8]) for t in library.catalog.narrations()]
    counts = Counter(t for t in texts if len(t.split()) >= 2)
    return [t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], -len(kv[0]), kv[0]))[:n]]


def video_inputs(features: VideoFeatures, clip_indices: list[int],
                 max_regions: int) -> dict[str, torch.Tensor]:
    """Model video-side inputs, one sample per clip (batch = len(clip_indices)), by the clip
    contract with the model's region limit."""
    return clip_batch(features, clip_indices, max_regions)[0]


def _placeholder_text(batch: int, cls_id: int, sep_id: int) -> dict[str, torch.Tensor]:
    ids = torch.tensor([[cls_id, sep_id]]).expand(batch, 2)
    return {"text_ids": ids, "text_mask": torch.ones_like(ids)}


@torch.no_grad()
def action_head_verbs(model: ActBertForPretraining, features: VideoFeatures, clip_indices: list[int],
                      names: list[str], top: int = 5, cls_id: int = 101,
                      sep_id: int = 102) -> list[list[tuple[str, float]]]:
    """The action head's top ``top`` verbs for each clip, with softmax probabilities.

    Each clip is encoded alone (one action slot, slot 0) with the text side ``[CLS] [SEP]``, as
    the index encodes it; ``names`` is the verb vocabulary in the head's order."""
    out_all: list[list[tuple[str, float]]] = []
    for start in range(0, len(clip_indices), 64):
        chunk = clip_indices[start:start + 64]
        batch = video_inputs(features, chunk, model.config.max_regions)
        out = model(**_placeholder_text(len(chunk), cls_id, sep_id), **batch)
        probs = torch.softmax(out.action_logits[:, 0].float(), -1)
        values, idx = probs.topk(min(top, probs.shape[-1]), -1)
        out_all += [[(names[j], round(float(p), 4)) for p, j in zip(v.tolist(), i.tolist())]
                    for v, i in zip(values, idx)]
    return out_all


def video_timeline(library: Library, video_id: str,
                   head_verbs: list[list[tuple[str, float]]] | None = None) -> list[Segment]:
    """Segments across the whole video: ``head_verbs`` (top-1 of the ActBERT action head per clip,
    in clip order, when given), the verb classifier's and the backbone's top class per clip,
    and the true steps where the corpus has them."""
    clips = library.catalog.clips_of(video_id)
    segments: list[Segment] = []
    for i, clip in enumerate(clips):
        tracks = [("verb classifier", parse_pairs(clip["predicted_verbs"])),
                  ("action backbone", parse_pairs(clip["action_classes"]))]
        if head_verbs is not None and i < len(head_verbs):
            tracks.insert(0, ("ActBERT verbs", head_verbs[i]))
        for track, ranked in tracks:
            if ranked:
                segments.append(Segment(track, float(clip["start_sec"]), float(clip["end_sec"]),
                                        ranked[0][0], ranked[0][1], int(clip["id"])))
    segments += [Segment("true steps", float(s["start_sec"]), float(s["end_sec"]),
                         s["verb"] or s["description"] or "step", None, None, s["description"] or "")
                 for s in library.catalog.steps_of(video_id)]
    return segments


# ---- attention ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AttentionSample:
    """Every attention map of one (query, clip) forward pass and what each position shows.

    tokens (L_text,) WordPieces; action_labels (L_action,) e.g. "12.0-18.0 s"; region_rows
    (L_region - 1,) feature-file rows of region slots 1.. (slot 0 = the global token), the
    provenance the clip contract recorded (``ClipInputs.region_rows``);
    region_labels (L_region,); kv_fusion: "stack" or "paddle" (paddle has no injected maps);
    match_score: the model's matching score for this pair; head_probability: its matching head's
    own probability (the same number unless the model's ``match_alignment_weight`` w > 0: then
    the score is sigmoid(head margin + w * alignment_cosine), the cosine of the pair's text-only
    and video-only embeddings, which these maps do not show)."""

    maps: tuple[AttentionMap, ...]
    tokens: list[str]
    action_labels: list[str]
    region_rows: np.ndarray
    region_labels: list[str]
    kv_fusion: str
    match_score: float
    head_probability: float
    alignment_weight: float = 0.0
    alignment_cosine: float | None = None

    def labels(self, stream: str) -> list[str]:
        return {"text": self.tokens, "action": self.action_labels,
                "region": self.region_labels}[stream]

    def score_text(self) -> str:
        """The pair's score in words, with its two parts when the model adds the cosine."""
        if self.alignment_cosine is None:
            return f"matching-head probability {self.match_score:.3f}"
        return (f"matching score {self.match_score:.3f} = sigmoid(head margin + "
                f"{self.alignment_weight:g} × alignment cosine): the head alone "
                f"{self.head_probability:.3f} (what these maps feed), the cosine of the text-only "
                f"and video-only embeddings {self.alignment_cosine:.3f}")


@torch.no_grad()
def attention_sample(model: ActBertForPretraining, tokenizer, features: VideoFeatures,
                     clip_index: int, query: str, class_names: list[str]) -> AttentionSample:
    """Run ``query`` against clip ``clip_index`` of ``features`` with ``output_attentions``; the
    regions are those the clip contract gave the model (its own ``config.max_regions``)."""
    if not query.strip():
        raise QueryError("empty query: type the words to attend with")
    enc = tokenizer(query)
    batch, (inputs,) = clip_batch(features, [clip_index], model.config.max_regions)
    out = model(text_ids=enc.ids, text_mask=enc.mask, output_attentions=True, **batch)
    rows = inputs.real_region_rows()
    region_labels = ["global"]
    for n, row in enumerate(rows, start=1):
        name = _class_name(features.region_classes[row], class_names)
        region_labels.append(f"r{n} {name} @{features.region_time_sec[row]:.0f}s")
    start, end = features.clip_start_sec[clip_index], features.clip_end_sec[clip_index]
    return AttentionSample(
        maps=tuple(out.attentions), tokens=list(enc.tokens[0]),
        action_labels=[f"{start:.1f}-{end:.1f} s"], region_rows=rows, region_labels=region_labels,
        kv_fusion=model.config.tangled.kv_fusion, match_score=float(out.match_score[0]),
        head_probability=float(model.match_probability(out.match_logits)[0]),
        alignment_weight=model.config.match_alignment_weight,
        alignment_cosine=None if out.alignment_cosine is None else float(out.alignment_cosine[0]))
