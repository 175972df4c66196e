"""A paper benchmark's annotation files + pre-extracted features -> the corpus that ``evaluate``
and ``finetune`` read, and the command-line source options they share.

``--dataset NAME --annotations PATH --features DIR``:

- ``youcook2``: the official annotations JSON (``benchmarks.load_youcook2_annotations``); subset
  ``validation`` -> the evaluated split ``test``, ``training`` -> ``train``; steps = the annotated
  segments, described by their sentences.
- ``msrvtt``: ``MSRVTT_JSFUSION_test.csv`` (1k-A, ``benchmarks.load_msrvtt_test``), all ``test``;
  each video is one step spanning its clips, described by its caption.
- ``crosstask``: the release folder holding ``tasks_primary.txt`` and ``annotations/``
  (``benchmarks.load_crosstask_*``), all ``test`` (the paper's protocol is zero-shot); a step is an
  annotated interval, described by the task's step name.
- ``coin``: ``COIN.json`` (``benchmarks.load_coin``); subset ``testing`` -> ``test``, ``training``
  -> ``train``; steps = the segments, labelled (and described) by their step label.

A split called ``train`` also gives every 10th of its videos (in video-id order) to ``val``, which
fine-tuning's early stopping reads. Features: ``DIR/<video_id>.safetensors`` in the per-video
format of ``actbert.data.VideoFeatures`` (``indexer.features.feature_import`` writes them from
bottom-up-attention regions and action ``.npy`` files; ``indexer ingest`` from videos). A video
without its file is left out and counted in ``corpus.meta["missing_features"]``. Narrations are
empty (the benchmarks' pre-extracted features carry no transcript), so the narration baselines do
not apply.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from safetensors import safe_open

from ..checkpoint import manifest_checkpoint
from ..corpus import Corpus, CorpusVideo, read_corpus
from .benchmarks import load_coin, load_crosstask_annotations, load_crosstask_tasks, \
    load_msrvtt_test, load_youcook2_annotations

DATASETS = ("youcook2", "msrvtt", "crosstask", "coin")
BENCHMARK_TASKS = {"youcook2": ("retrieval", "captioning"), "msrvtt": ("retrieval", "videoqa"),
                 "crosstask": ("step_localization",), "coin": ("segmentation",)}
VAL_EVERY = 10


def _clip_times(path: Path) -> tuple[list[float], list[float]]:
    with safe_open(str(path), framework="numpy") as handle:
        return handle.get_tensor("clip_start_sec").tolist(), handle.get_tensor("clip_end_sec").tolist()


def _steps(items) -> tuple[dict, ...]:
    """(start, end, description, verb) -> corpus steps; an empty interval is left out."""
    return tuple({"start_sec": s, "end_sec": e, "description": d, "verb": v}
                 for s, e, d, v in items if e > s)


def _entries(dataset: str, annotations: Path) -> list[tuple[str, str, str | None, list]]:
    """(video_id, split, task, [(start, end, description, verb)] or None for 'whole video')."""
    if dataset == "youcook2":
        subsets = {"training": "train", "validation": "test"}
        return [(v.video_id, subsets[v.subset], v.recipe_type,
                 [(s.start_sec, s.end_sec, s.sentence, "") for s in v.segments])
                for v in load_youcook2_annotations(annotations).values() if v.subset in subsets]
    if dataset == "coin":
        subsets = {"training": "train", "testing": "test"}
        return [(v.video_id, subsets[v.subset], v.task,
                 [(s.start_sec, s.end_sec, s.label, s.label) for s in v.segments])
                for v in load_coin(annotations).values() if v.subset in subsets]
    if dataset == "crosstask":
        tasks = load_crosstask_tasks(annotations / "tasks_primary.txt")
        found = load_crosstask_annotations(annotations / "annotations", tasks)
        return [(video, "test", task, [(s.start_sec, s.end_sec, tasks[task].steps[s.step],
                                        tasks[task].steps[s.step]) for s in steps])
                for (task, video), steps in found.items()]
    captions = load_msrvtt_test(annotations)
    return [(c.video_id, "test", None, [c.sentence]) for c in captions]


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
    entries = _entries(dataset, annotations)
    train_ids = sorted(v for v, split, _, _ in entries if split == "train")
    val_ids = set(train_ids[::VAL_EVERY]) if len(train_ids) > 1 else set()
    for video_id, split, task, steps in entries:
        path = features / f"{video_id}.safetensors"
        if not path.is_file():
            missing += 1
            continue
        starts, ends = _clip_times(path)
        if steps and isinstance(steps[0], str):  # MSR-VTT: the caption describes the whole video
            steps = [(min(starts), max(ends), steps[0], "")]
        videos.append(CorpusVideo(
            video_id=video_id, features=path, narrations=("",) * len(starts),
            verbs=((),) * len(starts), split="val" if video_id in val_ids else split, task=task,
            task_instance=f"{dataset}:{video_id}", steps=_steps(steps)))
    if not videos:
        raise ValueError(f"none of the {len(entries)} {dataset} videos of {annotations} has a "
                         f"feature file <video_id>.safetensors in {features}")
    return Corpus(tuple(videos), (), (), {"dataset": dataset, "annotations": str(annotations),
                                          "missing_features": missing})


# ---- the source options of evaluate and finetune -----------------------------------------------

def add_source_args(p: argparse.ArgumentParser) -> None:
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--library", help="library folder (reads LIBRARY/corpus.jsonl and the model "
                                          "named in LIBRARY/library.json)")
    source.add_argument("--corpus", help="a corpus.jsonl file")
    source.add_argument("--dataset", choices=DATASETS,
                        help="a paper benchmark: with --annotations and --features")
    p.add_argument("--annotations", help="--dataset's annotation file (YouCook2 / COIN JSON, MSR-VTT "
                                         "1k-A CSV) or CrossTask release folder")
    p.add_argument("--features", help="--dataset's features folder: <video_id>.safetensors per video")
    p.add_argument("--checkpoint", help="the model (a save_pretrained folder); default: the library's")
    p.add_argument("--ablation-checkpoint", help="the model pretrained with --no-regions; default: "
                                                 "library.json 'model_no_regions'")


def checkpoints_from_args(args: argparse.Namespace) -> tuple[str, str, str | None]:
    """(corpus path or dataset label, checkpoint, ablation checkpoint): flags first, then the
    library's manifest."""
    manifest: dict = {}
    if getattr(args, "dataset", None):
        if not (args.annotations and args.features):
            raise ValueError("--dataset needs --annotations and --features")
        library, corpus = None, f"{args.dataset}:{args.annotations}"
    elif args.library:
        library = Path(args.library)
        corpus = str(library / "corpus.jsonl")
        if (library / "library.json").is_file():
            manifest = json.loads((library / "library.json").read_text())
    else:
        library, corpus = Path(args.corpus).parent, args.corpus
    checkpoint = args.checkpoint or (library and manifest_checkpoint(library, manifest, "model"))
    if not checkpoint:
        raise ValueError("no --checkpoint given" + (f" and {library / 'library.json'} names no model "
                                                    "(\"model\": {\"checkpoint\": ...})" if library else ""))
    ablation = args.ablation_checkpoint or (
        library and manifest_checkpoint(library, manifest, "model_no_regions")) or None
    return corpus, str(checkpoint), str(ablation) if ablation else None


def corpus_from_args(args: argparse.Namespace, ablation: bool = False) -> tuple[Corpus, str, str]:
    """(corpus, its label, the checkpoint: the ablation's with ``ablation``)."""
    label, checkpoint, ablation_checkpoint = checkpoints_from_args(args)
    if ablation:
        if not ablation_checkpoint:
            raise ValueError("--no-regions needs --ablation-checkpoint or library.json "
                             "'model_no_regions'")
        checkpoint = ablation_checkpoint
    if getattr(args, "dataset", None):
        return benchmark_corpus(args.dataset, args.annotations, args.features), label, checkpoint
    return read_corpus(label), label, checkpoint
