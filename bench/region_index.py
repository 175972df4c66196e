"""Region index: recall@10 and latency against a numpy brute force, in one run. Prints one JSON object.

The index is built as ``indexer.index.region_index`` builds it: ``ClipIndex.build`` over the region
vectors under region ids (``clip_id * 4096 + slot``), the size rule choosing the type (exact below
100,000 vectors, ``IVF{K}_HNSW32,Flat`` above) and calibrating ``nprobe`` to recall@10 >= 0.95.

Vectors: with ``--library LIB``, the real region features of that library's feature files (read,
never written), in their clips; ``--size N`` tops them up to N regions with jittered copies (each
component times ``1 + 0.2 * N(0, 1)``, kept non-negative), in clips of the same sizes. Without
``--library``: synthetic region-like features (ReLU of a 64-class Gaussian mixture, width 1024) in
clips of 29 regions (the demo's mean). Queries: ``--queries`` stored regions, as a user picks a
region of the library; each query's own region is left out of both answers.

Reported: ``recall_at_10`` (the index's 10 nearest regions against the exact 10; target 0.95),
``clip_recall_at_10`` (the 10 clips holding the best regions, the query's own clip left out, from
the index's ``POOL`` nearest regions grouped by clip as ``region_search`` gathers candidates, against
the exact per-clip maxima), build seconds, single-query p50/p95 of the index and of the brute force
(timed interleaved), and the load average.

Usage: python bench/region_index.py [--library LIB] [--size 120000] [--queries 300]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from actbert.data import VideoFeatures
from indexer.index.clip_index import ClipIndex
from indexer.index.region_index import REGION_SLOTS, RECORD, region_ids
from indexer.index.region_search import POOL

K, TARGET = 10, 0.95


def library_regions(root: Path) -> tuple[list[np.ndarray], list[int]]:
    """Every clip's region features (a list of ``(n_c, F)`` arrays) of a library's feature files."""
    features, sizes = [], []
    for path in sorted((root / "features").glob("*.safetensors")):
        f = VideoFeatures.load(path)
        for clip in range(f.num_clips):
            rows = np.flatnonzero(f.region_clip == clip)
            if rows.size:
                features.append(f.region_features[rows])
                sizes.append(rows.size)
    return features, sizes


def synthetic_regions(n: int, rng: np.random.Generator, dim: int = 1024, classes: int = 64,
                      per_clip: int = 29) -> list[np.ndarray]:
    centres = rng.standard_normal((classes, dim)).astype(np.float32)
    x = centres[rng.integers(0, classes, n)] + rng.standard_normal((n, dim), dtype=np.float32)
    np.maximum(x, 0, out=x)
    return np.array_split(x, max(1, n // per_clip))


def top_up(clips: list[np.ndarray], size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``clips`` plus jittered copies of them until ``size`` regions in all."""
    out, total, k = list(clips), sum(len(c) for c in clips), 0
    while total < size:
        base = clips[k % len(clips)]
        jitter = base * (1 + 0.2 * rng.standard_normal(base.shape, dtype=np.float32))
        out.append(np.maximum(jitter, 0)[:size - total])
        total += len(out[-1])
        k += 1
    return out


def unit(x: np.ndarray) -> np.ndarray:
    x = np.array(x, np.float32)
    x[~np.any(x, axis=1)] = 1.0  # as the region index indexes a region without direction
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", type=Path)
    parser.add_argument("--size", type=int, default=120_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    if args.library:
        clips, _ = library_regions(args.library)
        real = sum(len(c) for c in clips)
        clips = top_up(clips, args.size, rng)
    else:
        clips, real = synthetic_regions(args.size, rng), 0
    sizes = np.array([len(c) for c in clips])
    x = unit(np.concatenate(clips))
    del clips
    ids = region_ids(np.arange(1, len(sizes) + 1), sizes)
    clip_of = ids // REGION_SLOTS
    started = time.perf_counter()
    index = ClipIndex.build(x, ids, model=RECORD, seed=args.seed)
    build_s = time.perf_counter() - started

    picks = rng.choice(len(x), args.queries, replace=False)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    region_hits = clip_hits = 0
    index_s, brute_s = [], []
    for pick in picks:
        q = x[pick]
        t0 = time.perf_counter()
        scores = x @ q
        top = np.argpartition(-scores, K + 1)[:K + 1]
        top = top[np.argsort(-scores[top])]
        brute_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        _, found = index.search(q, POOL)
        index_s.append(time.perf_counter() - t0)
        found = found[0][found[0] >= 0]
        truth = [i for i in ids[top] if i != ids[pick]][:K]
        region_hits += len(set(truth) & set(found[found != ids[pick]][:K].tolist()))
        per_clip = np.maximum.reduceat(scores, starts)  # exact best region of every clip
        per_clip[clip_of[pick] - 1] = -np.inf
        truth_clips = set((np.argsort(-per_clip, kind="stable")[:K] + 1).tolist())
        got = [int(c) for c in dict.fromkeys((found // REGION_SLOTS).tolist()) if c != clip_of[pick]][:K]
        clip_hits += len(truth_clips & set(got))
    ms = lambda s: {"p50_ms": round(float(np.percentile(s, 50)) * 1e3, 3),  # noqa: E731
                    "p95_ms": round(float(np.percentile(s, 95)) * 1e3, 3)}
    recall = region_hits / (K * len(picks))
    print(json.dumps({
        "regions": int(len(x)), "real_regions": int(real), "clips": int(len(sizes)), "dim": int(x.shape[1]),
        "source": str(args.library) if args.library else "synthetic", "factory": index.factory,
        "nprobe": index.nprobe, "build_sec": round(build_s, 1), "queries": len(picks),
        "recall_at_10": round(recall, 4), "clip_recall_at_10": round(clip_hits / (K * len(picks)), 4),
        "target": TARGET, "met": recall >= TARGET, "index_search_pool": POOL,
        "index_single_query": ms(index_s), "brute_force_single_query": ms(brute_s),
        "load_average": [round(v, 2) for v in os.getloadavg()], "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine()}))


if __name__ == "__main__":
    main()
