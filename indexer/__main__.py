"""Command line: ``python -m indexer <command> ...`` (``--help`` on each).

Every command exits non-zero with a one-line reason on stderr when it fails.
"""

from __future__ import annotations

import argparse
import logging
import sys

from indexer import cli_library, synthkitchen
from indexer.store import LibraryError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m indexer", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    subparsers = parser.add_subparsers(dest="command", required=True)
    synthkitchen.add_cli(subparsers)
    cli_library.add_cli(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except (LibraryError, OSError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}".splitlines()[0], file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
