"""Ground truth beside a video (task, split, true steps), read by pluggable readers.

Ingest and the corpus export ask ``ground_truth_for(video_path)``; each registered reader knows one
corpus layout and returns a ``GroundTruth`` for videos of its corpus, None for others. Readers are
tried in registration order and the first answer wins. A corpus registers its reader with
``register_reader(name, reader)``, explicitly: the demo corpus's is registered by the programs
that read SynthKitchen videos (``synthkitchen.ground_truth.register``: the ``indexer``
command, the demo builder, the explorer); Ray actors register the driver's readers.

Ground truth is somebody else's file: ``GroundTruth`` checks its own types and finiteness (the
catalog stores them as they are), ``read_json`` bounds size and nesting before parsing, and
whatever a reader raises on a bad file becomes a ``GroundTruthError`` naming it, which ingest turns
into a warning on a video that is still ingested.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from indexer.errors import ExplorerError

MAX_JSON_BYTES = 64 << 20
MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
# What a reader's parsing of a bad file raises (a bug of the reader itself keeps its traceback).
_BAD_FILE_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError)

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

    def __post_init__(self) -> None:
        for key in ("task", "task_instance", "split"):
            if getattr(self, key) is not None and not isinstance(getattr(self, key), str):
                raise GroundTruthError(f"{key} is a {type(getattr(self, key)).__name__}, not text")
        for n, step in enumerate(self.steps):
            if not isinstance(step, tuple) or len(step) != 5:
                raise GroundTruthError(f"step {n} is not (index, start_sec, end_sec, verb, description)")
            index, start, end, verb, description = step
            if isinstance(index, bool) or not isinstance(index, int):
                raise GroundTruthError(f"step {n}: index {index!r} is not a whole number")
            if not all(isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t) and t >= 0
                       for t in (start, end)) or start > end:
                raise GroundTruthError(f"step {n}: times {start!r}..{end!r} are not finite seconds in order")
            if verb is not None and not isinstance(verb, str):
                raise GroundTruthError(f"step {n}: verb is a {type(verb).__name__}, not text")
            if not isinstance(description, str):
                raise GroundTruthError(f"step {n}: description is a {type(description).__name__}, not text")
        if self.narrated is not None and (len(self.narrated) != len(self.steps)
                                          or not all(isinstance(f, bool) for f in self.narrated)):
            raise GroundTruthError("narrated flags are not one true/false per step")

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
    """The first registered reader's answer for ``video``; None when no corpus claims it.
    ``GroundTruthError`` (naming the video and the reader) for whatever a reader raises on a bad file."""
    for name, reader in list(_READERS.items()):
        try:
            truth = reader(Path(video))
        except GroundTruthError:
            raise
        except _BAD_FILE_ERRORS as exc:
            raise GroundTruthError(f"ground truth of {Path(video).name} unusable (reader {name}: "
                                   f"{type(exc).__name__}: {exc})".splitlines()[0][:300]) from exc
        if truth is not None:
            return truth
    return None


def read_json(path: Path) -> Any:
    """A ground-truth JSON file, parsed; ``GroundTruthError`` naming it when it is unreadable, over
    ``MAX_JSON_BYTES`` or nested deeper than ``MAX_JSON_DEPTH`` (checked before parsing, so a
    file nested 100,000 deep costs one pass over its bytes, not a ``RecursionError``)."""
    try:
        if not path.is_file():
            raise GroundTruthError(f"ground truth {path.name} unusable (not a regular file)")
        if path.stat().st_size > MAX_JSON_BYTES:
            raise GroundTruthError(f"ground truth {path.name} unusable (over {MAX_JSON_BYTES >> 20} MiB)")
        data = path.read_bytes()
    except OSError as exc:
        raise GroundTruthError(f"ground truth {path.name} unreadable ({exc.strerror})") from exc
    if json_depth(data) > MAX_JSON_DEPTH:
        raise GroundTruthError(f"ground truth {path.name} unusable (nested deeper than {MAX_JSON_DEPTH})")
    try:
        return json.loads(data.decode("utf-8", errors="replace"))
    except ValueError as exc:
        raise GroundTruthError(f"ground truth {path.name} unusable (not JSON: {exc})") from exc


def json_depth(data: bytes) -> int:
    """The deepest nesting of arrays and objects in JSON text (brackets inside strings ignored)."""
    codes = np.frombuffer(_JSON_STRING.sub(b'""', data), np.uint8)
    steps = np.isin(codes, (ord("["), ord("{"))).astype(np.int64) - np.isin(codes, (ord("]"), ord("}")))
    return int(np.cumsum(steps).max(initial=0))
