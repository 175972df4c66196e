"""The one way files are replaced on disk: write a temporary file beside the target, fsync it,
rename it over the target. Readers see the old file or the new one, never half of one; a writer
killed midway leaves only a ``.NAME.tmp-*`` file, which the next writer's cleanup removes."""

from __future__ import annotations

import json
import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


def temp_path(path: str | Path, suffix: str = "") -> Path:
    """A fresh temporary name beside ``path``: ``.NAME.tmp-PID-RANDOM`` + ``suffix`` (for writers
    that pick the format from the extension)."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}")


def fsync_file(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yields a temporary path to write; when the block ends normally the file is fsynced and
    renamed over ``path`` (its folder is created if needed); on an exception it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path, suffix)
    try:
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: str | Path, write) -> None:
    """``write(tmp)`` writes the new content to a temporary path that then replaces ``path``."""
    with atomic_path(path) as tmp:
        write(tmp)


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, data: Any, **dumps: Any) -> None:
    """``path`` replaced by ``json.dumps(data, **dumps)``."""
    write_text(path, json.dumps(data, **dumps))
