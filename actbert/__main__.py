"""``python -m actbert <command> ...``: ActBERT's command line (``actbert.cli``)."""

import sys

from actbert.cli import build_parser, main  # noqa: F401  (build_parser: for callers of this module)

if __name__ == "__main__":
    sys.exit(main())
