"""A paper benchmark's annotation files + pre-extracted features -> the corpus that ``evaluate``
and ``finetune`` read (``--dataset NAME --annotations PATH --features DIR``).

Each benchmark's module says which of its videos go to which split and what its steps are
(``youcook2``, ``msrvtt``, ``crosstask``, ``coin``; by name: ``registry``). A split called
``train`` also gives every 10th of its videos (in video-id order) to ``val``, which
fine-tuning's early stopping reads. Features: ``DIR/<video_id>.safetensors`` in the per-video
format of ``actbert.data.VideoFeatures`` (``indexer.features.feature_import`` writes them from
bottom-up-attention regions and action ``.npy`` files; ``indexer ingest`` from videos). A video
without its file is left out and counted in ``corpus.meta["missing_features"]``. Narrations are
empty (the benchmarks' pre-extracted features carry no transcript), so the narration baselines do
not apply.
"""

from __future__ import annotations

from pathlib import Path

from safetensors import safe_open

from ..corpus import Corpus, CorpusVideo
from .registry import BENCHMARKS, DATASETS

VAL_EVERY = 10


def _clip_times(path: Path) -> tuple[list[float], list[float]]:
    with safe_open(str(path), framework="numpy") as handle:
        return handle.get_tensor("clip_start_sec").tolist(), handle.get_tensor("clip_end_sec").tolist()


def _steps(items) -> tuple[dict, ...]:
    """(start, end, description, verb) -> corpus steps; an empty interval is left out."""
    return tuple({"start_sec": s, "end_sec": e, "description": d, "verb": v}
                 for s, e, d, v in items if e > s)


def benchmark_corpus(dataset: str, annotations: str | Path, features: str | Path) -> Corpus:
    """The benchmark's videos that have a feature file, as a corpus (see the module docstring)."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose from {', '.join(DATASETS)}")
    annotations, features = Path(annotations), Path(features)
    if not annotations.exists():
        raise FileNotFoundError(f"{annotations}: no such annotation file or folder")
    if not features.is_dir():
        raise FileNotFoundError(f"{features}: no such features folder (one <video_id>.safetensors "
                                "per video)")
    videos, missing = [], 0
    entries = BENCHMARKS[dataset].corpus_videos(annotations)
    train_ids = sorted(v.video_id for v in entries if v.split == "train")
    val_ids = set(train_ids[::VAL_EVERY]) if len(train_ids) > 1 else set()
    for entry in entries:
        path = features / f"{entry.video_id}.safetensors"
        if not path.is_file():
            missing += 1
            continue
        starts, ends = _clip_times(path)
        steps = entry.steps
        if entry.caption is not None:  # MSR-VTT: the caption describes the whole video
            steps = ((min(starts), max(ends), entry.caption, ""),)
        videos.append(CorpusVideo(
            video_id=entry.video_id, features=path, narrations=("",) * len(starts),
            verbs=((),) * len(starts), split="val" if entry.video_id in val_ids else entry.split,
            task=entry.task, task_instance=f"{dataset}:{entry.video_id}", steps=_steps(steps)))
    if not videos:
        raise ValueError(f"none of the {len(entries)} {dataset} videos of {annotations} has a "
                         f"feature file <video_id>.safetensors in {features}")
    return Corpus(tuple(videos), (), (), {"dataset": dataset, "annotations": str(annotations),
                                          "missing_features": missing})
