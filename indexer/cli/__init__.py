"""Command line: ``indexer <command> ...`` or ``python -m indexer <command> ...`` (``--help`` on each).

Every command exits non-zero with a one-line reason on stderr when it fails. The commands are
defined beside what they drive: ``indexer.cli.library`` (ingest, status, merge, delete, repair),
``indexer.cli.search`` (search, similar, reindex), ``indexer.cli.milvus`` (export-milvus), ``indexer.cli.models`` (train-actions,
fetch-weights), ``indexer.library.export`` (export-corpus), ``indexer.index.files`` (index-info) and
the demo corpus's own (``indexer.synthkitchen``: synthkitchen, demo, train-detector).
"""

from __future__ import annotations

import argparse
import logging
import sys

from indexer.cli import library, milvus, models, search
from indexer.index import files as index_files
from indexer.index.files import ClipIndexError
from indexer.library import export
from indexer.library.store import LibraryError
from indexer.synthkitchen import corpus, demo, detector_train


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m indexer", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    subparsers = parser.add_subparsers(dest="command", required=True)
    corpus.add_cli(subparsers)
    library.add_cli(subparsers)
    search.add_cli(subparsers)
    demo.add_cli(subparsers)
    models.add_cli(subparsers)
    detector_train.add_cli(subparsers)
    index_files.add_cli(subparsers)
    export.add_cli(subparsers)
    milvus.add_cli(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except (LibraryError, ClipIndexError, KeyError, OSError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}".splitlines()[0], file=sys.stderr)
        return 1
