"""Would int8 make the matching-head rerank fast enough? Prints one JSON object.

The rerank of ``bench/query.py`` (50 candidates) is matrix products of exact float32 work. This
measures, on the demo library (or ``--library``), the one cheaper arithmetic PyTorch offers on a
CPU: dynamic int8 quantization (``torch.ao.quantization.quantize_dynamic``, weights int8 per tensor,
activations quantized per call). It is applied to the feed-forward layers after the text-only and
video-only parts (every ``Intermediate`` and ``ResidualOutput`` dense layer of the encoder, the
bulk of the products; the attention's position-0 path reads its weights directly, so those stay
float32). Per query, on the same candidates and the same cached states:

- ``rerank_ms``: p50 of ``Searcher.match_scores`` for float32 and int8, interleaved;
- agreement of the int8 scores with float32: Spearman rank correlation, the same top-1, the
  overlap of the top 10, the largest score difference;
- ``gemm_gflop_per_s``: float32 and int8 products on the feed-forward shapes (best of 5).

Usage: python bench/rerank_int8.py [--library DIR] [--queries 40] [--candidates 50]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
import warnings

import numpy as np
import torch

from actbert.layers import Intermediate, ResidualOutput
from indexer.index.search import Searcher
from indexer.library.store import Library
from synthkitchen.demo import default_library_dir


def int8_feed_forward(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` whose encoder feed-forward dense layers are dynamic int8."""
    quantized = copy.deepcopy(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notices
        for module in list(quantized.actbert.encoder.modules()):
            if isinstance(module, (Intermediate, ResidualOutput)):
                torch.ao.quantization.quantize_dynamic(module, {torch.nn.Linear}, dtype=torch.qint8,
                                                       inplace=True)
    return quantized


def ranks(x: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(x)).astype(np.float64)


def gemm_rates(shapes: list[tuple[int, int, int]]) -> dict:
    """GFLOP/s of float32 and dynamic-int8 ``Linear`` on (rows, in, out) shapes, best of 5."""
    out = {"fp32": 0.0, "int8": 0.0}
    flops = sum(2.0 * m * k * n for m, k, n in shapes)
    for name in out:
        seconds = 0.0
        for m, k, n in shapes:
            x, layer = torch.randn(m, k), torch.nn.Sequential(torch.nn.Linear(k, n))
            if name == "int8":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    layer = torch.ao.quantization.quantize_dynamic(layer, {torch.nn.Linear}, dtype=torch.qint8)
            best = float("inf")
            with torch.no_grad():
                for _ in range(5):
                    t0 = time.perf_counter()
                    for _ in range(10):
                        layer(x)
                    best = min(best, (time.perf_counter() - t0) / 10)
            seconds += best
        out[name] = round(flops / seconds / 1e9, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--library", default=str(default_library_dir()))
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--candidates", type=int, default=50)
    args = parser.parse_args()
    library = Library(args.library, readonly=True)
    searcher = Searcher(library)
    searcher.warm_up()
    queries = (library.catalog.step_descriptions(distinct=True, limit=args.queries)
               or library.catalog.narrations(limit=args.queries))
    exact = searcher.model
    quantized = int8_feed_forward(exact)
    times: dict[str, list[float]] = {"fp32": [], "int8": []}
    spearman, same_top1, top10, max_diff = [], [], [], []
    for query in queries:
        searcher.model = exact
        hits = searcher.search(query, k=args.candidates, rerank=0, mode="vector").hits
        clips = [hit.clip for hit in hits]
        text = searcher.text_state(query)
        scores = {}
        for name, model in (("fp32", exact), ("int8", quantized)):
            searcher.model = model
            t0 = time.perf_counter()
            scores[name] = searcher.match_scores(query, clips, text=text)
            times[name].append((time.perf_counter() - t0) * 1e3)
        keys = list(scores["fp32"])
        a = np.array([scores["fp32"][k] for k in keys])
        b = np.array([scores["int8"][k] for k in keys])
        spearman.append(float(np.corrcoef(ranks(a), ranks(b))[0, 1]))
        same_top1.append(keys[int(a.argmax())] == keys[int(b.argmax())])
        top10.append(len(set(np.argsort(-a)[:10]) & set(np.argsort(-b)[:10])) / 10)
        max_diff.append(float(np.abs(a - b).max()))
    searcher.model = exact
    config = exact.config
    rows = 30 * args.candidates  # about the region slots of a rerank batch
    shapes = [(rows, config.region.hidden_size, config.region.intermediate_size),
              (rows, config.region.intermediate_size, config.region.hidden_size),
              (8 * args.candidates, config.text.hidden_size, config.text.intermediate_size),
              (8 * args.candidates, config.text.intermediate_size, config.text.hidden_size)]
    print(json.dumps({
        "library": str(library.root), "queries": len(queries), "candidates": args.candidates,
        "rerank_ms": {name: {"p50": round(statistics.median(v), 1),
                             "p95": round(float(np.percentile(v, 95)), 1)} for name, v in times.items()},
        "agreement": {"spearman_median": round(statistics.median(spearman), 4),
                      "spearman_min": round(min(spearman), 4),
                      "same_top1": round(float(np.mean(same_top1)), 3),
                      "top10_overlap": round(float(np.mean(top10)), 3),
                      "max_score_diff_median": round(statistics.median(max_diff), 4)},
        "gemm_gflop_per_s": gemm_rates(shapes), "torch_threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "quantized_engine": torch.backends.quantized.engine}))


if __name__ == "__main__":
    main()
