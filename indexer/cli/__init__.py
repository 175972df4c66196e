"""Command line: ``indexer <command> ...`` or ``python -m indexer <command> ...`` (``--help`` on each).

Every command exits non-zero with a one-line reason on stderr when it fails, and its ``--help``
ends with an example. The commands live in this package, one module per subject:
``indexer.cli.library`` (ingest, status, merge, delete, repair, export-corpus),
``indexer.cli.search`` (search, similar, reindex), ``indexer.cli.milvus`` (export-milvus),
``indexer.cli.models`` (train-actions, fetch-weights), ``indexer.cli.features`` (import-features, index-info).
The demo world's commands (synthkitchen, demo, train-detector) live in ``synthkitchen.cli`` and are mounted
here: this package is the one place the product imports ``synthkitchen``.
"""

from __future__ import annotations

import argparse
import logging
import sys

from indexer.cli import features, library, milvus, models, search
from indexer.errors import ExplorerError
from synthkitchen import cli as synthkitchen_cli
from synthkitchen import ground_truth as synthkitchen_ground_truth

EXAMPLES = {
    "synthkitchen": "indexer synthkitchen --out corpus --videos 40 --seed 0",
    "demo": "indexer demo --library fresh --seed 7 --videos 60",
    "train-detector": "indexer train-detector --corpus corpus --out models/detector --max-minutes 14",
    "ingest": "indexer ingest ~/videos --library lib --preset fast --detector models/detector.safetensors",
    "status": "indexer status lib --json",
    "merge": "indexer merge lib shard0 shard1",
    "delete": "indexer delete lib VIDEO_ID",
    "repair": "indexer repair lib --json",
    "export-corpus": "indexer export-corpus lib",
    "search": 'indexer search lib "pour milk into the cup" --k 10 --rerank auto --mode hybrid --json',
    "similar": "indexer similar lib 42 --k 10",
    "reindex": "indexer reindex lib --checkpoint runs/mini/last",
    "train-actions": "indexer train-actions lib --json",
    "fetch-weights": "indexer fetch-weights --json",
    "import-features": "indexer import-features --video-id v1 --actions v1_actions.npy --window-sec 4 "
                       "--regions v1_regions.tsv --out lib/features/v1.safetensors",
    "index-info": "indexer index-info lib/index --json",
    "export-milvus": "indexer export-milvus lib --uri lib/milvus.db --json",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="indexer", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    subparsers = parser.add_subparsers(dest="command", required=True)
    synthkitchen_cli.add_cli(subparsers)
    library.add_cli(subparsers)
    library.add_export_cli(subparsers)
    search.add_cli(subparsers)
    models.add_cli(subparsers)
    milvus.add_cli(subparsers)
    features.add_cli(subparsers)
    for name, command in subparsers.choices.items():
        command.epilog = f"example:\n  {EXAMPLES[name]}"
        command.formatter_class = argparse.RawDescriptionHelpFormatter
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    synthkitchen_ground_truth.register()  # ingest and export-corpus read SynthKitchen's ground truth
    try:
        return int(args.func(args))
    except (ExplorerError, OSError, ValueError) as exc:  # bad input: a one-line reason
        print(f"error: {exc}".splitlines()[0], file=sys.stderr)
        return 1
