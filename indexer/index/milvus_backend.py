"""``MilvusIndex``: the clip index in Milvus, a ``VectorIndex`` as ``ClipIndex`` (FAISS) is.

One collection per library: primary key ``clip_id`` (the catalog's int64 clip ids, never
reused), ``vector`` (unit length, inner product, so scores are cosines as with FAISS), and the
scalars ``video_id`` and ``task`` that filters are pushed down to (``search(..., video=,
task=)`` sends a Milvus filter expression whose values are escaped string literals). The fingerprint of the model that made the vectors is the
collection's description; ``open`` checks it like ``ClipIndex.load`` checks its manifest.

``uri``: a file path is Milvus Lite (embedded, one process; pymilvus starts it), an
``http://host:19530`` address a Milvus server or cluster. The vector index is HNSW (M 16,
efConstruction 200; searches use ``ef = max(64, 2k)``) on a server; Milvus Lite indexes with
FLAT whatever is asked (its documented limit), which is exact. Reads use Strong consistency, so a
search sees every change made before it.

pymilvus is imported only when a library uses this backend.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from pymilvus import DataType, MilvusClient, MilvusException

from indexer.errors import ExplorerError
from indexer.index.files import IndexMismatchError, IndexMissingError, fingerprint
from indexer.index.vector_index import KeyedVectors
from indexer.index.vectors import clip_ids, unit_vectors

log = logging.getLogger(__name__)

BATCH = 1000  # rows per insert/delete/get call (keeps each gRPC message well under its 64 MB limit)
QUERY_WINDOW = 16_384  # Milvus's largest query/search limit
MAX_TEXT = 512  # video_id / task lengths stored (VARCHAR max_length)
HNSW = {"M": 16, "efConstruction": 200}

# ``attributes(ids) -> (video_ids, tasks)``: the filterable fields of clips, from the catalog.
Attributes = Callable[[np.ndarray], tuple[list[str], list[str]]]


def is_lite(uri: str) -> bool:
    """A file path (Milvus Lite) rather than a server address."""
    return "://" not in uri


def default_collection(library_root: str | Path) -> str:
    """A collection name unique to a library folder (letters, digits, underscores)."""
    return "actbert_clips_" + hashlib.sha1(str(Path(library_root).resolve()).encode()).hexdigest()[:12]


class MilvusUnavailable(ExplorerError):
    """A Milvus URI that cannot be reached or opened."""


def connect(uri: str, token: str = "") -> MilvusClient:
    """A client of the Milvus at ``uri``; ``MilvusUnavailable`` (one line) when it cannot be reached."""
    if is_lite(uri):
        uri = str(Path(uri).expanduser().resolve())
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
        _start_lite(uri)
    try:
        return MilvusClient(uri=uri, token=token)
    except MilvusException as exc:
        raise MilvusUnavailable(f"cannot reach Milvus at {uri} ({exc.message}); start the server, "
                                "check the address and MILVUS_TOKEN, or pass a file path for Milvus Lite") from None


def _start_lite(path: str, timeout_s: float = 60.0) -> None:
    """Start (once per process) the Milvus Lite server of ``path`` and wait for its socket: pymilvus
    starts the same server but connects at once, and on a busy machine the socket comes later."""
    from milvus_lite.server_manager import server_manager_instance

    socket = server_manager_instance.start_and_get_uri(path)
    if socket is None:
        raise RuntimeError(f"Milvus Lite could not open {path} (is another process using it?)")
    deadline = time.monotonic() + timeout_s
    while not Path(socket.removeprefix("unix:")).exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"Milvus Lite did not start for {path} within {timeout_s:.0f} s")
        time.sleep(0.02)


class MilvusIndex(KeyedVectors):
    """Clip vectors ``(N, D)`` in a Milvus collection keyed by the catalog's clip ids: a
    ``VectorIndex`` (``indexer.index.vector_index``)."""

    factory = "milvus"
    nprobe = 1
    filters = True  # search() takes video= and task=
    on_gpu = False  # as far as this process knows: a server places its index itself

    def __init__(self, client: MilvusClient, collection: str, dim: int, model: Any,
                 attributes: Attributes, uri: str) -> None:
        self.client, self.collection, self._dim, self.model = client, collection, dim, model
        self.attributes, self.uri = attributes, uri
        self._held = np.sort(self._stored_ids())

    # ----- construction -------------------------------------------------------------------------
    @classmethod
    def create(cls, uri: str, collection: str, dim: int, *, model: Any, attributes: Attributes,
               token: str = "") -> "MilvusIndex":
        """An empty collection (an existing one of that name is replaced)."""
        client = connect(uri, token)
        if client.has_collection(collection):
            client.drop_collection(collection)
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False,
                                            description=fingerprint(model))
        schema.add_field("clip_id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=int(dim))
        schema.add_field("video_id", DataType.VARCHAR, max_length=MAX_TEXT)
        schema.add_field("task", DataType.VARCHAR, max_length=MAX_TEXT)
        params = client.prepare_index_params()
        params.add_index(field_name="vector", index_type="FLAT" if is_lite(uri) else "HNSW",
                         metric_type="IP", params={} if is_lite(uri) else HNSW)
        client.create_collection(collection, schema=schema, index_params=params,
                                 consistency_level="Strong")
        return cls(client, collection, int(dim), model, attributes, uri)

    @classmethod
    def build(cls, vectors: np.ndarray, ids: Any, uri: str, collection: str, *, model: Any,
              attributes: Attributes, token: str = "") -> "MilvusIndex":
        """A fresh collection holding ``vectors`` ``(N, D)`` under ``ids`` ``(N,)``."""
        x = unit_vectors(vectors)
        index = cls.create(uri, collection, x.shape[1], model=model, attributes=attributes, token=token)
        index.add(x, ids)
        return index

    @classmethod
    def open(cls, uri: str, collection: str, *, expected_model: Any = None, attributes: Attributes,
             library: str | Path | None = None, token: str = "") -> "MilvusIndex":
        """The existing collection; ``IndexMissingError`` / ``IndexMismatchError`` as ``ClipIndex.load``."""
        client = connect(uri, token)
        if not client.has_collection(collection):
            raise IndexMissingError(f"Milvus at {uri} has no collection {collection}", library)
        info = client.describe_collection(collection)
        vector = next((f for f in info["fields"] if f["name"] == "vector"), None)
        if vector is None or not {"clip_id", "video_id", "task"} <= {f["name"] for f in info["fields"]}:
            raise IndexMismatchError(f"the Milvus collection {collection} is not a clip index", library)
        try:
            model = json.loads(info.get("description") or "null")
        except json.JSONDecodeError:
            model = None
        if expected_model is not None and fingerprint(expected_model) != fingerprint(model):
            raise IndexMismatchError(f"the Milvus collection {collection} holds vectors of model "
                                     f"{fingerprint(model)}, not the model in use {fingerprint(expected_model)}",
                                     library)
        client.load_collection(collection)
        return cls(client, collection, int(vector["params"]["dim"]), model, attributes, uri)

    # ----- the VectorIndex protocol -------------------------------------------------------------
    @property
    def dim(self) -> int:
        return self._dim

    def _stored_ids(self) -> np.ndarray:
        found = []
        iterator = self.client.query_iterator(self.collection, batch_size=QUERY_WINDOW // 4,
                                              filter="clip_id >= 0", output_fields=["clip_id"])
        try:
            while rows := iterator.next():
                found += [r["clip_id"] for r in rows]
        finally:
            iterator.close()
        return np.array(found, np.int64)

    def add(self, vectors: np.ndarray, ids: Any) -> None:
        """Add ``vectors`` ``(N, D)`` under ``ids``; an id already held is replaced (upsert)."""
        x = unit_vectors(vectors, self.dim)
        labels = clip_ids(ids, len(x))
        for start in range(0, len(labels), BATCH):
            part = labels[start:start + BATCH]
            videos, tasks = self.attributes(part)
            rows = [{"clip_id": int(i), "vector": v.tolist(), "video_id": str(video)[:MAX_TEXT],
                     "task": str(task or "")[:MAX_TEXT]}
                    for i, v, video, task in zip(part, x[start:start + BATCH], videos, tasks)]
            self.client.upsert(self.collection, rows)
        self._hold(labels)

    def remove(self, ids: Any) -> int:
        """Remove the clips ``ids``; ids not held are ignored. Returns how many were removed."""
        held = self._held_among(ids)
        for start in range(0, held.size, BATCH):
            self.client.delete(self.collection, ids=held[start:start + BATCH].tolist())
        self._forget(held)
        return int(held.size)

    def needs_rebuild(self) -> bool:
        return False  # Milvus maintains its own index as the collection grows

    def reconstruct(self, clip_id: int) -> np.ndarray:
        """The stored unit vector ``(D,)`` of ``clip_id``; KeyError if absent."""
        rows = self.client.get(self.collection, ids=[int(clip_id)], output_fields=["vector"])
        if not rows:
            raise KeyError(f"clip id {clip_id} is not in the index")
        return np.asarray(rows[0]["vector"], np.float32)

    def reconstruct_many(self, ids: np.ndarray) -> np.ndarray:
        """Stored unit vectors ``(N, D)`` of ``ids`` ``(N,)`` (all held), one by one."""
        rows = [self.reconstruct(int(i)) for i in np.asarray(ids, np.int64).reshape(-1)]
        return np.stack(rows) if rows else np.zeros((0, self.dim), np.float32)

    def search(self, queries: np.ndarray, k: int, video: str | None = None,
               task: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` clips per query ``(Q, D)``, best first, only those of ``video`` / ``task`` when
        given (filtered inside Milvus). ``(scores, ids)``, each ``(Q, k)``, padded with -inf / -1."""
        if int(k) < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        q = unit_vectors(queries, self.dim, "queries")
        k = int(k)
        limit = min(k, QUERY_WINDOW)
        search_params = {"metric_type": "IP", "params": {} if is_lite(self.uri) else {"ef": max(64, 2 * limit)}}
        found = self.client.search(self.collection, data=q.tolist(), limit=limit, anns_field="vector",
                                   search_params=search_params, output_fields=[],
                                   filter=filter_expression(video, task))
        scores = np.full((len(q), k), -np.inf, np.float32)
        labels = np.full((len(q), k), -1, np.int64)
        for row, hits in enumerate(found):
            for col, hit in enumerate(hits):
                scores[row, col], labels[row, col] = hit["distance"], hit["id"]
        return scores, labels

    def save(self, directory: str | Path | None = None) -> None:
        """Changes are in Milvus as soon as made; flush seals them to its storage."""
        self.client.flush(self.collection)


def filter_expression(video: str | None, task: str | None) -> str:
    """A Milvus boolean expression over the scalar fields ("" for none). Values are written as
    string literals escaped by ``json.dumps`` (quotes and backslashes escaped), so a value is
    always data, never expression (Milvus Lite does not take template parameters)."""
    terms = [f"{field} == {json.dumps(str(value), ensure_ascii=False)}"
             for field, value in (("video_id", video), ("task", task)) if value]
    return " and ".join(terms)


__all__ = ["MilvusIndex", "MilvusException", "MilvusUnavailable", "default_collection", "filter_expression", "is_lite"]
