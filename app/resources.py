"""Loaders cached for the whole server: the library and its clip service (model, tokenizer, FAISS
index), warmed when the server opens the library so the first query costs what later ones do.

Which library: ``--library DIR`` after ``--`` on the command line, else ``ACTBERT_LIBRARY``, else
the embedded SynthKitchen demo (``synthkitchen.demo``: built on first launch by a builder
process in the background, video by video, and searched while it grows; opened afterwards).
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import streamlit as st

from indexer.errors import ExplorerError, LibraryError
from indexer.index.search import Searcher
from indexer.index.service import ClipService
from indexer.library.manifest import read_manifest
from indexer.library.store import Library

log = logging.getLogger(__name__)

_DEMO_LOCK = threading.Lock()
_BUILDERS: dict[Path, subprocess.Popen] = {}  # the demo builders this server started
ROOT = Path(__file__).resolve().parents[1]
# The only errors a page shows as a message (``indexer.errors``); anything else is a bug and
# surfaces with its traceback (Streamlit's error box and the server log).
USER_ERRORS = (ExplorerError,)


def configured_library() -> Path | None:
    """The library named by ``--library`` or ``ACTBERT_LIBRARY``; None means the demo."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--library")
    args, _ = parser.parse_known_args(sys.argv[1:])
    value = args.library or os.environ.get("ACTBERT_LIBRARY")
    return Path(value).expanduser() if value else None


def demo_videos() -> int | None:
    """``--demo-videos N`` after ``--``: a smaller demo (tests, quick looks); None: the default."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--demo-videos", type=int)
    args, _ = parser.parse_known_args(sys.argv[1:])
    return args.demo_videos


def demo_folder() -> Path:
    """Where the embedded demo library lives (``synthkitchen.demo.default_library_dir``)."""
    try:
        from synthkitchen.demo import default_library_dir
    except ImportError as exc:
        raise LibraryError(
            "no library configured and the embedded demo is not available "
            f"({exc}); start with ACTBERT_LIBRARY=DIR or `-- --library DIR`") from exc
    return default_library_dir()


def demo_state(root: Path) -> str:
    """``built`` (open it), ``searchable`` (being built, its model and index are there: pages
    work on what is ready) or ``starting`` (being built, nothing to open yet)."""
    from synthkitchen.demo import is_built

    if is_built(root):
        return "built"
    try:
        model = read_manifest(root / "library.json").model
    except LibraryError:  # none yet, or unreadable
        return "starting"
    return "searchable" if model and (root / "index" / "manifest.json").is_file() else "starting"


def start_demo_build(root: Path) -> None:
    """Start ``python -m indexer demo --library ROOT`` in the background unless a builder of this
    folder is alive (its progress record names it); at most one start per server and folder (a
    build that failed says so on the panel; restarting the explorer resumes it). Its output goes
    to ``ROOT.parent/demo-build.log``. The builder outlives a stopped server and resumes where a
    killed one stopped."""
    from synthkitchen import build_progress

    with _DEMO_LOCK:
        progress = build_progress.read(root)
        if progress is not None and progress.running():
            return
        if root in _BUILDERS:  # running, or stopped (its error is on the panel): not again
            return
        root.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "indexer", "demo", "--library", str(root), "--json"]
        if demo_videos():
            command += ["--videos", str(demo_videos())]
        with open(root.parent / "demo-build.log", "ab") as log_file:
            _BUILDERS[root] = subprocess.Popen(command, cwd=ROOT, stdout=log_file, stderr=log_file,
                                               stdin=subprocess.DEVNULL)
        log.info("building the demo library in %s (pid %d)", root, _BUILDERS[root].pid)


def demo_builder_pid(root: Path) -> int | None:
    """The pid of the demo builder this server started for ``root``, while it runs."""
    process = _BUILDERS.get(root)
    return process.pid if process is not None and process.poll() is None else None


@st.cache_resource(show_spinner="Opening the library...")
def open_library(root: str) -> Library:
    """The library at ``root`` (read-write when the folder allows it, else read-only)."""
    path = Path(root)
    if not path.exists():
        raise LibraryError(f"{path} does not exist: set ACTBERT_LIBRARY or --library to a library "
                           "folder, or unset it to use the demo")
    try:
        return Library(path)
    except LibraryError:
        raise
    except Exception as exc:  # a read-only folder: sqlite cannot create its WAL files (retried)
        log.info("opening %s read-only (%s)", path, exc)
        return Library(path, readonly=True)


@st.cache_resource(show_spinner="Loading the model and the index...")
def searcher(root: str, fingerprint: str) -> Searcher:
    """The library's searcher, warmed up; ``fingerprint`` (of the recorded model) keys the cache."""
    loaded = Searcher(open_library(root))
    loaded.warm_up()
    return loaded


def get_searcher(library: Library) -> Searcher:
    """The library's searcher, its index reopened when a writer saved a new one (the demo build
    adds each video as it goes)."""
    loaded = searcher(str(library.root), str(library.manifest.model_fingerprint))
    loaded.refresh_index()
    return loaded


def get_service(library: Library) -> ClipService:
    """The clip service of ``library`` (its searcher loaded and warm)."""
    return ClipService(library, get_searcher(library))


def warm(library: Library) -> None:
    """Load and warm the searcher at launch; a library without a usable model only logs why
    (the pages say it again where they need the model)."""
    try:
        get_searcher(library)
    except ExplorerError as exc:
        log.info("no search for %s yet: %s", library.root, exc)


@st.cache_resource(show_spinner="Loading the second model and its index...", max_entries=2)
def compare_searcher(root: str, fingerprint: str, checkpoint: str):
    """The second model's searcher (``indexer.index.compare``; its index embedded on first use)."""
    from indexer.index.compare import second_searcher

    return second_searcher(searcher(root, fingerprint), checkpoint or None)


def get_compare_searcher(library: Library, checkpoint: str = ""):
    return compare_searcher(str(library.root), str(library.manifest.model_fingerprint), checkpoint)


@st.cache_data(show_spinner=False, max_entries=16)
def _content_fingerprint(root: str, stamp: tuple) -> str:
    return open_library(root).catalog.content_fingerprint()


def fingerprints(library: Library) -> dict[str, str]:
    """What a shared link records of the served view: ``library`` (the catalog's finished clips,
    ``Catalog.content_fingerprint``; recomputed when the catalog's files change) and ``model``
    (the recorded model's fingerprint, ``indexer.index.embed.model_fingerprint``)."""
    stamp = tuple((p.stat().st_mtime_ns, p.stat().st_size) if p.exists() else None
                  for p in (library.root / "catalog.sqlite", library.root / "catalog.sqlite-wal"))
    return {"library": _content_fingerprint(str(library.root), stamp),
            "model": str(library.manifest.model_fingerprint or "none")}


def reset_caches() -> None:
    """After an ingest: reload the index and forget cached pictures."""
    searcher.clear()
    compare_searcher.clear()
    st.cache_data.clear()
