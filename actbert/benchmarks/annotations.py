"""What the benchmark readers share: their format error, the building blocks of the published
annotation files (a JSON ``database`` object, a ``[start, end]`` segment, CSV rows with named
columns) and ``BenchmarkVideo``, one annotated video as a benchmark's corpus takes it.

All times are seconds. Records are small frozen dataclasses; collections keep file order.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path


class BenchmarkFormatError(ValueError):
    """An annotation file does not have its benchmark's format."""


@dataclass(frozen=True)
class BenchmarkVideo:
    """One video of a benchmark as its corpus takes it: the split it belongs to (``train`` or
    ``test``), its task, and its steps as ``(start_sec, end_sec, description, verb)``.
    ``caption``: a description of the whole video instead of steps (MSR-VTT), made one step
    spanning the video's clips once its feature file gives their times."""

    video_id: str
    split: str
    task: str | None
    steps: tuple[tuple[float, float, str, str], ...] = ()
    caption: str | None = None


def read_json_database(path: str | Path) -> dict:
    """The ``database`` object of a JSON annotation file (YouCook2, COIN)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BenchmarkFormatError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("database"), dict):
        raise BenchmarkFormatError(f"{path}: expected an object with a 'database' object")
    return data["database"]


def segment(path, video_id: str, item: dict) -> tuple[float, float]:
    """``item["segment"]`` as (start_sec, end_sec); an error when it is not two numbers."""
    try:
        start, end = (float(v) for v in item["segment"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BenchmarkFormatError(f"{path}: video {video_id}: bad segment {item!r}") from exc
    return start, end


def ordered_segment(path, video_id: str, item: dict) -> tuple[float, float]:
    """``segment``, and an error when it ends before it starts."""
    start, end = segment(path, video_id, item)
    if end < start:
        raise BenchmarkFormatError(f"{path}: video {video_id}: segment ends before it starts: {item!r}")
    return start, end


def csv_rows(path: str | Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    """The rows of a CSV file with a header that names at least the ``required`` columns."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise BenchmarkFormatError(f"{path}: missing columns {missing} (header: {reader.fieldnames})")
        return list(reader)
