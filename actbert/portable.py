"""Recorded commands and paths without a machine's folders: what ``actbert evaluate`` keeps beside a
model (``evaluation_<split>.json``: ``command``, ``corpus``), what its report card prints and what the
explorer's Model page shows, so a record made on one machine says nothing of its folders and reads
the same everywhere.

Rules (``portable_command``): an absolute path (or one starting with ``~``) inside the library
becomes ``<library>/relative/path`` (``<library>`` for the library itself); any other absolute path
becomes a placeholder named by its option: ``--corpus /data/x.jsonl`` -> ``--corpus <corpus>``,
``--report=/tmp/r`` -> ``--report=<report>``, a positional one ``<path>``. Relative paths and other
arguments are kept. Applying the rules twice changes nothing.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

LIBRARY = "<library>"
_PLAIN = re.compile(r"[\w@%+=:,./<>-]+")  # a token that needs no shell quoting in the shown text


def _is_path(text: str) -> bool:
    return text.startswith(("/", "~"))


def portable_path(path: str | Path, library: str | Path | None = None, name: str = "path") -> str:
    """``path`` as a record shows it: ``<library>/...`` inside ``library``, ``<name>`` for any
    other absolute path, unchanged when relative."""
    text = str(path)
    if not _is_path(text):
        return text
    if library is not None:
        resolved = Path(text).expanduser().resolve()
        root = Path(library).expanduser().resolve()
        if resolved == root:
            return LIBRARY
        if root in resolved.parents:
            return f"{LIBRARY}/{resolved.relative_to(root).as_posix()}"
    return f"<{name}>"


def portable_command(command: str | list[str], library: str | Path | None = None) -> str:
    """The command line (a string, split as a shell would, or its argv) with its paths made
    portable (see the module docstring)."""
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    out: list[str] = []
    for i, token in enumerate(argv):
        previous = argv[i - 1] if i else ""
        if token.startswith("--") and "=" in token:
            flag, value = token.split("=", 1)
            token = f"{flag}={portable_path(value, library, flag.lstrip('-'))}"
        elif previous.startswith("-") and "=" not in previous and _is_path(token):
            token = portable_path(token, library, previous.lstrip("-"))
        elif _is_path(token):
            token = portable_path(token, library, "path")
        out.append(token)
    return " ".join(t if _PLAIN.fullmatch(t) else shlex.quote(t) for t in out)


def library_of(checkpoint: str | Path) -> Path | None:
    """The library folder holding ``checkpoint`` (the nearest parent with a ``library.json``)."""
    for folder in Path(checkpoint).expanduser().resolve().parents:
        if (folder / "library.json").is_file():
            return folder
    return None
