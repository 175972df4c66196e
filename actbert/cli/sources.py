"""The source options ``evaluate`` and ``finetune`` share: a library, a corpus file or a paper
benchmark (``--dataset`` with ``--annotations`` and ``--features``, ``actbert.benchmarks``), and
the checkpoints (flags first, then the library's manifest ``library.json``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..benchmarks.corpus import benchmark_corpus
from ..benchmarks.registry import DATASETS
from ..checkpoint import manifest_checkpoint
from ..corpus import Corpus, read_corpus


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
