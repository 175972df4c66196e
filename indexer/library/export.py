"""Export a library's finished videos as the training corpus ``LIB/corpus.jsonl``
(``actbert.corpus`` owns the format), with the verb vocabulary built from the narrations.

Each ground-truth step is ``{"start_sec", "end_sec", "description", "verb"}`` plus, when the
video's ground truth tells (``indexer.library.ground_truth``; SynthKitchen's does),
``"narrated"``: whether an aligned narration line describes it; evaluation's
``retrieval_visual_only`` queries are the steps with ``"narrated": false``. Each video also
lists its clips' ``"narrated"`` flags: pretraining reads the narrated clips only, evaluation
searches them all (``retrieval_visual_only_all_steps``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from actbert.corpus import CorpusVideo, write_corpus
from indexer.features.verbs import VerbVocabulary
from indexer.library.catalog import clip_narrated
from indexer.library.ground_truth import GroundTruthError, ground_truth_for
from indexer.library.store import Library

log = logging.getLogger(__name__)

MIN_VERB_COUNT = 3


def _narrated(video_path: str, steps: int) -> list[bool] | None:
    """The steps' narrated flags from the video's ground truth (``indexer.library.ground_truth``),
    None without them (or when they do not describe the catalog's steps)."""
    try:
        truth = ground_truth_for(video_path)
    except GroundTruthError as exc:
        log.warning("%s: no narrated flags (%s)", video_path, exc)
        return None
    if truth is None or truth.narrated is None:
        return None
    return list(truth.narrated) if len(truth.narrated) == steps else None


def export_corpus(library: Library, min_verb_count: int = MIN_VERB_COUNT) -> Path:
    """Write ``corpus.jsonl``; the verb vocabulary keeps verbs seen at least ``min_verb_count``
    times (it is also stored in the library manifest as ``verbs``)."""
    videos = []
    for row in library.catalog.videos("done"):
        clips = library.catalog.clips_of(row["video_id"])
        steps = [{"start_sec": s["start_sec"], "end_sec": s["end_sec"],
                  "description": s["description"], "verb": s["verb"]}
                 for s in library.catalog.steps_of(row["video_id"])]
        flags = _narrated(row["path"], len(steps)) if steps else None
        for step, flag in zip(steps, flags or []):
            step["narrated"] = flag
        videos.append(CorpusVideo(
            video_id=row["video_id"], features=library.file(row["feature_path"]),
            narrations=tuple(c["narration"] for c in clips),
            verbs=tuple(tuple(json.loads(c["verbs"])) for c in clips),
            narrated=tuple(clip_narrated(c) for c in clips),
            split=row["split"], task=row["task"], task_instance=row["task_instance"],
            steps=tuple(steps)))
    vocab = VerbVocabulary.build([list(v) for video in videos for v in video.verbs], min_verb_count)
    verbs = list(vocab.verbs)
    region_classes = library.manifest.region_classes
    path = library.root / "corpus.jsonl"
    write_corpus(path, videos, verbs, region_classes, library=str(library.root),
                 min_verb_count=min_verb_count)
    library.update_manifest(verbs=verbs)
    log.info("exported %d videos, %d verbs to %s", len(videos), len(verbs), path)
    return path
