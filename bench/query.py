"""End-to-end query path cost on a library (default: the demo library). Prints one JSON object.

Per query: encode the text with the library's ActBERT, FAISS top-K, matching-head rerank of the
top ``--rerank`` clips, and narration full-text search (hybrid mode); p50/p95 of each stage and of
the total over the library's ground-truth step descriptions (or narrations) as queries.
Target on the 2-core CPU: total p50 <= 500 ms with a rerank of 50.

Usage: python bench/query.py [--library DIR] [--rerank 50] [--queries 40]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from indexer.index.search import Searcher  # noqa: E402
from indexer.library.store import Library  # noqa: E402
from indexer.synthkitchen.demo import default_library_dir  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--library", default=str(default_library_dir()))
    parser.add_argument("--rerank", type=int, default=50)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--mode", default="hybrid")
    args = parser.parse_args()
    library = Library(args.library, readonly=True)
    t0 = time.perf_counter()
    searcher = Searcher(library)
    load_s = time.perf_counter() - t0
    queries = (library.catalog.step_descriptions(distinct=True, limit=args.queries)
               or library.catalog.narrations(limit=args.queries))
    searcher.search(queries[0], k=args.k, rerank=args.rerank, mode=args.mode)  # warm-up
    stages: dict[str, list[float]] = {}
    wall = []
    for query in queries:
        t0 = time.perf_counter()
        result = searcher.search(query, k=args.k, rerank=args.rerank, mode=args.mode)
        wall.append((time.perf_counter() - t0) * 1e3)
        for name, ms in result.timings_ms.items():
            stages.setdefault(name, []).append(ms)
    summary = {name: {"p50_ms": round(statistics.median(v), 1),
                      "p95_ms": round(float(np.percentile(v, 95)), 1)} for name, v in stages.items()}
    print(json.dumps({
        "library": str(library.root), "clips": len(searcher.index), "queries": len(queries),
        "mode": args.mode, "k": args.k, "rerank": args.rerank, "load_s": round(load_s, 2),
        "stages": summary, "wall_p50_ms": round(statistics.median(wall), 1),
        "wall_p95_ms": round(float(np.percentile(wall, 95)), 1), "target_p50_ms": 500}))


if __name__ == "__main__":
    main()
