"""Loaders for the annotation files of the paper's benchmarks, in their published formats.

- YouCook2: the official annotations JSON (``{"database": {video_id: {"duration", "subset",
  "recipe_type", "annotations": [{"segment": [start, end], "id", "sentence"}], "video_url"}}}``)
  and the retrieval validation clips CSV of MIL-NCE/HowTo100M (``end,start,task,text,video_id``).
- MSR-VTT 1k-A: ``MSRVTT_JSFUSION_test.csv`` (``key,vid_key,video_id,sentence``), or the two-column
  ``video_id,sentence`` file without a header that PaddleVideo's loader reads.
- CrossTask: ``tasks_primary.txt`` (blocks of five lines: task id, name, URL, number of steps,
  comma-separated steps; a blank line between blocks) and ``annotations/<task>_<video>.csv``
  (lines ``step,start,end`` with 1-based steps, seconds).
- COIN: ``COIN.json`` (``{"database": {video_id: {"annotation": [{"segment": [start, end], "id",
  "label"}], "class", "recipe_type", "subset", "duration", "video_url"}}}``).

All times are seconds. Records are small frozen dataclasses; collections keep file order.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


class BenchmarkFormatError(ValueError):
    """An annotation file does not have its benchmark's format."""


def _read_json_database(path: str | Path) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BenchmarkFormatError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("database"), dict):
        raise BenchmarkFormatError(f"{path}: expected an object with a 'database' object")
    return data["database"]


def _segment(path, video_id: str, item: dict) -> tuple[float, float]:
    try:
        start, end = (float(v) for v in item["segment"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BenchmarkFormatError(f"{path}: video {video_id}: bad segment {item!r}") from exc
    if end < start:
        raise BenchmarkFormatError(f"{path}: video {video_id}: segment ends before it starts: {item!r}")
    return start, end


# ---------------------------------------------------------------------------------------------
# YouCook2


@dataclass(frozen=True)
class YouCook2Segment:
    """One annotated step: ``index`` is the annotation's id within the video."""

    index: int
    start_sec: float
    end_sec: float
    sentence: str


@dataclass(frozen=True)
class YouCook2Video:
    video_id: str
    duration_sec: float
    subset: str
    recipe_type: str
    url: str
    segments: tuple[YouCook2Segment, ...]


def load_youcook2_annotations(path: str | Path) -> dict[str, YouCook2Video]:
    """The official YouCook2 annotations JSON: {video_id: YouCook2Video}."""
    videos = {}
    for video_id, entry in _read_json_database(path).items():
        try:
            segments = tuple(
                YouCook2Segment(int(a["id"]), *_segment(path, video_id, a), str(a["sentence"]))
                for a in entry["annotations"])
            videos[video_id] = YouCook2Video(
                video_id=video_id, duration_sec=float(entry["duration"]), subset=str(entry["subset"]),
                recipe_type=str(entry["recipe_type"]), url=str(entry.get("video_url", "")),
                segments=segments)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, BenchmarkFormatError):
                raise
            raise BenchmarkFormatError(f"{path}: video {video_id}: missing or bad field ({exc})") from exc
    return videos


@dataclass(frozen=True)
class YouCook2Clip:
    """One retrieval clip: a step of a validation video with its sentence; ``task`` = recipe type."""

    video_id: str
    start_sec: float
    end_sec: float
    task: str
    text: str


def _csv_rows(path: str | Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise BenchmarkFormatError(f"{path}: missing columns {missing} (header: {reader.fieldnames})")
        return list(reader)


def load_youcook2_clips(path: str | Path) -> tuple[YouCook2Clip, ...]:
    """MIL-NCE's ``validation_youcook.csv`` (columns end, start, task, text, video_id)."""
    clips = []
    for line, row in enumerate(_csv_rows(path, ("end", "start", "task", "text", "video_id")), start=2):
        try:
            start, end = float(row["start"]), float(row["end"])
        except ValueError as exc:
            raise BenchmarkFormatError(f"{path}:{line}: bad start/end ({exc})") from exc
        clips.append(YouCook2Clip(row["video_id"], start, end, row["task"], row["text"]))
    return tuple(clips)


# ---------------------------------------------------------------------------------------------
# MSR-VTT


@dataclass(frozen=True)
class MsrvttCaption:
    """One query of MSR-VTT 1k-A: ``video_id`` like ``video9770`` (the feature key), ``key`` the
    query id (``ret0``; the row index for the two-column format)."""

    key: str
    video_id: str
    sentence: str


def load_msrvtt_test(path: str | Path) -> tuple[MsrvttCaption, ...]:
    """The 1k-A test queries, one caption per video, in file order.

    Accepts ``MSRVTT_JSFUSION_test.csv`` (header ``key,vid_key,video_id,sentence``) and
    PaddleVideo's header-less ``video_id,sentence`` lines (as PaddleVideo does, the sentence is the
    second comma-separated field).
    """
    text = Path(path).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise BenchmarkFormatError(f"{path}: empty file")
    header = [c.strip() for c in lines[0].split(",")]
    if {"video_id", "sentence"} <= set(header):
        rows = _csv_rows(path, ("video_id", "sentence"))
        captions = tuple(MsrvttCaption(row.get("key") or str(i), row["video_id"], row["sentence"])
                         for i, row in enumerate(rows))
    else:
        captions = []
        for i, line in enumerate(lines):
            fields = line.strip().split(",")
            if len(fields) < 2 or not fields[0]:
                raise BenchmarkFormatError(f"{path}:{i + 1}: expected 'video_id,sentence', got {line!r}")
            captions.append(MsrvttCaption(str(i), fields[0], fields[1]))
        captions = tuple(captions)
    if not captions:
        raise BenchmarkFormatError(f"{path}: no captions")
    return captions


# ---------------------------------------------------------------------------------------------
# CrossTask


@dataclass(frozen=True)
class CrossTaskTask:
    task_id: str
    name: str
    url: str
    steps: tuple[str, ...]


@dataclass(frozen=True)
class CrossTaskStep:
    """One annotated interval: ``step`` is 0-based (the file's 1-based step minus one)."""

    step: int
    start_sec: float
    end_sec: float


def load_crosstask_tasks(path: str | Path) -> dict[str, CrossTaskTask]:
    """``tasks_primary.txt`` (or ``tasks_related.txt``): {task_id: CrossTaskTask}."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    blocks: list[list[str]] = [[]]
    for line in lines:
        if line.strip():
            blocks[-1].append(line.strip())
        elif blocks[-1]:
            blocks.append([])
    tasks = {}
    for block in (b for b in blocks if b):
        if len(block) != 5 or not block[3].isdigit():
            raise BenchmarkFormatError(
                f"{path}: expected blocks of 5 lines (id, name, url, n_steps, steps), got {block!r}")
        task_id, name, url, n_steps, steps = block
        names = tuple(s.strip() for s in steps.split(","))
        if len(names) != int(n_steps):
            raise BenchmarkFormatError(f"{path}: task {task_id} declares {n_steps} steps, lists {len(names)}")
        tasks[task_id] = CrossTaskTask(task_id, name, url, names)
    if not tasks:
        raise BenchmarkFormatError(f"{path}: no tasks")
    return tasks


def load_crosstask_annotation(path: str | Path, n_steps: int | None = None) -> tuple[CrossTaskStep, ...]:
    """One ``<task>_<video>.csv``: lines ``step,start,end`` (1-based step)."""
    steps = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            step, start, end = line.strip().split(",")
            item = CrossTaskStep(int(step) - 1, float(start), float(end))
        except ValueError as exc:
            raise BenchmarkFormatError(f"{path}:{number}: expected 'step,start,end', got {line!r}") from exc
        if item.step < 0 or (n_steps is not None and item.step >= n_steps):
            raise BenchmarkFormatError(f"{path}:{number}: step {step} outside 1..{n_steps}")
        if item.end_sec < item.start_sec:
            raise BenchmarkFormatError(f"{path}:{number}: interval ends before it starts")
        steps.append(item)
    return tuple(steps)


_ANNOTATION_NAME = re.compile(r"(\d+)_(.+)\.csv")


def load_crosstask_annotations(folder: str | Path, tasks: dict[str, CrossTaskTask] | None = None
                               ) -> dict[tuple[str, str], tuple[CrossTaskStep, ...]]:
    """Every ``<task>_<video>.csv`` of a folder: {(task_id, video_id): steps}, sorted by file name.
    With ``tasks``, files of other tasks are skipped and steps are checked against each task."""
    annotations = {}
    for path in sorted(Path(folder).glob("*.csv")):
        match = _ANNOTATION_NAME.fullmatch(path.name)
        if not match:
            raise BenchmarkFormatError(f"{path}: name is not <task id>_<video id>.csv")
        task_id, video_id = match[1], match[2]
        if tasks is not None and task_id not in tasks:
            continue
        n_steps = len(tasks[task_id].steps) if tasks is not None else None
        annotations[(task_id, video_id)] = load_crosstask_annotation(path, n_steps)
    return annotations


def crosstask_truth(steps: tuple[CrossTaskStep, ...], n_steps: int, num_seconds: int) -> np.ndarray:
    """(T, K) bool ground truth at one slot per second, as CrossTask's ``read_assignment``: slots
    ``floor(start) .. ceil(end) - 1`` of each interval are true (clipped to ``num_seconds``)."""
    truth = np.zeros((num_seconds, n_steps), dtype=bool)
    for item in steps:
        if item.step >= n_steps:
            raise ValueError(f"step {item.step} outside 0..{n_steps - 1}")
        truth[int(math.floor(item.start_sec)):int(math.ceil(item.end_sec)), item.step] = True
    return truth


# ---------------------------------------------------------------------------------------------
# COIN


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
    for video_id, entry in _read_json_database(path).items():
        if subset is not None and entry.get("subset") != subset:
            continue
        try:
            segments = tuple(CoinSegment(int(a["id"]), *_segment(path, video_id, a), str(a["label"]))
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
