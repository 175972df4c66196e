"""What the demo build is doing, for the people waiting on it: a record the builder writes
(``LIB/progress.json``, replaced atomically; ``LIB/progress/frame.jpg``: frames of the video being
analysed) and two readers of it, the explorer's progress panel and a terminal progress bar (tqdm).

The demo library is built video by video (``synthkitchen.demo``): each video is rendered,
analysed and added to the search index before the next is, so search works on what is ready. The
record says which stage runs (``STAGES``: what it does and why it is needed once, in plain words),
how many of the videos are searchable, which video is being analysed, how long each video is and
when each was finished (from which ``time_left_sec`` estimates the rest), and whether the build
finished or failed.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO

import numpy as np

from actbert.atomic import write_bytes, write_json
from indexer.library.store import pid_alive

RECORD = "progress.json"
FRAME = "progress/frame.jpg"


@dataclass(frozen=True)
class Stage:
    """One step of the build, in plain words: its title, what it does and why it is needed once."""

    title: str
    what: str
    why: str


STAGES = {
    "start": Stage("Starting", "Creating the library folder and its catalog.",
                   "A library keeps videos, features, the index and the model together."),
    "model": Stage("Installing the ActBERT model",
                   "Copying the shipped model that turns clips and queries into vectors into the library.",
                   "It was trained once, on a larger SynthKitchen draw, so every machine shows the same demo."),
    "corpus": Stage("Rendering the demo videos",
                    "Drawing every SynthKitchen kitchen task as a video with narration and ground truth.",
                    "No real instructional video can be downloaded offline; a detector trained here needs them all."),
    "detector": Stage("Installing the object detector",
                      "Copying the detector that finds the objects and hands (the region stream) in frames.",
                      "Regions are one of ActBERT's three streams; the detector was trained once on these kitchens."),
    "videos": Stage("Rendering and analysing videos",
                    "Each video is drawn, then decoded: objects detected (regions), motion encoded by the I3D "
                    "network (actions), verbs read from the narration; its clips are then added to the index.",
                    "This is the work that makes a video searchable; it is done once and kept in the library."),
    "verbs": Stage("Training the verb classifier",
                   "Learning which verb each clip shows from its action features.",
                   "The Clip page shows predicted verbs; it needs every video's features, so it runs last."),
    "detector_check": Stage("Measuring the detector",
                            "Scoring the detector on frames of held-out videos (mAP@0.5).",
                            "The Model page reports how well the regions were found."),
    "pretrain": Stage("Pretraining ActBERT",
                      "Training the model on this library's train split (no shipped model was found).",
                      "Search needs a model; this one is trained against the clock."),
    "pretrain_no_regions": Stage("Pretraining the ablation",
                                 "Training the same model without regions, for the comparison.",
                                 "The Model page compares the two."),
    "index": Stage("Checking the index",
                   "Making sure the search index holds exactly the catalog's clips.",
                   "The index and the catalog must agree before the build is called done."),
    "ready": Stage("Ready", "The demo library is built.", "Later launches open it directly."),
}


@dataclass(frozen=True)
class BuildProgress:
    """The demo build's state. Times are seconds since the epoch (``started``, ``updated``,
    ``videos_started``) or since ``videos_started`` (``finished_at``: when each video was finished,
    searchable or failed, in build order). ``durations``: each video's length in seconds, in
    build order (the videos stage runs the shortest first)."""

    pid: int
    started: float
    stage: str = "start"
    total: int = 0
    searchable: int = 0
    failed: int = 0
    current: str | None = None
    videos_started: float | None = None
    durations: tuple[float, ...] = ()
    finished_at: tuple[float, ...] = ()
    finished: bool = False
    error: str | None = None
    updated: float = 0.0

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"unknown build stage {self.stage!r}")

    @property
    def step(self) -> Stage:
        return STAGES[self.stage]

    def to_json(self) -> dict:
        return {**asdict(self), "durations": list(self.durations), "finished_at": list(self.finished_at)}

    @classmethod
    def from_json(cls, data: dict) -> "BuildProgress":
        known = {f: data[f] for f in cls.__dataclass_fields__ if f in data}
        return cls(**{**known, "durations": tuple(known.get("durations", ())),
                      "finished_at": tuple(known.get("finished_at", ()))})

    def running(self) -> bool:
        """The build has not finished or failed, and its process is alive (on this machine)."""
        return not self.finished and self.error is None and pid_alive(self.pid)


def time_left_sec(progress: BuildProgress, now: float) -> float | None:
    """Seconds until every video is finished, from the measured rate in wall seconds per second of
    video: over the videos finished after the first (the first also paid for loading the models),
    or the first's alone while it is the only one. The rest's length times that rate, less the
    time already spent since the last video finished. None before any video is finished or
    outside the ``videos`` stage."""
    times, lengths = progress.finished_at, progress.durations
    if progress.stage != "videos" or not times or progress.videos_started is None:
        return None
    done = len(times)
    if done >= len(lengths):
        return 0.0
    rate = (times[-1] - times[0]) / sum(lengths[1:done]) if done > 1 else times[0] / lengths[0]
    since_last = max(0.0, now - progress.videos_started - times[-1])
    return max(0.0, sum(lengths[done:]) * rate - since_last)


def read(root: str | Path) -> BuildProgress | None:
    """The record in library folder ``root`` (None when there is none or it does not parse)."""
    try:
        return BuildProgress.from_json(json.loads((Path(root) / RECORD).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def write(root: str | Path, progress: BuildProgress) -> BuildProgress:
    """Replace the record atomically (stamped ``updated``); returns what was written."""
    progress = replace(progress, updated=time.time())
    write_json(Path(root) / RECORD, progress.to_json())
    return progress


def contact_sheet(frames: np.ndarray) -> bytes:
    """(F, H, W, 3) uint8 RGB frames side by side, as JPEG bytes."""
    import cv2

    ok, data = cv2.imencode(".jpg", cv2.cvtColor(np.hstack(list(frames)), cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, 80])
    if not ok:
        raise ValueError("could not encode the frames as JPEG")
    return data.tobytes()


def write_frames(root: str | Path, video: Path, count: int = 4, height: int = 96) -> None:
    """``LIB/progress/frame.jpg``: ``count`` frames spread over ``video``, ``height`` pixels tall."""
    from indexer.features.video import probe, read_frames_at

    info = probe(video)
    times = (np.arange(count) + 0.5) * info.duration_sec / count
    size = (height, max(2, round(info.width * height / info.height)))
    path = Path(root) / FRAME
    path.parent.mkdir(exist_ok=True)
    write_bytes(path, contact_sheet(read_frames_at(video, times, size=size)))


class TerminalProgress:
    """The build on a terminal: one tqdm bar per stage; the ``videos`` stage counts searchable
    videos (N of N at the end) and names the one being analysed. ``disable``: draw nothing (with
    ``--json``, or when ``file`` is not a terminal: the default decides that for stderr)."""

    def __init__(self, file: IO[str] | None = None, disable: bool | None = None) -> None:
        self.file = file if file is not None else sys.stderr
        self.disable = (not self.file.isatty()) if disable is None else disable
        self.bar = None
        self.stage: str | None = None

    def __call__(self, progress: BuildProgress) -> None:
        if self.disable:
            return
        from tqdm import tqdm

        if progress.stage != self.stage:
            self.close()
            self.stage = progress.stage
            if progress.stage == "ready":
                return
            total = progress.total if progress.stage == "videos" else None
            self.bar = tqdm(total=total, desc=progress.step.title, unit="video" if total else "it",
                            file=self.file, dynamic_ncols=True, leave=True,
                            bar_format=None if total else "{desc}: {elapsed}")
        if self.bar is not None and progress.stage == "videos":
            self.bar.update(len(progress.finished_at) - self.bar.n)
            self.bar.set_postfix_str(f"analysing {progress.current}" if progress.current else "", refresh=False)
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


__all__ = ["BuildProgress", "FRAME", "RECORD", "STAGES", "Stage", "TerminalProgress", "contact_sheet",
           "read", "time_left_sec", "write", "write_frames"]
