"""``VectorIndex``: what every index of unit vectors keyed by catalog ids answers, whichever engine
holds it: ``ClipIndex`` (FAISS in the library folder; also the region index and a second model's
index) and ``MilvusIndex`` (a Milvus collection). The writing commands keep either equal to the
catalog (``indexer.index.reconcile``); search and the explorer use only what is declared here.

Scores are cosines (unit vectors, inner product). Ids are int64 catalog ids (-1 pads a result
with fewer than ``k`` hits, its score -inf). ``KeyedVectors`` is the bookkeeping both engines
share: the sorted ids held, mirrored beside the engine so that ``len``, ``in`` and ``ids()`` never
ask it, and ``similar`` built on ``search``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = ["KeyedVectors", "VectorIndex"]


@runtime_checkable
class VectorIndex(Protocol):
    """An index of unit vectors ``(N, D)`` under int64 ids."""

    model: Any          # the record of what made the vectors (library.json's model entry, as JSON)
    factory: str        # the engine's index type ("IDMap2,Flat", "IVF1024_HNSW32,Flat", "milvus")
    nprobe: int         # inverted lists visited per query (1 where that means nothing)
    filters: bool       # search() also takes video= and task= and filters inside the engine
    on_gpu: bool        # searches run on GPUs

    @property
    def dim(self) -> int: ...

    def __len__(self) -> int: ...

    def __contains__(self, clip_id: int) -> bool: ...

    def ids(self) -> np.ndarray:
        """Sorted ``(N,)`` int64 ids held, to compare with the catalog."""

    def add(self, vectors: np.ndarray, ids: Any) -> None:
        """Add ``vectors`` ``(N, D)`` under ``ids`` ``(N,)``; an id already held is replaced."""

    def remove(self, ids: Any) -> int:
        """Remove ``ids``; those not held are ignored. Returns how many were removed."""

    def needs_rebuild(self) -> bool:
        """Whether the engine recommends rebuilding for the size it has grown to."""

    def reconstruct(self, clip_id: int) -> np.ndarray:
        """The stored unit vector ``(D,)`` of ``clip_id``; KeyError if absent."""

    def reconstruct_many(self, ids: np.ndarray) -> np.ndarray:
        """Stored unit vectors ``(N, D)`` of ``ids`` ``(N,)``, all held."""

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` per query ``(Q, D)`` (or one ``(D,)``), best first: ``(scores, ids)``, each
        ``(Q, k)``, padded with -inf / -1."""

    def similar(self, clip_id: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest to ``clip_id``'s own vector, itself excluded: ``(scores, ids)``, ``(k,)``."""

    def save(self, directory: str | Path) -> Any:
        """Make the changes durable (FAISS: write ``directory``; Milvus: flush)."""


class KeyedVectors:
    """The id bookkeeping of a ``VectorIndex``: ``_held``, the sorted int64 ids it holds, which the
    engine's changes keep in step (``_hold`` after an add, ``_held_among`` + ``_forget`` around a
    removal); subclasses provide ``search`` and ``reconstruct``."""

    _held: np.ndarray

    def __len__(self) -> int:
        return int(self._held.size)

    def __contains__(self, clip_id: int) -> bool:
        pos = np.searchsorted(self._held, clip_id)
        return bool(pos < self._held.size and self._held[pos] == clip_id)

    def ids(self) -> np.ndarray:
        """Sorted ``(N,)`` int64 ids held, to compare with the catalog."""
        return self._held.copy()

    def _hold(self, labels: np.ndarray) -> None:
        self._held = np.union1d(self._held, labels)

    def _held_among(self, ids: Any) -> np.ndarray:
        """The distinct ``ids`` held, sorted."""
        labels = np.unique(np.asarray(ids, dtype=np.int64).reshape(-1))
        return labels[np.isin(labels, self._held)]

    def _forget(self, held: np.ndarray) -> None:
        """Drop ``held`` (ids held, distinct) from the bookkeeping once the engine removed them."""
        self._held = np.setdiff1d(self._held, held, assume_unique=True)

    def similar(self, clip_id: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest to ``clip_id``'s own vector, itself excluded: ``(scores, ids)``, ``(k,)``."""
        scores, labels = self.search(self.reconstruct(clip_id), int(k) + 1)
        keep = labels[0] != int(clip_id)
        return scores[0][keep][:k], labels[0][keep][:k]
