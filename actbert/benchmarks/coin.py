"""COIN (Tang et al. 2019): the paper's action segmentation benchmark.

- ``COIN.json`` (``{"database": {video_id: {"annotation": [{"segment": [start, end], "id",
  "label"}], "class", "recipe_type", "subset", "duration", "video_url"}}}``).

As a corpus (``evaluate --dataset coin``): subset ``testing`` -> ``test``, ``training`` ->
``train``; steps = the segments, labelled (and described) by their step label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .annotations import BenchmarkFormatError, BenchmarkVideo, ordered_segment, read_json_database

TASKS = ("segmentation",)  # the paper's task on COIN
SUBSETS = {"training": "train", "testing": "test"}


@dataclass(frozen=True)
class CoinSegment:
    """One annotated step: ``step_id`` is COIN's global step id (1..778), ``label`` its text."""

    step_id: int
    start_sec: float
    end_sec: float
    label: str


@dataclass(frozen=True)
class CoinVideo:
    video_id: str
    task: str
    recipe_type: int
    subset: str
    duration_sec: float
    url: str
    segments: tuple[CoinSegment, ...]

    def frame_labels(self, fps: float, num_frames: int | None = None, background: int = 0) -> np.ndarray:
        """(T,) int64 per-frame step ids for frames sampled at ``fps`` (frame i at time i / fps);
        ``background`` where no segment covers the frame (a later segment overrides an earlier one).
        T defaults to ``ceil(duration * fps)``."""
        if fps <= 0:
            raise ValueError("fps must be positive")
        if num_frames is None:
            num_frames = int(math.ceil(self.duration_sec * fps))
        times = np.arange(num_frames) / fps
        labels = np.full(num_frames, background, dtype=np.int64)
        for seg in self.segments:
            labels[(times >= seg.start_sec) & (times <= seg.end_sec)] = seg.step_id
        return labels


def load_coin(path: str | Path, subset: str | None = None) -> dict[str, CoinVideo]:
    """``COIN.json``: {video_id: CoinVideo}; ``subset`` ("training"/"testing") filters."""
    videos = {}
    for video_id, entry in read_json_database(path).items():
        if subset is not None and entry.get("subset") != subset:
            continue
        try:
            segments = tuple(CoinSegment(int(a["id"]), *ordered_segment(path, video_id, a), str(a["label"]))
                             for a in entry["annotation"])
            videos[video_id] = CoinVideo(
                video_id=video_id, task=str(entry["class"]), recipe_type=int(entry["recipe_type"]),
                subset=str(entry["subset"]), duration_sec=float(entry["duration"]),
                url=str(entry.get("video_url", "")), segments=segments)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, BenchmarkFormatError):
                raise
            raise BenchmarkFormatError(f"{path}: video {video_id}: missing or bad field ({exc})") from exc
    return videos


def corpus_videos(annotations: Path) -> list[BenchmarkVideo]:
    """The training and testing videos, their segments as steps labelled by their step label."""
    return [BenchmarkVideo(v.video_id, SUBSETS[v.subset], v.task,
                           tuple((s.start_sec, s.end_sec, s.label, s.label) for s in v.segments))
            for v in load_coin(annotations).values() if v.subset in SUBSETS]
