"""Ground truth beside a video (task, split, true steps), read by pluggable readers.

Ingest and the corpus export ask ``ground_truth_for(video_path)``; each registered reader knows one
corpus layout and returns a ``GroundTruth`` for videos of its corpus, None for others. Readers are
tried in registration order and the first answer wins. The demo corpus registers its reader when
``indexer`` is imported (``indexer.synthkitchen.ground_truth``); another corpus registers its own
with ``register_reader(name, reader)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from indexer.errors import ExplorerError

# (step index, start_sec, end_sec, verb or None, description): the catalog's ``steps`` rows.
Step = tuple[int, float, float, "str | None", str]


class GroundTruthError(ExplorerError, ValueError):
    """A ground-truth file beside the video cannot be read; the video is still ingested."""


@dataclass(frozen=True)
class GroundTruth:
    """What a corpus knows about one video. ``narrated`` (one flag per step, or None when the corpus
    cannot tell): an aligned narration line describes the step (see ``actbert.corpus``)."""

    task: str | None
    task_instance: str | None
    split: str | None
    steps: tuple[Step, ...] = ()
    narrated: tuple[bool, ...] | None = None

    def video_fields(self) -> dict[str, str | None]:
        """The catalog's ``videos`` columns this ground truth fills."""
        return {"task": self.task, "task_instance": self.task_instance, "split": self.split}


class GroundTruthReader(Protocol):
    def __call__(self, video: Path) -> GroundTruth | None:
        """The ground truth of ``video``, None when it is not a video of this reader's corpus;
        ``GroundTruthError`` when it is but its ground truth is unusable."""


_READERS: dict[str, GroundTruthReader] = {}


def register_reader(name: str, reader: GroundTruthReader) -> None:
    """Add (or replace) the reader called ``name``."""
    _READERS[name] = reader


def unregister_reader(name: str) -> None:
    _READERS.pop(name, None)


def readers() -> dict[str, GroundTruthReader]:
    """The registered readers by name, in the order they are tried."""
    return dict(_READERS)


def ground_truth_for(video: str | Path) -> GroundTruth | None:
    """The first registered reader's answer for ``video``; None when no corpus claims it."""
    for reader in list(_READERS.values()):
        truth = reader(Path(video))
        if truth is not None:
            return truth
    return None
