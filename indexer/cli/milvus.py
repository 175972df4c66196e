"""CLI command ``export-milvus``: move a library's clip vectors into Milvus and make it the index.

``python -m indexer export-milvus LIB --uri URI``: under the library's writer lock, the index is first
brought to the catalog; its vectors (exact ones: read back from a Flat or IVF-Flat FAISS index,
re-embedded from the feature files when the index is PQ-compressed) are written to a fresh Milvus
collection with each clip's video id and task; the count is checked; only then does library.json
switch to Milvus (``index_backend``), so a failure leaves the library on FAISS as it was. The FAISS
files stay in ``LIB/index`` (``indexer ingest ... --index-backend faiss`` switches back).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from indexer.index import backends
from indexer.index.embed import embed_library, library_model_dir, load_model
from indexer.index.reconcile import reconcile_index
from indexer.library.store import Library, LibraryError


def add_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export-milvus", help="move a library's clip vectors into Milvus and search there")
    p.add_argument("library")
    p.add_argument("--uri", required=True,
                   help="a file path (Milvus Lite, embedded) or http://host:19530 (a Milvus server); "
                        "a server's credentials come from the MILVUS_TOKEN environment variable")
    p.add_argument("--collection", help="collection name (default: one derived from the library folder)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_export_milvus)


def export_milvus(library: Library, uri: str, collection: str | None = None) -> dict:
    """Copy the library's vectors into a Milvus collection, then switch the library to it."""
    t0 = time.perf_counter()
    with library.writing():
        if backends.backend_of(library)["name"] != "faiss":
            library.update_manifest(index_backend={"name": "faiss"})
        index, _ = reconcile_index(library)
        if index is None:
            raise LibraryError(f"{library.root} records no model, so it has no vectors to export")
        ids = index.ids()
        if ",PQ" in index.factory:  # compressed vectors: re-embed the exact ones
            vectors, embedded = embed_library(library, load_model(str(library_model_dir(library))))
            vectors = _in_order(vectors, embedded, ids)
        else:
            vectors = index.reconstruct_many(ids)
        record = backends.milvus_record(library, uri, collection)
        milvus = backends.build(library, vectors, ids, model=library.manifest.model.to_json(),
                                dim=index.dim, record=record)
        if not np.array_equal(milvus.ids(), ids):
            raise RuntimeError(f"Milvus holds {len(milvus)} clips after the export, the library {len(ids)}")
        library.update_manifest(index_backend=record)
    return {"vectors": len(ids), "uri": uri, "collection": record["collection"],
            "lite": "://" not in uri, "seconds": round(time.perf_counter() - t0, 2)}


def _in_order(vectors: np.ndarray, embedded: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Rows of ``vectors`` (keyed by ``embedded``) in the order of ``ids``."""
    position = {int(i): n for n, i in enumerate(embedded)}
    return vectors[[position[int(i)] for i in ids]]


def run_export_milvus(args: argparse.Namespace) -> int:
    report = export_milvus(Library(args.library), args.uri, args.collection)
    print(json.dumps(report) if args.json else
          f"export-milvus: {report['vectors']} vectors into {report['collection']} at {report['uri']} "
          f"in {report['seconds']} s; the library now searches Milvus")
    return 0
