"""CrossTask (Zhukov et al. 2019): the paper's action step localisation benchmark.

- ``tasks_primary.txt`` (blocks of five lines: task id, name, URL, number of steps,
  comma-separated steps; a blank line between blocks);
- ``annotations/<task>_<video>.csv`` (lines ``step,start,end`` with 1-based steps, seconds).

As a corpus (``evaluate --dataset crosstask``, the release folder holding both): every video is
``test`` (the paper's protocol is zero-shot); a step is an annotated interval, described by the
task's step name.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .annotations import BenchmarkFormatError, BenchmarkVideo

TASKS = ("step_localization",)  # the paper's task on CrossTask


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


def corpus_videos(release: Path) -> list[BenchmarkVideo]:
    """Every annotated video of the primary tasks, its intervals as steps named by the task."""
    tasks = load_crosstask_tasks(release / "tasks_primary.txt")
    found = load_crosstask_annotations(release / "annotations", tasks)
    return [BenchmarkVideo(video, "test", task, tuple((s.start_sec, s.end_sec, tasks[task].steps[s.step],
                                                       tasks[task].steps[s.step]) for s in steps))
            for (task, video), steps in found.items()]
