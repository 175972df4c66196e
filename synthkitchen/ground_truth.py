"""SynthKitchen's ground-truth reader for ingest: ``<corpus>/ground_truth/<stem>.json`` beside
``<corpus>/videos/<stem>.mp4`` (written by ``synthkitchen.corpus``) gives the task, instance,
split, true steps and which steps the narration describes. ``register()`` adds it to
``indexer.library.ground_truth``'s readers; the programs that ingest or export SynthKitchen videos
call it (the ``indexer`` command, the demo builder, the explorer): importing this module registers
nothing.
"""

from __future__ import annotations

import logging
from pathlib import Path

from indexer.library.ground_truth import GroundTruth, GroundTruthError, read_json, register_reader

log = logging.getLogger(__name__)


def truth_file(video: Path) -> Path:
    """Where the corpus keeps the ground truth of ``video``."""
    return video.parent.parent / "ground_truth" / f"{video.stem}.json"


def narrated_steps(truth: dict) -> list[bool]:
    """Per step of a SynthKitchen ground-truth record: some narration line flagged ``aligned``
    has its midpoint inside the step and talks about a step with the same verb and objects
    (``synthkitchen.narration``'s definition of aligned: a viewer sees what the line says)."""
    steps = truth["steps"]
    flags = [False] * len(steps)
    for line in truth.get("narration", []):
        about = line.get("step_index")
        if not line.get("aligned") or about is None:
            continue
        mid = 0.5 * (float(line["start_sec"]) + float(line["end_sec"]))
        for i, step in enumerate(steps):
            same = (step["verb"], step["objects"]) == (steps[about]["verb"], steps[about]["objects"])
            if same and float(step["start_sec"]) <= mid < float(step["end_sec"]):
                flags[i] = True
    return flags


def read_ground_truth(video: Path) -> GroundTruth | None:
    """The SynthKitchen ground truth of ``video``; None when the video is not in such a corpus."""
    candidate = truth_file(video)
    if not candidate.is_file():
        return None
    data = read_json(candidate)  # size and nesting bounded; errors name the file
    try:
        steps = tuple((i, float(s["start_sec"]), float(s["end_sec"]), s.get("verb"),
                       str(s.get("description") or s.get("verb", "")))
                      for i, s in enumerate(data.get("steps", [])))
        task, split = data.get("task"), data.get("split")
        instance = str(data.get("instance_id", video.stem))
        try:
            narrated = tuple(narrated_steps(data))
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            log.info("%s: no narrated flags (%s)", candidate, exc)
            narrated = None
        return GroundTruth(task=task, task_instance=instance, split=split, steps=steps, narrated=narrated)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # GroundTruthError included
        detail = str(exc) if isinstance(exc, GroundTruthError) else f"{type(exc).__name__}: {exc}"
        raise GroundTruthError(f"ground truth {candidate.name} unusable ({detail})".splitlines()[0][:300]) from exc


def register() -> None:
    """Make ingest and the corpus export read SynthKitchen's ground truth (idempotent)."""
    register_reader("synthkitchen", read_ground_truth)
