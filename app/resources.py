"""Loaders cached for the whole server: the library, its searcher (model, tokenizer, FAISS index).

Which library: ``--library DIR`` after ``--`` on the command line, else ``ACTBERT_LIBRARY``, else
the embedded SynthKitchen demo (``indexer.synthkitchen.demo``: built on first launch, opened afterwards).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Callable

import streamlit as st

from indexer.features.transcripts import TranscriptError
from indexer.features.video import VideoError
from indexer.index.files import ClipIndexError
from indexer.index.search import Searcher
from indexer.library.store import Library, LibraryError

log = logging.getLogger(__name__)

_DEMO_LOCK = threading.Lock()
# Errors a page shows as a message instead of a traceback.
USER_ERRORS = (LibraryError, ClipIndexError, VideoError, TranscriptError, OSError, ValueError,
               KeyError, RuntimeError)


def configured_library() -> Path | None:
    """The library named by ``--library`` or ``ACTBERT_LIBRARY``; None means the demo."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--library")
    args, _ = parser.parse_known_args(sys.argv[1:])
    value = args.library or os.environ.get("ACTBERT_LIBRARY")
    return Path(value).expanduser() if value else None


def build_or_open_demo(progress: Callable[[str, float], None]) -> Path:
    """The demo library's folder, built on first use (one build at a time per server)."""
    try:
        from indexer.synthkitchen.demo import build_demo, default_library_dir
    except ImportError as exc:
        raise LibraryError(
            "no library configured and the embedded demo is not available "
            f"({exc}); start with ACTBERT_LIBRARY=DIR or `-- --library DIR`") from exc
    with _DEMO_LOCK:
        return Path(build_demo(default_library_dir(), progress=progress))


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
    except Exception as exc:  # a read-only folder: sqlite cannot create its WAL files
        log.info("opening %s read-only (%s)", path, exc)
        return Library(path, readonly=True)


@st.cache_resource(show_spinner="Loading the model and the index...")
def searcher(root: str, fingerprint: str) -> Searcher:
    """The library's searcher; ``fingerprint`` (of the recorded model) keys the cache."""
    return Searcher(open_library(root))


def get_searcher(library: Library) -> Searcher:
    model = library.manifest.get("model") or {}
    return searcher(str(library.root), str(model.get("fingerprint")))


def reset_caches() -> None:
    """After an ingest: reload the index and forget cached pictures."""
    searcher.clear()
    st.cache_data.clear()
