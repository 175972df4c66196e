"""What goes into the clip index, checked: unit-length float32 vectors and catalog clip ids."""

from __future__ import annotations

from typing import Any

import numpy as np


def unit_vectors(vectors: np.ndarray, dim: int | None = None, name: str = "vectors") -> np.ndarray:
    """``(N, D)`` float32 copy of ``vectors`` scaled to unit L2 norm; a 1-D input is one row."""
    x = np.array(vectors, dtype=np.float32, ndmin=2, copy=True)
    if x.ndim != 2:
        raise ValueError(f"{name} must be (N, D), got shape {np.shape(vectors)}")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{name} have width {x.shape[1]}, the index holds width {dim}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contain NaN or infinity")
    norms = np.linalg.norm(x, axis=1)
    if (norms == 0).any():
        raise ValueError(f"{name} row {int(np.argmin(norms))} is all zeros and has no direction")
    return np.ascontiguousarray(x / norms[:, None])


def clip_ids(ids: Any, count: int | None = None) -> np.ndarray:
    """``(N,)`` int64 ids: non-negative (-1 marks a missing result), unique, ``count`` of them."""
    arr = np.asarray(ids)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"ids must be a 1-D array of integers, got dtype {arr.dtype} shape {arr.shape}")
    arr = arr.astype(np.int64)
    if count is not None and arr.size != count:
        raise ValueError(f"got {arr.size} ids for {count} vectors")
    if (arr < 0).any():
        raise ValueError(f"ids must be >= 0 (catalog clip ids), got {int(arr.min())}")
    if np.unique(arr).size != arr.size:
        raise ValueError("ids contain duplicates")
    return arr
