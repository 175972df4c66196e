"""``ClipIndex``: the FAISS index over clip vectors, keyed by the catalog's int64 clip ids.

Vectors are L2-normalised on the way in and searched by inner product, so every score is a cosine
similarity in [-1, 1]. The index type follows FAISS's wiki ("Guidelines to choose an index") for
``N`` vectors of width ``D``:

- ``N < FLAT_MAX`` (100,000): ``IDMap2,Flat``, exact search; ids kept by ``IndexIDMap2``.
- ``FLAT_MAX <= N < PQ_MIN`` (10,000,000): ``IVF{K}_HNSW32,Flat`` with ``K`` the power of two nearest
  ``4 * sqrt(N)`` (the low end of the wiki's 4..16 sqrt(N): k-means time grows with ``K``), an HNSW32
  coarse quantiser, trained on ``min(N, 64 * K)`` vectors (the wiki asks for 30K..256K).
- ``N >= PQ_MIN``, or ``compress=True`` (when memory matters): ``IVF{K}_HNSW32,PQ{D/4}``: ``D/4``
  bytes per vector instead of ``4 * D`` (16x smaller), approximate scores.

IVF indexes store the clip ids in their inverted lists (``add_with_ids``) with a hash-table direct map
for ``reconstruct``; they are not wrapped in ``IndexIDMap2`` because ``IndexIDMap2.remove_ids`` over an
IVF index corrupts its id map (it assumes the inner index renumbers like ``Flat`` does). ``nprobe`` is
calibrated at build time (``indexer/index/recall.py``): the smallest power of two whose recall@10 on a
sample of the stored vectors (each searched without itself, exact answers by brute force) reaches
``target_recall`` (0.95); it is saved with the index and can be set (``index.nprobe = 64``).

Growth: ``add`` never retrains (that would block writers for minutes); when the recommended index type
changes (Flat past ``FLAT_MAX``, or ``K`` off by 4x) it logs a recommendation once and ``needs_rebuild()``
turns true; ``rebuild()`` (called by ``python -m indexer reindex``) retrains from the stored vectors.

Threads: searches run concurrently (FAISS releases the GIL); ``add``/``remove``/``rebuild`` take a
write lock, so a search sees the index before or after a change, never in between. Searches of up to
``SMALL_BATCH`` queries use one OpenMP thread (see ``indexer.index.concurrency.omp_threads``). With GPUs
(``faiss.get_num_gpus() > 0``) searches run on a copy sharded over all of them, refreshed after changes;
the CPU index stays the source of truth for changes, ``reconstruct`` and ``save``.

Persistence is in ``indexer/index/files.py``: ``save(dir)`` / ``ClipIndex.load(dir, expected_model=...)``.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from indexer.index import files as index_files
from indexer.index.concurrency import ReadWriteLock, omp_threads
from indexer.index.files import (
    ClipIndexError,
    IndexCorruptError,
    IndexMismatchError,
    IndexMissingError,
)
from indexer.index.recall import calibrate_nprobe, exact_top_k, ivf_params
from indexer.index.vector_index import KeyedVectors
from indexer.index.vectors import clip_ids, unit_vectors

__all__ = ["ClipIndex", "ClipIndexError", "IndexCorruptError", "IndexMismatchError", "IndexMissingError",
           "recommended_factory", "exact_top_k"]

logger = logging.getLogger(__name__)

FLAT_MAX = 100_000
PQ_MIN = 10_000_000
TRAIN_PER_LIST = 64
SMALL_BATCH = 4  # queries searched by one OpenMP thread (see omp_threads)
GPU_MAX_K = 2048  # FAISS GPU k-selection limit for both k and nprobe


def recommended_factory(n: int, dim: int, compress: bool | None = None) -> str:
    """FAISS factory string for ``n`` vectors of width ``dim`` (thresholds in the module docstring)."""
    if n < FLAT_MAX and not compress:
        return "IDMap2,Flat"
    lists = 2 ** max(0, round(math.log2(4 * math.sqrt(max(n, 1)))))
    if compress or (compress is None and n >= PQ_MIN):
        return f"IVF{lists}_HNSW32,PQ{_pq_bytes(dim)}"
    return f"IVF{lists}_HNSW32,Flat"


def _pq_bytes(dim: int) -> int:
    """Largest divisor of ``dim`` not above ``dim / 4`` (PQ needs ``dim % M == 0``)."""
    return max(m for m in range(1, max(dim // 4, 1) + 1) if dim % m == 0)


@functools.lru_cache(maxsize=1)
def _gpu_count() -> int:
    """GPUs FAISS can use: 0 with faiss-cpu, or with faiss-gpu on a machine without CUDA devices."""
    return int(faiss.get_num_gpus())


def _family(factory: str) -> str:
    return "ivfpq" if ",PQ" in factory else "ivf" if factory.startswith("IVF") else "flat"


def _nlist(factory: str) -> int:
    return int(factory.split("_")[0].split(",")[0][3:]) if factory.startswith("IVF") else 0


def _train(vectors: np.ndarray, dim: int, factory: str, seed: int) -> faiss.Index:
    """An empty, trained FAISS index for ``factory`` (IVF: k-means on a seeded sample of ``vectors``)."""
    if factory != "IDMap2,Flat" and not factory.startswith("IVF"):
        raise ValueError(f"factory must be 'IDMap2,Flat' or an 'IVF...' string (they keep clip ids and "
                         f"support removal), got {factory!r}")
    index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    if factory.startswith("IVF"):
        ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
        ivf.cp.seed = seed
        if hasattr(ivf, "do_polysemous_training"):  # IVFPQ: only polysemous search uses it; minutes of training
            ivf.do_polysemous_training = False
        sample = min(len(vectors), TRAIN_PER_LIST * ivf.nlist)
        rows = np.random.default_rng(seed).choice(len(vectors), sample, replace=False)
        index.train(vectors[np.sort(rows)])
        ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
    return index


class ClipIndex(KeyedVectors):
    """Clip vectors ``(N, D)`` in a FAISS index whose labels are the catalog's clip ids: a
    ``VectorIndex`` (``indexer.index.vector_index``)."""

    filters = False  # search() takes no video= / task=: the searcher filters its hits

    def __init__(self, index: faiss.Index, *, model: dict | None = None, nprobe: int = 1,
                 auto_factory: bool = True, factory: str | None = None) -> None:
        self._index = index
        self._factory = factory or ("IDMap2,Flat" if isinstance(index, faiss.IndexIDMap2) else "custom")
        self.model = model
        self.auto_factory = auto_factory
        self._ivf = faiss.extract_index_ivf(index) if self._factory.startswith("IVF") else None
        self._nprobe = 1
        self.nprobe = nprobe
        self._held = np.sort(self._stored_ids())
        self._lock = ReadWriteLock()
        self._writer = threading.Lock()  # serialises add/remove/rebuild; searches continue during rebuild
        self._gpu: Any = None
        self._gpu_lock = threading.Lock()
        self._warned_rebuild = False

    # ----- construction -------------------------------------------------------------------------
    @classmethod
    def empty(cls, dim: int, *, model: dict | None = None) -> "ClipIndex":
        """An exact index of width ``dim`` holding nothing (ingestion adds to it)."""
        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)), model=model)

    @classmethod
    def build(cls, vectors: np.ndarray, ids: Any, *, model: dict | None = None, factory: str | None = None,
              compress: bool | None = None, target_recall: float = 0.95, seed: int = 0) -> "ClipIndex":
        """Index ``vectors`` ``(N, D)`` under ``ids`` ``(N,)``; ``factory`` overrides the size rule.

        ``model`` is the fingerprint (checkpoint, config) of the model that produced the vectors; it
        is saved in the manifest and checked by ``load``. IVF ``nprobe`` is calibrated to ``target_recall``.
        """
        x = unit_vectors(vectors)
        labels = clip_ids(ids, len(x))
        chosen = factory or recommended_factory(len(x), x.shape[1], compress)
        index = _train(x, x.shape[1], chosen, seed)
        index.add_with_ids(x, labels)
        nprobe = calibrate_nprobe(index, x, labels, target_recall, seed) if chosen.startswith("IVF") else 1
        return cls(index, model=model, nprobe=nprobe, auto_factory=factory is None and compress is None,
                   factory=chosen)

    # ----- properties ---------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return int(self._index.d)

    @property
    def factory(self) -> str:
        """The FAISS factory string this index was built with."""
        return self._factory

    @property
    def nprobe(self) -> int:
        """Inverted lists visited per IVF query (1 and meaningless for ``Flat``)."""
        return self._nprobe

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        if self._ivf is not None and not 1 <= int(value) <= self._ivf.nlist:
            raise ValueError(f"nprobe must be in [1, {self._ivf.nlist}], got {value}")
        self._nprobe = int(value) if self._ivf is not None else 1
        self._gpu = None

    @property
    def on_gpu(self) -> bool:
        """Whether searches run on GPUs (FAISS reports at least one)."""
        return _gpu_count() > 0

    def _stored_ids(self) -> np.ndarray:
        if isinstance(self._index, faiss.IndexIDMap2):
            return faiss.vector_to_array(self._index.id_map).astype(np.int64)
        if self._ivf is not None:
            invlists = self._ivf.invlists
            parts = [faiss.rev_swig_ptr(invlists.get_ids(i), invlists.list_size(i)).copy()
                     for i in range(self._ivf.nlist) if invlists.list_size(i)]
            return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)
        raise ValueError(f"unsupported FAISS index type {type(self._index).__name__}")

    # ----- changes ------------------------------------------------------------------------------
    def add(self, vectors: np.ndarray, ids: Any) -> None:
        """Add ``vectors`` ``(N, D)`` under ``ids`` ``(N,)``; an id already held is replaced (update)."""
        x = unit_vectors(vectors, self.dim)
        labels = clip_ids(ids, len(x))
        with self._writer, self._lock.write():
            present = self._held_among(labels)
            if present.size:
                self._index.remove_ids(present)
            self._index.add_with_ids(x, labels)
            self._hold(labels)
            self._gpu = None
        self._maybe_recommend_rebuild()

    def remove(self, ids: Any) -> int:
        """Remove the clips ``ids`` ``(N,)``; ids not held are ignored. Returns how many were removed."""
        with self._writer, self._lock.write():
            held = self._held_among(ids)
            if held.size:
                self._index.remove_ids(held)
                self._forget(held)
                self._gpu = None
        return int(held.size)

    def needs_rebuild(self) -> bool:
        """True when the size rule now recommends another index type or a ``K`` off by 4x or more."""
        if not self.auto_factory:
            return False
        want = recommended_factory(len(self), self.dim)
        if _family(want) != _family(self._factory):
            return True
        have, need = _nlist(self._factory), _nlist(want)
        return bool(have and need and max(have, need) >= 4 * min(have, need))

    def _maybe_recommend_rebuild(self) -> None:
        if not self._warned_rebuild and self.needs_rebuild():
            self._warned_rebuild = True
            logger.warning("the index holds %d clips: %s is now recommended over %s; call rebuild() "
                           "or run `python -m indexer reindex LIB`", len(self),
                           recommended_factory(len(self), self.dim), self._factory)

    def rebuild(self, *, factory: str | None = None, compress: bool | None = None,
                target_recall: float = 0.95, seed: int = 0) -> None:
        """Retrain with the index type the size rule (or ``factory``) names, from the stored vectors.

        Searches continue on the old index meanwhile; adds and removes wait. From a PQ index the
        stored vectors are PQ approximations: re-embed (``reindex``) for exact vectors instead.
        """
        with self._writer:
            labels = self._held.copy()
            x = unit_vectors(self._reconstruct_many(labels), self.dim) if labels.size else \
                np.zeros((0, self.dim), np.float32)
            chosen = factory or recommended_factory(len(labels), self.dim, compress)
            if chosen.startswith("IVF") and not labels.size:
                raise ValueError("an empty index cannot train IVF lists; add clips first")
            index = _train(x, self.dim, chosen, seed)
            index.add_with_ids(x, labels)
            nprobe = calibrate_nprobe(index, x, labels, target_recall, seed) if chosen.startswith("IVF") else 1
            with self._lock.write():
                self._index, self._factory = index, chosen
                self.auto_factory = factory is None and compress is None
                self._ivf = faiss.extract_index_ivf(index) if chosen.startswith("IVF") else None
                self.nprobe = nprobe
                self._warned_rebuild = False
        logger.info("rebuilt the index as %s over %d clips (nprobe %d)", chosen, len(labels), nprobe)

    # ----- queries ------------------------------------------------------------------------------
    def reconstruct(self, clip_id: int) -> np.ndarray:
        """The stored unit vector ``(D,)`` of ``clip_id`` (approximate for PQ); KeyError if absent."""
        with self._lock.read():
            if int(clip_id) not in self:
                raise KeyError(f"clip id {clip_id} is not in the index")
            return self._index.reconstruct(int(clip_id))

    def reconstruct_many(self, ids: np.ndarray) -> np.ndarray:
        """Stored unit vectors ``(N, D)`` of ``ids`` ``(N,)`` (all held; approximate for PQ)."""
        with self._lock.read():
            return self._reconstruct_many(np.asarray(ids, np.int64))

    def _reconstruct_many(self, labels: np.ndarray) -> np.ndarray:
        out = np.empty((labels.size, self.dim), np.float32)
        for start in range(0, labels.size, 65536):
            out[start:start + 65536] = self._index.reconstruct_batch(labels[start:start + 65536])
        return out

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` clips for each query ``(Q, D)`` (or one ``(D,)``), best first.

        Returns ``(scores, ids)``, each ``(Q, k)``: cosine similarities (float32) and clip ids (int64).
        When fewer than ``k`` clips are found (small index, few probes) the tail is padded with id -1
        and score -inf: callers filter ``ids >= 0``.
        """
        if int(k) < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        q = unit_vectors(queries, self.dim, "queries")
        with self._lock.read(), omp_threads(1 if len(q) <= SMALL_BATCH else 0):
            gpu = self._gpu_replica() if self.on_gpu and k <= GPU_MAX_K and self._nprobe <= GPU_MAX_K else None
            if gpu is not None:
                scores, labels = gpu[0].search(q, int(k))
                if gpu[1] is not None:  # sharded Flat answers positions; map them to clip ids
                    labels = np.where(labels >= 0, gpu[1][np.maximum(labels, 0)], -1)
            elif self._ivf is not None:
                scores, labels = self._index.search(q, int(k), params=ivf_params(self._nprobe))
            else:
                scores, labels = self._index.search(q, int(k))
        scores[labels < 0] = -np.inf
        return scores, labels

    def _gpu_replica(self) -> tuple[Any, np.ndarray | None] | None:
        """``(gpu_index, position_to_id or None)`` sharded over all GPUs, rebuilt after each change."""
        with self._gpu_lock:
            if self._gpu is None:
                try:
                    flat = isinstance(self._index, faiss.IndexIDMap2)
                    inner = faiss.downcast_index(self._index.index) if flat else self._index
                    options = faiss.GpuMultipleClonerOptions()
                    options.shard = True
                    gpu = faiss.index_cpu_to_all_gpus(inner, co=options)
                    if not flat:
                        faiss.GpuParameterSpace().set_index_parameter(gpu, "nprobe", self._nprobe)
                    positions = faiss.vector_to_array(self._index.id_map).astype(np.int64) if flat else None
                    self._gpu = (gpu, positions)
                except RuntimeError as error:  # e.g. a type FAISS cannot place on GPUs (HNSW, PQ > 48 B)
                    logger.warning("searching on the CPU: FAISS could not copy %s to the GPUs (%s)",
                                   self._factory, str(error).splitlines()[0])
                    self._gpu = False
            return self._gpu or None

    # ----- persistence --------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write the index and its manifest into ``directory`` atomically; returns the manifest path."""
        with self._lock.read():
            return index_files.save(directory, self._index, factory=self._factory, nprobe=self._nprobe,
                                    model=self.model, auto_factory=self.auto_factory)

    @classmethod
    def load(cls, directory: str | Path, *, expected_model: dict | None = None,
             library: str | Path | None = None) -> "ClipIndex":
        """Load and verify a saved index; ``expected_model`` must equal the saved model fingerprint.

        Raises ``IndexMissingError``, ``IndexCorruptError`` or ``IndexMismatchError`` (all
        ``ClipIndexError``), whose message names ``python -m indexer reindex LIB`` (``library``).
        """
        index, manifest = index_files.load(directory, expected_model=expected_model, library=library)
        return cls(index, model=manifest["model"], nprobe=manifest["nprobe"],
                   auto_factory=manifest["auto_factory"], factory=manifest["factory"])
