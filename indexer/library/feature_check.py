"""A feature file is checked whenever a writer writes or reads it, so one poison file (truncated,
NaN features, features of another width) marks its own video failed with the reason instead of
jamming every later command (each writer ends by embedding the finished clips).

The widths expected are the library model's input widths (``action.feature_size``,
``region.feature_size`` in its config.json): what embedding a clip needs. A library without a
model checks readability and finiteness only. ``quarantine`` moves a bad file to
``LIB/quarantine/`` (kept for inspection, out of the way of the next ingest); ``drop_unusable`` marks
the videos whose file is unusable failed (the clip index and the region index call it before they
read a video's features).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors import SafetensorError

from actbert.data import VideoFeatures
from indexer.errors import LibraryError
from indexer.library.store import Library, checked_path

log = logging.getLogger(__name__)

# What reading a feature file that is not one raises (header, JSON metadata, array shapes).
_READ_ERRORS = (SafetensorError, OSError, ValueError, KeyError, TypeError)


@dataclass(frozen=True)
class FeatureWidths:
    """Widths a library's feature files must have (None: not checked)."""

    action: int | None = None
    region: int | None = None

    @classmethod
    def of_checkpoint(cls, folder: str | Path) -> "FeatureWidths":
        """The input widths of the model in ``folder``; unchecked widths when its config is
        unreadable (loading the model reports why)."""
        try:
            config = json.loads((Path(folder) / "config.json").read_text())
            return cls(int(config["action"]["feature_size"]), int(config["region"]["feature_size"]))
        except (OSError, ValueError, KeyError, TypeError):
            return cls()

    @classmethod
    def of_library(cls, library: Library) -> "FeatureWidths":
        """The library model's input widths; unchecked widths when it records no usable model."""
        model = library.manifest.model
        if model is None:
            return cls()
        try:
            return cls.of_checkpoint(library.model_dir(model))
        except LibraryError:
            return cls()


def check_features(features: VideoFeatures, widths: FeatureWidths, name: str) -> None:
    """``LibraryError`` naming ``name`` unless every number is finite and the widths are expected."""
    for key in ("clip_start_sec", "clip_end_sec", "action_features", "action_scores", "region_features",
                "region_boxes_xyxy", "region_classes", "region_scores", "region_time_sec"):
        value = getattr(features, key)
        if value is not None and not np.isfinite(np.asarray(value, np.float64)).all():
            raise LibraryError(f"{name}: {key} holds NaN or infinite values")
    shapes = (("action_features", features.action_features, widths.action),
              ("region_features", features.region_features, widths.region))
    for key, value, width in shapes:
        if value.ndim != 2:
            raise LibraryError(f"{name}: {key} has shape {value.shape}, expected 2 dimensions")
        if width is not None and len(value) and value.shape[1] != width:
            raise LibraryError(f"{name}: {key} are {value.shape[1]} wide, the library's model takes "
                               f"{width} (made by another extractor?)")


def read_features(path: Path, widths: FeatureWidths, name: str | None = None) -> VideoFeatures:
    """The feature file at ``path``, checked (``check_features``); ``LibraryError`` naming it when
    it is missing, unreadable, truncated or fails a check."""
    name = name or path.name
    try:
        features = VideoFeatures.load(path)
    except _READ_ERRORS as exc:
        raise LibraryError(f"{name} is unreadable ({type(exc).__name__}: {exc})".splitlines()[0]) from exc
    check_features(features, widths, name)
    return features


def quarantine(library: Library, path: Path) -> str | None:
    """Move the bad feature file ``path`` (inside ``LIB/features``) to ``LIB/quarantine/``; returns
    its new path relative to the library, None when there was no file to move."""
    if not path.is_file():
        return None
    folder = library.root / "quarantine"
    folder.mkdir(exist_ok=True)
    target = checked_path(folder, path.name)
    os.replace(path, target)
    return str(target.relative_to(library.root))


def drop_unusable(library: Library, video_ids: list[str],
                  widths: FeatureWidths | None = None) -> dict[str, str]:
    """Videos among ``video_ids`` whose feature file is unusable (its recorded path leaves the
    library, it is missing, unreadable, not finite, of another width than the model takes, or
    disagrees with the catalog's clips): marked failed with the reason, the file moved to
    ``LIB/quarantine/`` (the next ingest redoes them). ``widths``: those the library's model takes
    unless given. Returns video id -> reason."""
    widths = widths or FeatureWidths.of_library(library)
    failed = {}
    for video_id in video_ids:
        row = library.catalog.video(video_id)
        path = None
        try:
            if not row["feature_path"]:
                raise LibraryError("no feature file recorded")
            path = library.file(row["feature_path"])
            features = read_features(path, widths, row["feature_path"])
            clips = len(library.catalog.clips_of(video_id))
            if features.num_clips != clips:
                raise LibraryError(f"{features.num_clips} feature clips but {clips} catalog clips")
        except LibraryError as exc:
            moved = quarantine(library, path) if path is not None else None
            reason = f"features unusable, re-ingest: {exc}".splitlines()[0][:500]
            library.catalog.mark_failed(row["id"], reason + (f" (file moved to {moved})" if moved else ""))
            failed[video_id] = reason
            log.warning("%s: %s", str(video_id)[:80], reason)
    return failed
