"""YouCook2 (Zhou et al. 2018): the paper's text-to-video retrieval and captioning benchmark.

- The official annotations JSON (``{"database": {video_id: {"duration", "subset", "recipe_type",
  "annotations": [{"segment": [start, end], "id", "sentence"}], "video_url"}}}``), read by
  ``parse_youcook2``: the one reader of this format, which the indexer's transcript reader
  (``indexer.features.transcripts``) calls too.
- The retrieval validation clips CSV of MIL-NCE/HowTo100M (``end,start,task,text,video_id``).

As a corpus (``evaluate --dataset youcook2``): subset ``validation`` -> the evaluated split
``test``, ``training`` -> ``train``; steps = the annotated segments, described by their sentences.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .annotations import BenchmarkFormatError, BenchmarkVideo, csv_rows, segment

TASKS = ("retrieval", "captioning")  # the paper's tasks on YouCook2
SUBSETS = {"training": "train", "validation": "test"}


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


def parse_youcook2(data: object, source: str | Path = "", subset: str | None = None
                   ) -> dict[str, YouCook2Video]:
    """A parsed YouCook2 annotations JSON -> {video_id: YouCook2Video}, optionally only the videos
    of one ``subset`` (``training``, ``validation``...). Every video needs its ``duration`` and
    each annotation its ``id``, two-number ``segment`` and ``sentence``; a video without
    ``subset``, ``recipe_type``, ``video_url`` or ``annotations`` reads them as empty. Segments
    keep file order and their times as written: the benchmark refuses a segment that ends before
    it starts (``load_youcook2_annotations``), a transcript skips it. ``source`` (a path) starts
    every error message."""
    where = f"{source}: " if str(source) else ""
    database = data.get("database") if isinstance(data, dict) else None
    if not isinstance(database, dict):
        raise BenchmarkFormatError(f"{where}not a YouCook2 annotation file (no 'database' object)")
    videos = {}
    for video_id, entry in database.items():
        if not isinstance(entry, dict):
            raise BenchmarkFormatError(f"{where}video {video_id}: not an object")
        if subset is not None and entry.get("subset") != subset:
            continue
        try:
            segments = tuple(YouCook2Segment(int(a["id"]), *segment(source, video_id, a), str(a["sentence"]))
                             for a in entry.get("annotations", []))
            videos[video_id] = YouCook2Video(
                video_id=video_id, duration_sec=float(entry["duration"]),
                subset=str(entry.get("subset", "")), recipe_type=str(entry.get("recipe_type", "")),
                url=str(entry.get("video_url", "")), segments=segments)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, BenchmarkFormatError):
                raise
            raise BenchmarkFormatError(f"{where}video {video_id}: missing or bad field ({exc})") from exc
    return videos


def load_youcook2_annotations(path: str | Path) -> dict[str, YouCook2Video]:
    """The official YouCook2 annotations JSON: {video_id: YouCook2Video}."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BenchmarkFormatError(f"{path}: not valid JSON ({exc})") from exc
    videos = parse_youcook2(data, path)
    for video in videos.values():
        for step in video.segments:
            if step.end_sec < step.start_sec:
                raise BenchmarkFormatError(f"{path}: video {video.video_id}: segment ends before it "
                                           f"starts: {step!r}")
    return videos


@dataclass(frozen=True)
class YouCook2Clip:
    """One retrieval clip: a step of a validation video with its sentence; ``task`` = recipe type."""

    video_id: str
    start_sec: float
    end_sec: float
    task: str
    text: str


def load_youcook2_clips(path: str | Path) -> tuple[YouCook2Clip, ...]:
    """MIL-NCE's ``validation_youcook.csv`` (columns end, start, task, text, video_id)."""
    clips = []
    for line, row in enumerate(csv_rows(path, ("end", "start", "task", "text", "video_id")), start=2):
        try:
            start, end = float(row["start"]), float(row["end"])
        except ValueError as exc:
            raise BenchmarkFormatError(f"{path}:{line}: bad start/end ({exc})") from exc
        clips.append(YouCook2Clip(row["video_id"], start, end, row["task"], row["text"]))
    return tuple(clips)


def corpus_videos(annotations: Path) -> list[BenchmarkVideo]:
    """The training and validation videos of the annotations file, their segments as steps."""
    return [BenchmarkVideo(v.video_id, SUBSETS[v.subset], v.recipe_type,
                           tuple((s.start_sec, s.end_sec, s.sentence, "") for s in v.segments))
            for v in load_youcook2_annotations(annotations).values() if v.subset in SUBSETS]
