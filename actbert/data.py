"""The on-disk format of extracted features, and turning clips into model inputs.

One feature file per video (``<video_id>.safetensors``: no pickle, memory-mappable), written
atomically. Arrays (C clips, N regions over the whole video):

- ``clip_start_sec``, ``clip_end_sec``: (C,) float64 clip spans.
- ``action_features``: (C, F_action) pooled 3D-CNN feature of each clip.
- ``action_scores``: (C, K) the action backbone's own class probabilities (Kinetics), optional.
- ``region_features``: (N, F_region) RoI feature of each detected box.
- ``region_boxes_xyxy``: (N, 4) box corners in pixels of the displayed frame.
- ``region_classes``: (N, C_det) the detector's class distribution for each box.
- ``region_scores``: (N,) detection score.
- ``region_clip``: (N,) int64 clip index; ``region_time_sec``: (N,) frame time.
- ``frame_size``: (2,) int64 width and height in pixels.

Metadata (strings): ``video_id``, ``extractors`` (JSON: names and versions of the models used).
Features may be stored as float16 (``dtype="float16"``); they are read back as float32.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

from .atomic import atomic_path
from .embeddings import GLOBAL_REGION_LOCATION

FORMAT_VERSION = "1"
_FLOAT_KEYS = ("action_features", "action_scores", "region_features", "region_classes")


def box_locations(boxes_xyxy: np.ndarray, width: float, height: float) -> np.ndarray:
    """(N, 4) pixel boxes -> (N, 5) locations (x1/W, y1/H, x2/W, y2/H, area/(W*H)), paper 3.2.1."""
    boxes = np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4)
    scale = np.array([width, height, width, height], dtype=np.float32)
    norm = np.clip(boxes / scale, 0.0, 1.0)
    area = (norm[:, 2] - norm[:, 0]).clip(min=0) * (norm[:, 3] - norm[:, 1]).clip(min=0)
    return np.concatenate([norm, area[:, None]], 1)


@dataclass
class VideoFeatures:
    """All features of one video (see the module docstring for shapes)."""

    video_id: str
    clip_start_sec: np.ndarray
    clip_end_sec: np.ndarray
    action_features: np.ndarray
    region_features: np.ndarray
    region_boxes_xyxy: np.ndarray
    region_classes: np.ndarray
    region_scores: np.ndarray
    region_clip: np.ndarray
    region_time_sec: np.ndarray
    frame_size: tuple[int, int]
    action_scores: np.ndarray | None = None
    extractors: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        clips = len(self.clip_start_sec)
        if len(self.clip_end_sec) != clips or len(self.action_features) != clips:
            raise ValueError(f"{self.video_id}: clip arrays disagree on the clip count {clips}")
        regions = len(self.region_features)
        for name in ("region_boxes_xyxy", "region_classes", "region_scores", "region_clip",
                     "region_time_sec"):
            if len(getattr(self, name)) != regions:
                raise ValueError(f"{self.video_id}: {name} has {len(getattr(self, name))} rows, "
                                 f"region_features has {regions}")
        if regions and (self.region_clip.min() < 0 or self.region_clip.max() >= clips):
            raise ValueError(f"{self.video_id}: region_clip out of range 0..{clips - 1}")

    @property
    def num_clips(self) -> int:
        return len(self.clip_start_sec)

    def region_locations(self) -> np.ndarray:
        return box_locations(self.region_boxes_xyxy, *self.frame_size)

    def save(self, path: str | Path, dtype: str = "float32") -> None:
        """Write atomically (temporary file, fsync, rename)."""
        arrays = {
            "clip_start_sec": np.asarray(self.clip_start_sec, np.float64),
            "clip_end_sec": np.asarray(self.clip_end_sec, np.float64),
            "region_boxes_xyxy": np.asarray(self.region_boxes_xyxy, np.float32).reshape(-1, 4),
            "region_scores": np.asarray(self.region_scores, np.float32),
            "region_clip": np.asarray(self.region_clip, np.int64),
            "region_time_sec": np.asarray(self.region_time_sec, np.float64),
            "frame_size": np.asarray(self.frame_size, np.int64),
        }
        for key in _FLOAT_KEYS:
            value = getattr(self, key)
            if value is not None:
                arrays[key] = np.ascontiguousarray(value, dtype=dtype)
        with atomic_path(path) as tmp:
            save_file(arrays, str(tmp), metadata={
                "video_id": self.video_id, "extractors": json.dumps(self.extractors),
                "format_version": FORMAT_VERSION})

    @classmethod
    def load(cls, path: str | Path) -> "VideoFeatures":
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as handle:
            meta = handle.metadata() or {}
        arrays = load_file(str(path))
        for key in _FLOAT_KEYS:
            if key in arrays:
                arrays[key] = arrays[key].astype(np.float32)
        width, height = (int(v) for v in arrays.pop("frame_size"))
        return cls(video_id=meta.get("video_id", Path(path).stem), frame_size=(width, height),
                   extractors=json.loads(meta.get("extractors", "{}")), **arrays)


REGION_TOKEN, SEP_TOKEN = 0, 1  # the visual token ids: [ACT]/[REGION], and [SEP] between clips
NO_ROW = -1                     # provenance of the global token and of [SEP]: no feature-file row


@dataclass(frozen=True)
class ClipInputs:
    """Model inputs for one sample (a group of adjacent clips), unbatched, with their provenance.

    action_features (K, F_a); region_features (L, F_r) with the global token first and, between the
    regions of consecutive clips, a [SEP] slot (zero feature and location); region_locations (L, 5);
    region_positions (L,) = frame index within the group (the regions of one frame share it; the
    global token has 0; a [SEP] takes its clip's last frame); region_segments (L,) = clip index
    within the group; region_tokens (L,) = ``REGION_TOKEN`` or ``SEP_TOKEN``; region_classes
    (L - 1, C_det) targets for the masked object loss (zero rows at [SEP]).

    Provenance: clips (K,) the clip indices in the feature file; region_rows (L,) the feature-file
    row of every region slot (``NO_ROW`` for the global token and [SEP]), from which boxes, frame
    times and detector classes of what the model saw are read (``real_region_rows``).
    """

    action_features: torch.Tensor
    region_features: torch.Tensor
    region_locations: torch.Tensor
    region_positions: torch.Tensor
    region_segments: torch.Tensor
    region_classes: torch.Tensor
    region_tokens: torch.Tensor | None = None
    clips: tuple[int, ...] = ()
    region_rows: np.ndarray | None = None

    def real_region_rows(self) -> np.ndarray:
        """Feature-file rows of the real regions, in slot order."""
        rows = np.zeros(0, np.int64) if self.region_rows is None else self.region_rows
        return rows[rows != NO_ROW]


def select_regions(features: VideoFeatures, clips: list[int], max_regions: int) -> list[np.ndarray]:
    """Per clip, the feature-file rows it contributes: the highest-scoring regions, at most
    ``max_regions // len(clips)`` per clip and ``max_regions`` in all, in file order."""
    per_clip = max(1, max_regions // max(1, len(clips)))
    keep, total = [], 0
    for clip in clips:
        rows = np.flatnonzero(features.region_clip == clip)
        rows = rows[np.argsort(-features.region_scores[rows], kind="stable")][:per_clip]
        rows = np.sort(rows)[:max(0, max_regions - total)]
        total += len(rows)
        keep.append(rows)
    return keep


def clip_inputs(features: VideoFeatures, clips: list[int], max_regions: int = 36) -> ClipInputs:
    """THE clip contract: model inputs for a group of clips of one video (one action slot per clip
    and, spread evenly over the clips, at most ``max_regions`` highest-scoring regions, the global
    token first and a [SEP] between clips), with their provenance. Pretraining, evaluation, index
    embedding, rerank and the attention view all build their inputs here, with ``max_regions`` from
    the model's config (``ActBertConfig.max_regions``)."""
    clips = [int(c) for c in clips]
    per_clip = select_regions(features, clips, max_regions)
    all_rows = np.concatenate(per_clip) if per_clip else np.zeros(0, np.int64)
    frame_order = {t: i for i, t in enumerate(sorted(set(features.region_time_sec[all_rows].tolist())))}
    locations = features.region_locations()
    width_f, width_c = features.region_features.shape[1], features.region_classes.shape[1]
    feats = [torch.from_numpy(features.region_features[all_rows]).float().mean(0)
             if len(all_rows) else torch.zeros(width_f)]
    locs = [torch.tensor(GLOBAL_REGION_LOCATION)]
    classes, positions, segments, tokens, slot_rows = [], [0], [0], [REGION_TOKEN], [NO_ROW]
    for j, rows in enumerate(per_clip):
        for row in rows.tolist():
            feats.append(torch.from_numpy(features.region_features[row]).float())
            locs.append(torch.from_numpy(locations[row]).float())
            classes.append(torch.from_numpy(features.region_classes[row]).float())
            positions.append(frame_order[float(features.region_time_sec[row])] + 1)
            segments.append(j)
            tokens.append(REGION_TOKEN)
            slot_rows.append(row)
        if j < len(per_clip) - 1:  # [SEP] between the regions of consecutive clips
            feats.append(torch.zeros(width_f))
            locs.append(torch.zeros(5))
            classes.append(torch.zeros(width_c))
            positions.append(positions[-1])
            segments.append(j)
            tokens.append(SEP_TOKEN)
            slot_rows.append(NO_ROW)
    return ClipInputs(
        action_features=torch.from_numpy(features.action_features[clips]).float(),
        region_features=torch.stack(feats),
        region_locations=torch.stack(locs),
        region_positions=torch.tensor(positions, dtype=torch.long),
        region_segments=torch.tensor(segments, dtype=torch.long),
        region_classes=torch.stack(classes) if classes else torch.zeros(0, width_c),
        region_tokens=torch.tensor(tokens, dtype=torch.long),
        clips=tuple(clips),
        region_rows=np.asarray(slot_rows, np.int64),
    )


def collate(samples: list[ClipInputs]) -> dict[str, torch.Tensor]:
    """Pad a list of samples into model keyword inputs (video side) plus ``region_classes``."""
    batch = len(samples)
    num_actions = max(s.action_features.shape[0] for s in samples)
    num_regions = max(s.region_features.shape[0] for s in samples)
    first = samples[0]
    out = {
        "action_features": first.action_features.new_zeros(batch, num_actions, first.action_features.shape[1]),
        "action_mask": torch.zeros(batch, num_actions, dtype=torch.long),
        "action_positions": torch.zeros(batch, num_actions, dtype=torch.long),
        "action_segments": torch.zeros(batch, num_actions, dtype=torch.long),
        "region_features": first.region_features.new_zeros(batch, num_regions, first.region_features.shape[1]),
        "region_locations": first.region_locations.new_zeros(batch, num_regions, 5),
        "region_mask": torch.zeros(batch, num_regions, dtype=torch.long),
        "region_positions": torch.zeros(batch, num_regions, dtype=torch.long),
        "region_segments": torch.zeros(batch, num_regions, dtype=torch.long),
        "region_tokens": torch.zeros(batch, num_regions, dtype=torch.long),
        "region_classes": first.region_classes.new_zeros(batch, num_regions - 1, first.region_classes.shape[1]),
    }
    for i, s in enumerate(samples):
        a, r = s.action_features.shape[0], s.region_features.shape[0]
        out["action_features"][i, :a] = s.action_features
        out["action_mask"][i, :a] = 1
        out["action_positions"][i, :a] = torch.arange(a)
        out["action_segments"][i, :a] = torch.arange(a)
        out["region_features"][i, :r] = s.region_features
        out["region_locations"][i, :r] = s.region_locations
        out["region_mask"][i, :r] = 1
        out["region_positions"][i, :r] = s.region_positions
        out["region_segments"][i, :r] = s.region_segments
        if s.region_tokens is not None:
            out["region_tokens"][i, :r] = s.region_tokens
        out["region_classes"][i, : r - 1] = s.region_classes
    return out


def clip_batch(features: VideoFeatures, clip_indices: list[int],
               max_regions: int) -> tuple[dict[str, torch.Tensor], list[ClipInputs]]:
    """One input per clip (the unit of the index, rerank, evaluation and the attention view):
    collated video-side model inputs for ``clip_indices`` (batch = len(clip_indices)) and each
    clip's ``ClipInputs`` with its provenance. ``max_regions``: the model's
    ``config.max_regions``."""
    samples = [clip_inputs(features, [int(c)], max_regions) for c in clip_indices]
    batch = collate(samples)
    batch.pop("region_classes")
    return batch, samples


def drop_regions(video: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The paper's ablation without region cues: collated video inputs keep only the (zeroed)
    global region token (``region_classes``, when present, becomes empty)."""
    video = {k: (v[:, :1] if k.startswith("region") else v) for k, v in video.items()}
    video["region_features"] = torch.zeros_like(video["region_features"])
    if "region_classes" in video:
        video["region_classes"] = video["region_classes"][:, :0]
    return video


# ---- removing elements: the one definition attribution, search and the attention view share ----

ELEMENT_KINDS = ("word", "region", "action", "clip")


@dataclass(frozen=True)
class Element:
    """One removable element of a (text, clip inputs) pair. ``index``: the text position of a
    word, the region slot of a real region (>= 1; never the global token or a [SEP]), the action
    slot, or the clip's place within the group (0..K-1)."""

    kind: str
    index: int


def pair_elements(text_ids: torch.Tensor, inputs: ClipInputs,
                  special_ids: tuple[int, ...]) -> list[Element]:
    """Every element of a pair, in stream order: the words of ``text_ids`` (L,) that are not
    special tokens, the real region slots, the action slots, and (for a group of several clips)
    each clip."""
    out = [Element("word", i) for i, t in enumerate(text_ids.tolist()) if t not in special_ids]
    tokens = inputs.region_tokens
    out += [Element("region", r) for r in range(1, inputs.region_features.shape[0])
            if tokens is None or int(tokens[r]) == REGION_TOKEN]
    out += [Element("action", a) for a in range(inputs.action_features.shape[0])]
    if len(inputs.clips) > 1:
        out += [Element("clip", j) for j in range(len(inputs.clips))]
    return out


def mask_words(text_ids: torch.Tensor, positions, mask_id: int) -> torch.Tensor:
    """A copy of ``text_ids`` (..., L) with the tokens at ``positions`` replaced by ``mask_id``
    ([MASK]: the model's own word for "a word is missing here", as in pretraining)."""
    out = text_ids.clone()
    out[..., list(positions)] = mask_id
    return out


def _keep_slots(inputs: ClipInputs, keep: np.ndarray, **changes) -> ClipInputs:
    """``inputs`` with only the region slots ``keep`` (sorted, slot 0 included), the global
    token's feature recomputed as the mean of the real regions left (zero when none: the
    feature the clip contract gives a clip without regions)."""
    index = torch.as_tensor(keep, dtype=torch.long)
    features = inputs.region_features[index].clone()
    tokens = None if inputs.region_tokens is None else inputs.region_tokens[index]
    real = torch.ones(len(keep), dtype=torch.bool) if tokens is None else tokens == REGION_TOKEN
    real[0] = False
    features[0] = features[real].mean(0) if real.any() else torch.zeros_like(features[0])
    return ClipInputs(
        action_features=changes.get("action_features", inputs.action_features),
        region_features=features,
        region_locations=inputs.region_locations[index],
        region_positions=changes.get("region_positions", inputs.region_positions[index]),
        region_segments=changes.get("region_segments", inputs.region_segments[index]),
        region_classes=inputs.region_classes[index[1:] - 1],
        region_tokens=tokens,
        clips=changes.get("clips", inputs.clips),
        region_rows=None if inputs.region_rows is None else inputs.region_rows[keep])


def remove_regions(inputs: ClipInputs, slots) -> ClipInputs:
    """The region slots ``slots`` removed (masked out: collating pads them with mask 0, so the
    model sees nothing of them), also from the global token, whose feature is the mean of the
    regions the clip keeps. Other slots keep their positions and segments. Removing every real
    region gives ``drop_regions``' input: the global token alone, zero feature."""
    gone = {int(s) for s in slots}
    if 0 in gone:
        raise ValueError("slot 0 is the global region token, not a region: it cannot be removed")
    keep = np.array([r for r in range(inputs.region_features.shape[0]) if r not in gone], np.int64)
    return _keep_slots(inputs, keep)


def remove_all_regions(inputs: ClipInputs) -> ClipInputs:
    """Every real region slot removed (``remove_regions``; [SEP] slots between clips stay): what a
    model pretrained without regions is fed (``checkpoint.uses_regions``)."""
    tokens = inputs.region_tokens
    return remove_regions(inputs, [r for r in range(1, inputs.region_features.shape[0])
                                   if tokens is None or int(tokens[r]) == REGION_TOKEN])


def remove_actions(inputs: ClipInputs, slots) -> ClipInputs:
    """The action slots ``slots`` emptied: an [ACT] slot with a zero feature, as the index's
    placeholder video has (the slot stays, so every attention over actions keeps a real key)."""
    features = inputs.action_features.clone()
    features[list(slots)] = 0.0
    return ClipInputs(**{**inputs.__dict__, "action_features": features})


def remove_clips(inputs: ClipInputs, clips) -> ClipInputs:
    """The clips at places ``clips`` of a group removed: their action slots, region slots and
    one [SEP] each, with segments and frame positions renumbered as ``clip_inputs`` numbers the
    clips left (the same inputs, when the region limit does not bind)."""
    gone = {int(j) for j in clips}
    count = inputs.action_features.shape[0]
    if not gone or len(gone) >= count:
        raise ValueError(f"remove some but not all of the group's {count} clips, got {sorted(gone)}")
    left = [j for j in range(count) if j not in gone]
    segments = inputs.region_segments
    tokens = inputs.region_tokens if inputs.region_tokens is not None else \
        torch.full_like(segments, REGION_TOKEN)
    keep = [0]
    for r in range(1, len(segments)):
        if int(segments[r]) in gone:
            continue
        if int(tokens[r]) == SEP_TOKEN and int(segments[r]) == left[-1]:
            continue  # the last clip left has no [SEP] after it
        keep.append(r)
    keep = np.array(keep, np.int64)
    new_segment = {old: new for new, old in enumerate(left)}
    kept_tokens = tokens[keep]
    positions = inputs.region_positions[keep].clone()
    real = (kept_tokens == REGION_TOKEN) & (torch.arange(len(keep)) > 0)
    frames = torch.unique(positions[real])  # sorted: frame order within the group
    positions[real] = torch.searchsorted(frames, positions[real]) + 1
    for r in range(1, len(keep)):
        if int(kept_tokens[r]) == SEP_TOKEN:
            positions[r] = positions[r - 1]
    return _keep_slots(
        inputs, keep,
        action_features=inputs.action_features[left],
        region_positions=positions,
        region_segments=torch.tensor([0] + [new_segment[int(s)] for s in segments[keep[1:]]],
                                     dtype=torch.long),
        clips=tuple(inputs.clips[j] for j in left) if inputs.clips else ())


def remove_elements(text_ids: torch.Tensor, inputs: ClipInputs, elements,
                    mask_id: int) -> tuple[torch.Tensor, ClipInputs]:
    """The pair with every element of ``elements`` removed at once (a word -> [MASK], a region
    slot masked, an action slot emptied, a clip of a group taken out; clips last, as their
    removal renumbers the slots that the other elements name)."""
    by_kind = {kind: [e.index for e in elements if e.kind == kind] for kind in ELEMENT_KINDS}
    unknown = {e.kind for e in elements} - set(ELEMENT_KINDS)
    if unknown:
        raise ValueError(f"unknown element kinds {sorted(unknown)}; kinds are {ELEMENT_KINDS}")
    if by_kind["word"]:
        text_ids = mask_words(text_ids, by_kind["word"], mask_id)
    if by_kind["region"]:
        inputs = remove_regions(inputs, by_kind["region"])
    if by_kind["action"]:
        inputs = remove_actions(inputs, by_kind["action"])
    if by_kind["clip"]:
        inputs = remove_clips(inputs, by_kind["clip"])
    return text_ids, inputs
