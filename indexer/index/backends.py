"""Which engine holds a library's clip index: FAISS in ``LIB/index`` (default) or Milvus.

library.json's ``index_backend`` names it: absent (or ``{"name": "faiss"}``) is the FAISS index in
the library folder (``ClipIndex``); ``{"name": "milvus", "uri": URI, "collection": NAME}`` is a
Milvus collection (``indexer.index.milvus_backend``: a file path is Milvus Lite, ``http://...`` a
server). Both are ``VectorIndex``es (``indexer.index.vector_index``), and the writing commands keep either one equal to the catalog's finished clip ids
(``indexer.index.reconcile``). pymilvus is imported only for a Milvus library.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from indexer.index.clip_index import ClipIndex
from indexer.index.vector_index import VectorIndex
from indexer.library.store import Library

BACKENDS = ("faiss", "milvus")


def backend_of(library: Library) -> dict:
    """The library's ``index_backend`` record (``{"name": "faiss"}`` when none is set)."""
    record = dict(library.manifest.index_backend or {"name": "faiss"})
    if record.get("name") not in BACKENDS:
        raise ValueError(f"{library.root}: unknown index backend {record.get('name')!r} in library.json")
    return record


def milvus_record(library: Library, uri: str, collection: str | None = None) -> dict:
    from indexer.index.milvus_backend import default_collection

    return {"name": "milvus", "uri": uri, "collection": collection or default_collection(library.root)}


def _attributes(library: Library):
    """Video id and task of clips, from the catalog (the fields Milvus filters on)."""

    def attributes(ids: np.ndarray) -> tuple[list[str], list[str]]:
        rows = library.catalog.clips_by_id(int(i) for i in ids)
        return ([rows[int(i)].video_id if int(i) in rows else "" for i in ids],
                [(rows[int(i)].task or "") if int(i) in rows else "" for i in ids])

    return attributes


def _token() -> str:
    return os.environ.get("MILVUS_TOKEN", "")  # a server's "user:password" or API key, never stored


def open_index(library: Library, record: dict | None = None, *, check_model: bool = True) -> VectorIndex:
    """The library's index (``ClipIndex`` or ``MilvusIndex``), checked against its model.

    Raises ``ClipIndexError`` subclasses when it is missing or was built by another model."""
    record = record or backend_of(library)
    model = library.manifest.model if check_model else None
    model = model and model.to_json()  # the index manifest records the entry's JSON
    if record["name"] == "faiss":
        return ClipIndex.load(library.root / "index", expected_model=model, library=library.root)
    from indexer.index.milvus_backend import MilvusIndex

    return MilvusIndex.open(record["uri"], record["collection"], expected_model=model,
                            attributes=_attributes(library), library=library.root, token=_token())


def build(library: Library, vectors: np.ndarray, ids: np.ndarray, *, model: Any, dim: int,
          record: dict | None = None) -> VectorIndex:
    """A fresh index of the library's backend holding ``vectors`` under ``ids``, saved."""
    record = record or backend_of(library)
    if record["name"] == "faiss":
        index = ClipIndex.build(vectors, ids, model=model) if len(ids) else ClipIndex.empty(dim, model=model)
        index.save(library.root / "index")
        return index
    from indexer.index.milvus_backend import MilvusIndex

    index = MilvusIndex.create(record["uri"], record["collection"], dim, model=model,
                               attributes=_attributes(library), token=_token())
    if len(ids):
        index.add(vectors, ids)
    index.save()
    return index
