"""The one cache of a library's feature files, shared by every reader (search's rerank, the clip
inspector, the attention view).

A file is read once and again only when it is rewritten (a re-ingest changes its mtime). The
model inputs of one clip (``actbert.data.clip_inputs``, the clip contract) are cached beside it,
so a query's rerank builds each candidate's inputs once per server, not once per query.
"""

from __future__ import annotations

from functools import lru_cache

from safetensors import SafetensorError

from actbert.data import ClipInputs, VideoFeatures, clip_inputs
from indexer.errors import LibraryError
from indexer.library.store import Library


@lru_cache(maxsize=256)
def _features(path: str, mtime_ns: int) -> VideoFeatures:
    """The file's features; ``LibraryError`` (one line) when it cannot be read (truncated, not
    safetensors, missing arrays), so pages and commands say which file instead of a traceback."""
    try:
        return VideoFeatures.load(path)
    except (SafetensorError, ValueError, KeyError, TypeError, OSError) as exc:
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200]
        raise LibraryError(f"feature file {path} is unreadable ({reason}); re-ingest its video") from None


CLIP_INPUTS_CACHED = 1024  # ~150 kB each with 36 regions of 1024-d features (the mini preset)


@lru_cache(maxsize=CLIP_INPUTS_CACHED)
def _clip_inputs(path: str, mtime_ns: int, clip_index: int, max_regions: int) -> ClipInputs:
    return clip_inputs(_features(path, mtime_ns), [clip_index], max_regions)


def _file(library: Library, feature_path: str | None) -> tuple[str, int]:
    if not feature_path:
        raise LibraryError("this video has no feature file (it was not ingested)")
    path = library.file(feature_path)
    try:
        return str(path), path.stat().st_mtime_ns
    except OSError as exc:
        raise LibraryError(f"{feature_path} is unreadable ({exc.strerror}): re-ingest the video") from exc


def load_features(library: Library, feature_path: str | None) -> VideoFeatures:
    """A video's feature file (``feature_path`` relative to the library); ``LibraryError`` when
    there is none or it lies outside the library."""
    return _features(*_file(library, feature_path))


def clip_model_inputs(library: Library, feature_path: str | None, clip_index: int,
                      max_regions: int) -> ClipInputs:
    """One clip's model inputs by the clip contract (``clip_inputs(features, [clip_index],
    max_regions)``), cached until its feature file is rewritten. Callers must not modify them."""
    path, mtime_ns = _file(library, feature_path)
    features = _features(path, mtime_ns)
    if not 0 <= clip_index < features.num_clips:
        raise LibraryError(f"{feature_path} has {features.num_clips} clips, the catalog names clip "
                           f"{clip_index}: re-ingest the video")
    return _clip_inputs(path, mtime_ns, int(clip_index), int(max_regions))
