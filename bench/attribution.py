"""Cost of "why this clip?": one (query, clip) attribution, and a side-by-side query. Prints one JSON
object.

- ``occlusion_ms``: ``actbert.attribution.attribute(..., gradients=False)`` of one query against
  one clip on the shipped model (``assets/demo/actbert`` by default): the full pair and every
  one-element removal in one matching batch, plus the text and video vectors of the removals.
  This is what a Search page "why" line costs. ``gradients_ms``: the same with integrated
  gradients (16 steps), what the Attention page and ``actbert explain`` add.
  Target on 2 CPU cores: occlusion p50 <= 500 ms.
  Without ``--library`` the clips are RANDOM features of the model's widths with ``--regions``
  region slots (the demo library's average is about 26) and the queries are fixed step-like
  sentences: the cost depends on the counts of words and regions, not on their values.
- With ``--library``: real clips and the library's narrations as queries, and
  ``side_by_side_ms`` (``indexer.index.compare.side_by_side``: both models' searches, the second
  taking what the first left in ``SharedQuery``: the catalog reads, and the query's text state
  when the two models' text-only layers are the same) against ``single_ms`` (one search), both
  after a warm-up and timed alternately query by query (``--rounds`` passes), so that a change of
  the machine's load falls on both; target ratio p50 <= 2. ``two_searches_ms``: the two models'
  searches made independently (what side_by_side did before sharing anything);
  ``side_by_side_after_page_ms``: the Search page's panel, given the page's own search
  (``first_result``: the second model's search and the join only). ``thread_cpu_ms_p50`` and
  ``cpu_ratio_p50``: the same calls' CPU time of the calling thread (intra-op threads 1: all of
  the work), less sensitive than wall time to other jobs on the machine. ``most_different``:
  over every distinct narration of the library as a query (vector: the models' own orders,
  k 12), the three where the two models' rankings differ most (``compare.disagreement``: least
  overlap of the top 12, then largest footrule), with each model's top 3 clip ids. ``why_12_ms``: the
  "why" lines of a query's first 12 results once they are shown (``indexer.index.explain.
  why_lines``: every removal of the 12 clips in shared batches, as the Search page fills them;
  target p50 <= 2000 ms), beside ``why_12_one_by_one_ms``: the same 12 lines as 12 separate
  ``attribute`` calls (the path before batching; first ``--sequential`` queries only).

Usage: python bench/attribution.py [--checkpoint assets/demo/actbert] [--library DIR]
       [--compare CHECKPOINT] [--pairs 20] [--regions 26] [--rounds 3] [--sequential 3]
       [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from actbert.attribution import PairText, attribute
from actbert.data import VideoFeatures, clip_inputs
from actbert.model import ActBertForPretraining
from actbert.tokenizer import ActBertTokenizer

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ("crack the eggs into the bowl", "whisk the eggs with a fork", "pour the milk into the pan",
           "cut the tomato on the cutting board", "flip the pancake", "peel the potato")


def random_clip(config, regions: int, seed: int) -> VideoFeatures:
    """One clip of RANDOM features: ``regions`` boxes over 4 frames (1 FPS)."""
    rng = np.random.default_rng(seed)
    return VideoFeatures(
        video_id=f"random{seed}", clip_start_sec=np.array([0.0]), clip_end_sec=np.array([4.0]),
        action_features=rng.random((1, config.action.feature_size), dtype=np.float32),
        region_features=rng.random((regions, config.region.feature_size), dtype=np.float32),
        region_boxes_xyxy=np.tile([[10.0, 10.0, 60.0, 60.0]], (regions, 1)),
        region_classes=rng.dirichlet(np.ones(config.region.num_classes), regions).astype(np.float32),
        region_scores=rng.uniform(0.4, 1.0, regions).astype(np.float32),
        region_clip=np.zeros(regions, np.int64),
        region_time_sec=np.repeat(np.arange(4.0), -(-regions // 4))[:regions],
        frame_size=(320, 240))


def timed(run, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def percentiles(ms: list[float]) -> dict:
    ordered = sorted(ms)
    return {"p50": round(statistics.median(ordered), 1),
            "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1), "n": len(ms)}


def pairs_random(model, tok, count: int, regions: int):
    for i in range(count):
        features = random_clip(model.config, regions, i)
        yield PairText.encode(tok, QUERIES[i % len(QUERIES)]), clip_inputs(features, [0], model.config.max_regions)


def library_part(args, pairs_out: list) -> dict:
    """Real clips and queries of a library, and the side-by-side query cost."""
    from indexer.index.compare import disagreement, second_searcher, side_by_side
    from indexer.index.explain import clip_attribution, why_lines
    from indexer.index.search import Searcher
    from indexer.library.store import Library

    searcher = Searcher(Library(args.library, readonly=True), args.checkpoint)
    clips = list(searcher.library.catalog.clips_by_id(searcher.index.ids()[:args.pairs].tolist()).values())
    queries = [c.narration for c in clips if c.narration.strip()] or list(QUERIES)
    for i, clip in enumerate(clips):
        pairs_out.append((PairText.encode(searcher.tokenizer, queries[i % len(queries)]),
                          searcher.clip_inputs(clip)))
    other = second_searcher(searcher, args.compare)
    searcher.warm_up()
    other.warm_up()
    runs = {"single": lambda q, page: searcher.search(q, k=12),
            "side_by_side": lambda q, page: side_by_side(searcher, other, q, k=12),
            "two_searches": lambda q, page: (searcher.search(q, k=12), other.search(q, k=12)),
            "side_by_side_after_page": lambda q, page: side_by_side(searcher, other, q,
                                                                    first_result=page, k=12)}
    wall: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.rounds):
        for q in queries[:args.pairs]:
            page = searcher.search(q, k=12)
            for name, run in runs.items():
                t0, c0 = time.perf_counter(), time.thread_time()
                run(q, page)
                wall[name].append((time.perf_counter() - t0) * 1e3)
                cpu[name].append((time.thread_time() - c0) * 1e3)
    single, both, two = wall["single"], wall["side_by_side"], wall["two_searches"]
    every = list(dict.fromkeys(c.narration for c in searcher.library.catalog.clips_by_id(
        searcher.index.ids().tolist()).values() if c.narration.strip()))
    differ = []
    for q in every:
        report = side_by_side(searcher, other, q, k=12, mode="vector")
        lists = [[h["clip_id"] for h in report[side]["hits"]] for side in ("first", "second")]
        overlap, footrule = disagreement(*lists)
        differ.append({"query": q, "overlap_at_12": round(overlap, 3), "footrule": round(footrule, 2),
                       "first_top3": lists[0][:3], "second_top3": lists[1][:3]})
    differ.sort(key=lambda d: (d["overlap_at_12"], -d["footrule"]))
    pages = [(q, [h.clip for h in searcher.search(q, k=12).hits]) for q in queries[:args.pairs]]
    why_lines(searcher, *pages[0])  # warm-up
    why = [timed(lambda p=p: why_lines(searcher, *p), 1)[0] for p in pages]
    one_by_one = [timed(lambda p=p: [clip_attribution(searcher, c, p[0]).why() for c in p[1]], 1)[0]
                  for p in pages[:args.sequential]]
    return {"library": str(args.library), "compare": str(other.checkpoint),
            "text_state_shared": bool(other.text_twins),
            "single_ms": percentiles(single), "side_by_side_ms": percentiles(both),
            "ratio_p50": round(statistics.median(both) / statistics.median(single), 2),
            "two_searches_ms": percentiles(two),
            "two_searches_ratio_p50": round(statistics.median(two) / statistics.median(single), 2),
            "side_by_side_after_page_ms": percentiles(wall["side_by_side_after_page"]),
            "most_different": {"queries": len(differ), "top3": differ[:3],
                               "mean_overlap_at_12": round(float(np.mean([d["overlap_at_12"] for d in differ])), 3)},
            "thread_cpu_ms_p50": {name: round(statistics.median(v), 2) for name, v in cpu.items()},
            "cpu_ratio_p50": round(statistics.median(cpu["side_by_side"]) / statistics.median(cpu["single"]), 2),
            "why_12_ms": percentiles(why), "why_12_one_by_one_ms": percentiles(one_by_one),
            "results_per_page_mean": round(float(np.mean([len(c) for _, c in pages])), 1),
            "target_why_12_p50_ms": 2000, "target_ratio_p50": 2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=str(ROOT / "assets" / "demo" / "actbert"))
    parser.add_argument("--library")
    parser.add_argument("--compare", help="second model (default: the library's model_no_regions)")
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--regions", type=int, default=26)
    parser.add_argument("--rounds", type=int, default=3,
                        help="passes over the queries timing single and side-by-side queries")
    parser.add_argument("--sequential", type=int, default=3,
                        help="queries whose 12 why lines are also timed one attribution at a time")
    parser.add_argument("--threads", type=int, default=1,
                        help="intra-op threads (1 beside another job on 2 cores: 2 threads then "
                             "spin against it and run tens of times slower)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = ActBertForPretraining.from_pretrained(args.checkpoint).eval()
    tok = ActBertTokenizer()
    report: dict = {"checkpoint": args.checkpoint, "threads": torch.get_num_threads(),
                    "load_average_1min": round(os.getloadavg()[0], 2)}
    pairs: list = []
    if args.library:
        report.update(library_part(args, pairs))
    else:
        pairs = list(pairs_random(model, tok, args.pairs, args.regions))
        report["features"] = f"RANDOM, {args.regions} regions per clip"
    attribute(model, *pairs[0], gradients=False)  # warm-up
    occlusion = [timed(lambda p=p: attribute(model, *p, gradients=False), 1)[0] for p in pairs]
    gradients = [timed(lambda p=p: attribute(model, *p, gradients=True), 1)[0] for p in pairs[:5]]
    report.update({
        "elements_mean": round(float(np.mean([len(attribute(model, *p, gradients=False).elements)
                                              for p in pairs[:3]])), 1),
        "occlusion_ms": percentiles(occlusion), "gradients_ms": percentiles(gradients),
        "target_occlusion_p50_ms": 500, "load_average_1min_end": round(os.getloadavg()[0], 2)})
    print(json.dumps(report))


if __name__ == "__main__":
    main()
