"""Ingestion's reader, before any decoding: which videos a run covers and what each file comes with.

The video files under the folders named (``discover``) and the folders themselves (``source_folders``),
each video's stable id (``video_id_for``) and content identity (``fingerprint``), the deterministic
``--shard i/n`` subset (``parse_shard``, ``shard_of``), and the sidecar transcript's cues
(``sidecar_transcript``). Used by ``indexer.library.ingest``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from stat import S_ISREG
from dataclasses import replace
from pathlib import Path

from indexer.features.transcripts import TranscriptError, find_sidecar, load_transcript

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = {".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi"}
# Caption text kept per cue: a clip's narration is a few sentences; spaCy refuses texts over
# 1,000,000 characters (E088), as a one-line subtitle file of megabytes would be.
MAX_CUE_CHARS = 2_000


def discover(paths: list[str | Path], problems: list[str] | None = None) -> list[Path]:
    """Video files named directly or found (recursively, not into symlinked folders) in folders,
    sorted, without duplicates. Symlinks are resolved; a broken or looping one is kept as it is, and
    so is a FIFO, socket or device with a video's name (ingest records each failed with the reason,
    without opening it). A folder that cannot be listed is named in ``problems``, not skipped silently."""
    found: set[Path] = set()
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            for folder, _, names in os.walk(path, onerror=lambda exc: _unlisted(exc, problems)):
                candidates = (Path(folder) / n for n in names if Path(n).suffix.lower() in VIDEO_EXTENSIONS)
                found |= {resolved_path(p) for p in candidates if p.is_symlink() or not p.is_dir()}
        elif path.exists() or path.is_symlink():
            found.add(resolved_path(path))
        else:
            raise FileNotFoundError(f"{raw}: no such file or folder")
    return sorted(found)


def _unlisted(exc: OSError, problems: list[str] | None) -> None:
    message = f"{exc.filename}: folder not searched ({exc.strerror})"
    log.warning(message)
    if problems is not None:
        problems.append(message)


def resolved_path(path: Path) -> Path:
    """``path`` with its symlinks resolved; a broken or looping link stays as it is (absolute)."""
    try:
        return path.resolve(strict=True)
    except (OSError, RuntimeError):  # broken link, or a loop (RuntimeError before Python 3.13)
        return path.absolute()


def source_folders(paths: list[str | Path]) -> list[Path]:
    """The folders the user named (a named file gives its folder as named, not its target's)."""
    folders = []
    for raw in paths:
        path = Path(raw).expanduser().absolute()
        folders.append((path if path.is_dir() else path.parent).resolve())
    return folders


def video_id_for(path: Path) -> str:
    """A stable, filesystem-safe id: the file stem plus a short hash of the full path."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem)[:80] or "video"
    return f"{stem}-{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"


def fingerprint(path: Path) -> str:
    """Size, modification time and a hash of the first 64 KiB: changes when the file does. Only a
    regular file is opened (a FIFO would block the open forever)."""
    stat = path.stat()
    if not S_ISREG(stat.st_mode):
        return f"not a regular file:{stat.st_mode:o}:{stat.st_mtime_ns}"
    with open(path, "rb") as handle:
        head = hashlib.sha1(handle.read(65536)).hexdigest()[:16]
    return f"{stat.st_size}:{stat.st_mtime_ns}:{head}"


def shard_of(video_id: str, num_shards: int) -> int:
    return int(hashlib.sha1(video_id.encode()).hexdigest(), 16) % num_shards


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"i/n"`` -> (i, n) with 0 <= i < n."""
    if not text:
        return None
    match = re.fullmatch(r"(\d+)/(\d+)", text)
    if not match or not 0 <= int(match[1]) < int(match[2]):
        raise ValueError(f"--shard expects i/n with 0 <= i < n, got {text!r}")
    return int(match[1]), int(match[2])


def sidecar_transcript(path: Path, warnings: list[str]) -> tuple[list, Path | None]:
    """The video's cues (over-long texts cut) and sidecar; problems become ``warnings``."""
    sidecar = find_sidecar(path)
    if sidecar is None:
        warnings.append("no transcript: fixed windows, no narration")
        return [], None
    try:
        cues = load_transcript(sidecar)
    except TranscriptError as exc:
        warnings.append(f"transcript {sidecar.name} unusable ({exc}): fixed windows")
        return [], sidecar
    long = sum(len(c.text) > MAX_CUE_CHARS for c in cues)
    if long:
        warnings.append(f"transcript {sidecar.name}: {long} cues longer than {MAX_CUE_CHARS:,} "
                        "characters were cut")
        cues = [replace(c, text=c.text[:MAX_CUE_CHARS]) for c in cues]
    return cues, sidecar
