"""Clip vectors: every clip of a library encoded by the library's ActBERT model.

A clip's vector is ``encode_video`` of that clip alone (one action slot, its regions and the global
region token), built by the clip contract ``actbert.data.clip_batch`` with the model's own region
limit (``config.max_regions``), exactly as evaluation scores it. The model that produced the
vectors is named in the library manifest (``model``: checkpoint path relative to the library, a
fingerprint of its weights and its region limit) and in the index manifest, so opening an index
built by another model is a clear error.
"""

from __future__ import annotations

import hashlib
import json
import logging
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from actbert.checkpoint import CheckpointError
from actbert.data import VideoFeatures, clip_batch, drop_regions
from actbert.model import ActBertForPretraining
from indexer.errors import LibraryError, ModelError
from indexer.library.manifest import ModelEntry
from indexer.library.store import Library

log = logging.getLogger(__name__)

def model_fingerprint(checkpoint_dir: str | Path) -> str:
    """sha256 of the checkpoint's weights and config (first 16 hex digits)."""
    digest = hashlib.sha256()
    for name in ("config.json", "model.safetensors"):
        with open(Path(checkpoint_dir) / name, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def model_entry(library_root: Path, checkpoint_dir: str | Path) -> ModelEntry:
    """The ``model`` entry library.json names for ``checkpoint_dir`` (its path relative to the
    library when inside it, its fingerprint, its region limit); reads the checkpoint's files."""
    path = Path(checkpoint_dir).resolve()
    stored = str(path.relative_to(library_root)) if library_root in path.parents else str(path)
    config = json.loads((path / "config.json").read_text())
    return ModelEntry(stored, model_fingerprint(path), int(config.get("max_regions", 36)))


def set_library_model(library: Library, checkpoint_dir: str | Path) -> ModelEntry:
    """Record the model used for this library's vectors (``model_entry``)."""
    model = model_entry(library.root, checkpoint_dir)
    library.update_manifest(model=model)
    return model


def library_model_dir(library: Library, checkpoint: str | Path | None = None) -> Path:
    """The checkpoint to use: the one named, else the library's recorded model."""
    if checkpoint:
        return Path(checkpoint)
    if library.manifest.model is None:
        raise LibraryError(f"{library.root} records no model: train one (`python -m indexer demo` "
                           "or `python -m actbert train`) or pass --checkpoint")
    return library.model_dir(library.manifest.model)


def load_model(checkpoint_dir: str) -> ActBertForPretraining:
    """The checkpoint's model (eval mode), cached per process until its weights file changes."""
    weights = Path(checkpoint_dir) / "model.safetensors"
    stamp = weights.stat().st_mtime_ns if weights.is_file() else 0
    return _load_model(str(checkpoint_dir), stamp)


@lru_cache(maxsize=4)
def _load_model(checkpoint_dir: str, mtime_ns: int) -> ActBertForPretraining:
    try:
        return ActBertForPretraining.from_pretrained(checkpoint_dir).eval()
    except CheckpointError as exc:
        raise ModelError(f"the library's model cannot be loaded: {exc}") from exc


def clip_batches(features: VideoFeatures, max_regions: int, batch_size: int = 64):
    """Model video-side inputs for every clip of a video, in batches: (clip indices, inputs)."""
    clips = list(range(features.num_clips))
    for start in range(0, len(clips), batch_size):
        chunk = clips[start:start + batch_size]
        yield chunk, clip_batch(features, chunk, max_regions)[0]


@torch.no_grad()
def embed_video(model: ActBertForPretraining, features: VideoFeatures,
                batch_size: int = 64, use_regions: bool = True) -> np.ndarray:
    """(C, E) float32 unit vectors, one per clip (``use_regions=False``: every region removed,
    as a model pretrained without regions is fed)."""
    out = []
    for _, batch in clip_batches(features, model.config.max_regions, batch_size):
        batch = batch if use_regions else drop_regions(batch)
        out.append(model.encode_video(**batch).float().numpy())
    return np.concatenate(out) if out else np.zeros((0, model.config.embed_size), np.float32)


def embed_library(library: Library, model: ActBertForPretraining,
                  video_ids: list[str] | None = None,
                  use_regions: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Vectors and catalog clip ids of every finished video (or of ``video_ids``)."""
    vectors, ids = [], []
    rows = library.catalog.videos("done")
    for row in rows:
        if video_ids is not None and row["video_id"] not in video_ids:
            continue
        clip_rows = library.catalog.clips_of(row["video_id"])
        if not clip_rows:
            continue
        features = VideoFeatures.load(library.file(row["feature_path"]))
        vecs = embed_video(model, features, use_regions=use_regions)
        if len(vecs) != len(clip_rows):
            raise LibraryError(f"{row['video_id']}: {len(vecs)} feature clips but "
                               f"{len(clip_rows)} catalog clips; re-ingest it")
        vectors.append(vecs)
        ids.extend(r["id"] for r in clip_rows)
    if not vectors:
        return np.zeros((0, model.config.embed_size), np.float32), np.zeros(0, np.int64)
    return np.concatenate(vectors), np.array(ids, np.int64)
