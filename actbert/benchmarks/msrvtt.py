"""MSR-VTT 1k-A (Xu et al. 2016; the JSFusion test split): the paper's zero-shot retrieval and
multiple-choice video QA benchmark.

- ``MSRVTT_JSFUSION_test.csv`` (``key,vid_key,video_id,sentence``), or the two-column
  ``video_id,sentence`` file without a header that PaddleVideo's loader reads.

As a corpus (``evaluate --dataset msrvtt``): every video is ``test``; each video is one step
spanning its clips, described by its caption. The released checkpoint's own MSR-VTT protocol is
``actbert.paddle.parity``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .annotations import BenchmarkFormatError, BenchmarkVideo, csv_rows

TASKS = ("retrieval", "videoqa")  # the paper's tasks on MSR-VTT


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
        rows = csv_rows(path, ("video_id", "sentence"))
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


def corpus_videos(annotations: Path) -> list[BenchmarkVideo]:
    """Every captioned video, its caption describing the whole video."""
    return [BenchmarkVideo(c.video_id, "test", None, caption=c.sentence)
            for c in load_msrvtt_test(annotations)]
