"""``python -m indexer <command> ...``: the indexer's command line (``indexer.cli``)."""

import sys

from indexer.cli import build_parser, main  # noqa: F401  (build_parser: for callers of this module)

if __name__ == "__main__":
    sys.exit(main())
