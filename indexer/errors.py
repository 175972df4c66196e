"""What can go wrong that a user can act on: the only errors the app shows as messages.

Every class here says what failed and how to fix it, in words for the person who ran the command
or opened the page. Anything else raised below the app (a ``KeyError``, a ``RuntimeError`` from
torch, an ``OSError`` nobody anticipated) is a bug: the app lets it surface with its traceback in
the log instead of dressing it up as a message, and the CLI reports it as a crash.

Families: ``LibraryError`` (a library folder, its catalog or feature files), ``ClipIndexError``
(the FAISS index files; subclasses in ``indexer.index.files``), ``VideoError`` (decoding a video;
subclasses in ``indexer.features.video``), ``TranscriptError`` (subtitles and captions),
``ModelError`` (the library's model checkpoint), ``QueryError`` (a query or clip id typed by the
user; also a ``ValueError``, what such input has always raised).
"""

from __future__ import annotations

from pathlib import Path


class ExplorerError(Exception):
    """An error the user can act on; its message names the cause and the fix."""


class LibraryError(ExplorerError):
    """A library folder that cannot be opened or used, with the reason and the fix."""


class LibraryBusyError(LibraryError):
    """Another command holds the library's writer lock."""


class ClipIndexError(ExplorerError):
    """A saved clip index cannot be used; the message says why and how to rebuild it."""

    def __init__(self, problem: str, library: str | Path | None = None) -> None:
        lib = str(library) if library is not None else "LIB"
        super().__init__(f"{problem}. Rebuild the index with `python -m indexer reindex {lib}`"
                         + ("" if library is not None else " (LIB: the library directory)"))
        self.problem = problem


class VideoError(ExplorerError):
    """A video file that cannot be read."""


class TranscriptError(ExplorerError):
    """A transcript or caption file that cannot be parsed."""


class ModelError(ExplorerError):
    """The library's model cannot be loaded or does not fit the library."""


class QueryError(ExplorerError, ValueError):
    """A query, clip id or option typed by the user that cannot be used."""
