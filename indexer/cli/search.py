"""CLI commands about the index: ``search``, ``similar``, ``reindex``."""

from __future__ import annotations

import argparse
import json
import time

from indexer.errors import QueryError
from indexer.index import results
from indexer.index.search import MODES, Searcher
from indexer.library.store import Library


def add_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search a library's clips by text, or by an example region")
    p.add_argument("library")
    p.add_argument("query", nargs="?", default="",
                   help="what happens in the clip (with --region: optional words fused with the region)")
    p.add_argument("--region", metavar="VIDEO:CLIP:SLOT",
                   help="search by example region: clips holding regions like this one (video id, "
                        "clip index in the video, region slot; or CLIP_ID:SLOT), fused with QUERY's "
                        "text score when QUERY is given (indexer.index.region_search)")
    p.add_argument("--k", type=_count, default=10, help="hits to return")
    p.add_argument("--rerank", type=_rerank, default="auto",
                   help="FAISS candidates reranked by the matching head: auto (default: only when "
                        "`actbert evaluate --split val` recorded that it improves R@1), N (always "
                        "the top N), 0 (never)")
    p.add_argument("--mode", choices=MODES, default="hybrid")
    p.add_argument("--video", help="only clips of this video id")
    p.add_argument("--task", help="only clips of videos of this task")
    p.add_argument("--checkpoint", help="model directory (default: the library's)")
    p.add_argument("--compare", nargs="?", const="", metavar="CHECKPOINT",
                   help="also rank with a second model and show both rankings with rank changes "
                        "(no value: the library's no-region ablation, library.json "
                        "'model_no_regions'; or any `actbert ship` folder)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_search)

    p = sub.add_parser("similar", help="clips nearest to a clip ('more like this')")
    p.add_argument("library")
    p.add_argument("clip_id", type=int)
    p.add_argument("--k", type=_count, default=10)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_similar)

    p = sub.add_parser("reindex", help="re-embed every clip and rebuild the FAISS index")
    p.add_argument("library")
    p.add_argument("--checkpoint", help="model directory (default: the library's)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_reindex)


def _count(text: str) -> int:
    """A whole number >= 1 (``--k``), refused as typed."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def _rerank(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected auto or a number >= 0, got {text!r}")
    return value


def run_search(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    searcher = Searcher(Library(args.library, readonly=True), args.checkpoint)
    load_ms = (time.perf_counter() - t0) * 1e3
    if args.region is not None:
        if args.compare is not None:
            raise QueryError("--compare ranks a text query with two models; it does not take --region")
        from indexer.index.region_search import region_of, search_region

        clip, slot = region_of(searcher.library, args.region)
        result = search_region(searcher, clip, slot, args.query, k=args.k, video=args.video, task=args.task)
    elif args.compare is not None:
        return _run_compare(args, searcher)
    else:
        result = searcher.search(args.query, k=args.k, rerank=args.rerank, mode=args.mode,
                                 video=args.video, task=args.task)
    if args.json:  # the same records as the app's downloads (indexer.index.results)
        print(results.to_json(result, searcher.fingerprint,
                              timings_ms={**result.timings_ms, "load": round(load_ms, 1)}))
        return 0
    asked = f"region {result.region}" + (f" + {result.query!r}" if result.query else "") \
        if result.region else repr(result.query)
    print(f"{len(result.hits)} hits for {asked} ({result.timings_ms.get('total', 0):.0f} ms)")
    print(f"order: {result.ordering}")
    for rank, hit in enumerate(result.hits, 1):
        scores = " ".join(f"{name}={value:.3f}" for name, value in
                          (("cos", hit.score), ("match", hit.rerank_score), ("bm25", hit.narration_score),
                           ("minilm", hit.semantic_score), ("region", hit.region_score)) if value is not None)
        if hit.region_slot is not None:
            scores += f" slot={hit.region_slot}"
        clip = hit.clip
        print(f"{rank:2d}. {clip.video_id} {clip.start_sec:6.1f}-{clip.end_sec:6.1f}s  "
              f"[{','.join(hit.signals)}] {scores}  {clip.narration[:60]!r}")
    return 0


def _run_compare(args: argparse.Namespace, searcher: Searcher) -> int:
    """``search --compare``: both models' hits and each clip's rank change."""
    from indexer.index.compare import second_searcher, side_by_side

    t0 = time.perf_counter()
    other = second_searcher(searcher, args.compare or None)
    load_ms = (time.perf_counter() - t0) * 1e3
    report = side_by_side(searcher, other, args.query, k=args.k, rerank=args.rerank, mode=args.mode,
                          video=args.video, task=args.task)
    report["timings_ms"] = {"second_model_load": round(load_ms, 1)}
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{args.query!r}: {report['first']['checkpoint']} | {report['second']['checkpoint']}")
    for rank, hit in enumerate(report["second"]["hits"], 1):
        change = hit["rank_change"]
        moved = "new" if change is None else f"{change:+d}"
        print(f"{rank:2d}. (first: {hit['rank_first'] or '-'}, {moved:>4}) {hit['video_id']} "
              f"{hit['start_sec']:6.1f}-{hit['end_sec']:6.1f}s  {hit['narration'][:60]!r}")
    return 0


def run_similar(args: argparse.Namespace) -> int:
    searcher = Searcher(Library(args.library, readonly=True))
    hits = searcher.similar(args.clip_id, args.k)
    if args.json:
        print(json.dumps([h.as_dict() for h in hits]))
    else:
        for hit in hits:
            clip = hit.clip
            print(f"{clip.clip_id:6d} {clip.video_id} {clip.start_sec:6.1f}-{clip.end_sec:6.1f}s "
                  f"{hit.score:.3f}")
    return 0


def run_reindex(args: argparse.Namespace) -> int:
    """Under the writer lock: the new index is written first, naming its model; library.json is
    switched to a new ``--checkpoint`` last, so a failure leaves the library as it was (a crash
    between the two is finished by the next writing command). Videos whose feature file is
    unusable are marked failed with the reason and left out."""
    from indexer.index.reconcile import build_index, model_record, reconcile_index

    t0 = time.perf_counter()
    library = Library(args.library)
    with library.writing():
        if args.checkpoint:
            record = model_record(library, args.checkpoint)
            index, failed = build_index(library, args.checkpoint, model=record)
            library.update_manifest(model=record)
        else:
            index, failed = build_index(library)
        failed.update(reconcile_index(library)[1]["failed"])
    report = {"vectors": len(index), "factory": index.factory, "seconds": round(time.perf_counter() - t0, 2),
              "failed": failed}
    print(json.dumps(report) if args.json else
          f"reindex: {report['vectors']} vectors ({report['factory']}) in {report['seconds']} s"
          + (f", {len(failed)} videos failed" if failed else ""))
    if not args.json:
        for video_id, reason in failed.items():
            print(f"  {video_id[:80]}: {reason}")
    return 0
