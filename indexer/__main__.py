"""Command line: ``python -m indexer <command> ...`` (``--help`` on each).

Every command exits non-zero with a one-line reason on stderr when it fails.
"""

from __future__ import annotations

import argparse
import logging
import sys

from indexer import (cli_library, cli_models, cli_search, demo, detector_train, export, index_files,
                     synthkitchen)
from indexer.index_files import ClipIndexError
from indexer.store import LibraryError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m indexer", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    subparsers = parser.add_subparsers(dest="command", required=True)
    synthkitchen.add_cli(subparsers)
    cli_library.add_cli(subparsers)
    cli_search.add_cli(subparsers)
    demo.add_cli(subparsers)
    cli_models.add_cli(subparsers)
    detector_train.add_cli(subparsers)
    index_files.add_cli(subparsers)
    export.add_cli(subparsers)
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


if __name__ == "__main__":
    sys.exit(main())
