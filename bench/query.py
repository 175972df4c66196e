"""End-to-end query path cost on a library (default: the demo library). Prints one JSON object.

Per query: encode the text with the library's ActBERT, FAISS top-K, matching-head rerank of the
top ``--rerank`` clips (one ``text_state`` per query shared with the encoding, each clip's
``video_state`` from the searcher's cache, ``match`` over the candidates), and narration
full-text search (hybrid mode); p50/p95 of each stage, of the wall time and of the CPU time of the
process (both threads; what a query costs whatever else the machine runs) over the library's
ground-truth step descriptions (or narrations) as queries. ``first_query_ms``: the first query
after the searcher is loaded and warmed (``Searcher.warm_up``, as the app does at launch).
Targets on 2 CPU cores: wall p50 <= 150 ms, p95 <= 250 ms; first query <= 1 s.

``work``: the floating-point work of one query with warm caches (``torch.utils.flop_counter``:
matrix products and attention, the bulk of it; median over 5 queries), the matrix-product rate
this machine reaches on the model's own layer shapes (best of 5 runs of each), and their ratio
``floor_ms``: the time the query's matrix products alone would take at that rate, a lower bound
of any exact implementation on these cores.

Usage: python bench/query.py [--library DIR] [--rerank 50|auto] [--queries 40]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

from indexer.index.search import Searcher
from indexer.library.store import Library
from synthkitchen.demo import default_library_dir


def gemm_rate(widths: list[tuple[int, int]], rows: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of float32 ``(rows, a) @ (a, b)`` products for the (a, b) layer shapes ``widths``:
    the best of ``repeats`` timings of each, total work over total best time."""
    flops = seconds = 0.0
    for a, b in widths:
        x, w = torch.randn(rows, a), torch.randn(a, b)
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(10):
                torch.mm(x, w)
            best = min(best, (time.perf_counter() - t0) / 10)
        flops += 2.0 * rows * a * b
        seconds += best
    return flops / seconds / 1e9


def query_work(searcher, queries: list[str], args) -> dict:
    """Median GFLOP of one warm query (see the module docstring) and the matrix-product floor."""
    from torch.utils.flop_counter import FlopCounterMode

    gflop = []
    for query in queries[:5]:
        with FlopCounterMode(display=False) as counter:
            searcher.search(query, k=args.k, rerank=args.rerank, mode=args.mode)
        gflop.append(counter.get_total_flops() / 1e9)
    config = searcher.model.config
    widths = sorted({(c.hidden_size, c.intermediate_size) for c in (config.text, config.region)}
                    | {(c.intermediate_size, c.hidden_size) for c in (config.text, config.region)}
                    | {(config.region.hidden_size, config.tangled.hidden_size)})
    rate = gemm_rate(widths)
    median = statistics.median(gflop)
    return {"gflop_per_query": round(median, 2), "gemm_gflop_per_s": round(rate, 1),
            "floor_ms": round(median / rate * 1e3, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--library", default=str(default_library_dir()))
    parser.add_argument("--rerank", type=lambda v: v if v == "auto" else int(v), default=50,
                        help="vector candidates reranked by the matching head: N, or auto (the "
                             "library model's rerank policy, the app's default)")
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
    t0 = time.perf_counter()
    warm = getattr(searcher, "warm_up", None)  # absent before the query path had one
    if warm is not None:
        warm()
    warm_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    first = searcher.search(queries[-1], k=args.k, rerank=args.rerank, mode=args.mode)
    first_ms = (time.perf_counter() - t0) * 1e3
    stages: dict[str, list[float]] = {}
    wall, cpu = [], []
    for query in queries:
        t0, c0 = time.perf_counter(), time.process_time()
        result = searcher.search(query, k=args.k, rerank=args.rerank, mode=args.mode)
        wall.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
        for name, ms in result.timings_ms.items():
            stages.setdefault(name, []).append(ms)
    work = query_work(searcher, queries, args)
    summary = {name: {"p50_ms": round(statistics.median(v), 1),
                      "p95_ms": round(float(np.percentile(v, 95)), 1)} for name, v in stages.items()}
    print(json.dumps({
        "library": str(library.root), "clips": len(searcher.index), "queries": len(queries),
        "mode": args.mode, "k": args.k, "rerank": args.rerank, "reranked": first.rerank,
        "load_s": round(load_s, 2),
        "warm_up_s": round(warm_s, 2), "first_query_ms": round(first_ms, 1),
        "stages": summary, "wall_p50_ms": round(statistics.median(wall), 1),
        "wall_p95_ms": round(float(np.percentile(wall, 95)), 1),
        "cpu_p50_ms": round(statistics.median(cpu), 1), "cpu_p95_ms": round(float(np.percentile(cpu, 95)), 1),
        "work": work, "torch_threads": torch.get_num_threads(), "target_p50_ms": 150, "target_p95_ms": 250,
        "target_first_query_ms": 1000}))


if __name__ == "__main__":
    main()
