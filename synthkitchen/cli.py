"""CLI commands of the demo world: ``synthkitchen`` (generate a corpus), ``demo`` (build or open the
demo library), ``train-detector`` (a detector on a corpus's boxes). ``indexer.cli`` mounts them on the
``indexer`` command (the one place the product reaches up to the demo world)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from indexer.features import detector_train
from indexer.features.detector import ARCHS
from indexer.library.store import Library
from synthkitchen import corpus, demo, detection


def add_cli(sub: argparse._SubParsersAction) -> None:
    _add_synthkitchen(sub)
    _add_demo(sub)
    _add_train_detector(sub)


def _add_synthkitchen(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("synthkitchen", help="generate the SynthKitchen demo corpus",
                              description=corpus.__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--videos", type=int, default=40, help="number of videos (task instances)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--fps", type=int, default=24)
    p.add_argument("--step-sec", type=float, nargs=2, default=(3.0, 8.0), metavar=("MIN", "MAX"),
                   help="range of step durations, seconds")
    p.add_argument("--jobs", type=int, default=1, help="worker processes")
    p.set_defaults(func=run_synthkitchen)


def run_synthkitchen(args: argparse.Namespace) -> int:
    """Run the ``synthkitchen`` subcommand; prints a one-line summary."""
    t0 = time.perf_counter()
    paths = corpus.generate(args.out, args.videos, args.seed, size=(args.width, args.height), fps=args.fps,
                     step_sec=tuple(args.step_sec), jobs=args.jobs)
    print(f"synthkitchen: {len(paths)} videos in {args.out} ({time.perf_counter() - t0:.1f} s)")
    return 0


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="build (or open) the SynthKitchen demo library")
    p.add_argument("--library", help=f"folder (default {demo.default_library_dir()})")
    p.add_argument("--videos", type=int, default=demo.DemoSettings.videos)
    p.add_argument("--pretrain-steps", type=int, default=demo.DemoSettings.pretrain_steps)
    p.add_argument("--pretrain-seconds", type=float, default=demo.DemoSettings.pretrain_seconds,
                   help="pretraining time budget (stops early and checkpoints)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ablation", action="store_true",
                   help="with --pretrain: also pretrain the ablation without region cues")
    p.add_argument("--pretrain", action="store_true",
                   help="pretrain ActBERT on this library against the clock (--pretrain-seconds) "
                        "instead of installing the shipped model")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    """Build (or open) the demo library: a progress bar per stage on a terminal (stderr), nothing
    with ``--json`` or when stderr is not a terminal; then one summary line (or JSON object)."""
    from synthkitchen.build_progress import TerminalProgress

    t0 = time.perf_counter()
    settings = demo.DemoSettings(videos=args.videos, pretrain_steps=args.pretrain_steps,
                            pretrain_seconds=args.pretrain_seconds, seed=args.seed,
                            ablation=args.ablation, pretrain=args.pretrain)
    terminal = TerminalProgress(disable=True if args.json else None)
    try:
        root = demo.build_demo(args.library, settings, terminal)
    finally:
        terminal.close()
    report = {"library": str(root), "seconds": round(time.perf_counter() - t0, 1),
              "stages": Library(root, readonly=True).manifest.demo}
    print(json.dumps(report) if args.json else f"demo library ready: {root} ({report['seconds']} s)")
    return 0


def _add_train_detector(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train-detector", help="train a detector on a SynthKitchen corpus's boxes",
                              description=detection.__doc__.split("\n\n")[1])
    p.add_argument("--corpus", type=Path, required=True, help="SynthKitchen corpus directory")
    p.add_argument("--out", type=Path, required=True, help="checkpoint path (X.safetensors; X.json beside it)")
    p.add_argument("--arch", choices=ARCHS, default="tiny")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=None, help="AdamW learning rate (default by architecture)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--every-n-frames", type=int, default=12, help="take every N-th frame of each video")
    p.add_argument("--min-size", type=int, default=None, help="detector input short side, pixels")
    p.add_argument("--max-size", type=int, default=None, help="detector input long side, pixels")
    p.add_argument("--pretrained-backbone", action="store_true", help="start from ImageNet (downloads)")
    p.add_argument("--max-minutes", type=float, default=None, help="stop training after this long")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--json", action="store_true", help="print the training report as JSON")
    p.set_defaults(func=run_train_detector)


def run_train_detector(args: argparse.Namespace) -> int:
    """The ``train-detector`` command: train on the train split, mAP@0.5 on the val split, save."""
    if args.threads:
        torch.set_num_threads(args.threads)
    names = detection.synthkitchen_class_names(args.corpus)
    train = list(detection.synthkitchen_detection_samples(args.corpus, "train", args.every_n_frames))
    val = list(detection.synthkitchen_detection_samples(args.corpus, "val", args.every_n_frames))
    if not train:
        raise ValueError(f"train-detector: {args.corpus} has no train-split videos")
    report = detector_train.train_detector(train, names, arch=args.arch, epochs=args.epochs, batch_size=args.batch_size,
                            lr=args.lr, seed=args.seed, out_path=args.out, val_samples=val or None,
                            min_size=args.min_size, max_size=args.max_size,
                            pretrained_backbone=args.pretrained_backbone,
                            max_train_sec=args.max_minutes * 60 if args.max_minutes else None)
    report.pop("model")
    if args.json:
        print(json.dumps(report))
    else:
        print(f"train-detector: {args.arch} on {report['num_train_frames']} frames in {report['train_sec']:.1f} s, "
              f"val mAP@0.5 {report.get('val_map50')}, saved {report['checkpoint']}")
    return 0
