"""CLI commands about a library's contents: ``ingest``, ``status``, ``merge``, ``delete``."""

from __future__ import annotations

import argparse
import json
import shutil
import sys

from .ingest import IngestSettings, ingest, parse_shard
from .store import Library


def add_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ingest", help="extract clips, verbs, action and region features from videos")
    p.add_argument("paths", nargs="+", help="video files or folders (searched recursively)")
    p.add_argument("--library", required=True, help="library folder (created if missing)")
    p.add_argument("--preset", choices=["fast", "paper"], default="fast")
    p.add_argument("--action-backbone", default="i3d", choices=["i3d", "r3d_18", "r2plus1d_18", "s3d"])
    p.add_argument("--action-weights", default="default",
                   help="'default' (pretrained), 'none' (random: tests only) or a path")
    p.add_argument("--detector", help="torchvision detector name or a train-detector checkpoint")
    p.add_argument("--detector-weights", default="default", help="'default', 'none' or a path")
    p.add_argument("--no-regions", action="store_true", help="index actions and text only")
    p.add_argument("--max-boxes", type=int, default=5)
    p.add_argument("--score-threshold", type=float, default=0.4)
    p.add_argument("--fp16", action="store_true", help="store features as float16")
    p.add_argument("--shard", help="i/n: process only this deterministic share of the videos")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_ingest)

    p = sub.add_parser("status", help="per-video status, errors, clip counts and stage times")
    p.add_argument("library")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_status)

    p = sub.add_parser("delete", help="remove videos from the catalog, the features and the index")
    p.add_argument("library")
    p.add_argument("video_ids", nargs="+")
    p.set_defaults(func=run_delete)

    p = sub.add_parser("merge", help="merge shard libraries into one")
    p.add_argument("out", help="destination library (created if missing)")
    p.add_argument("shards", nargs="+", help="libraries made with ingest --shard")
    p.set_defaults(func=run_merge)


def settings_from_args(args: argparse.Namespace) -> IngestSettings:
    return IngestSettings(
        preset=args.preset, action_backbone=args.action_backbone,
        action_weights=args.action_weights, detector=args.detector,
        detector_weights=args.detector_weights, regions=not args.no_regions,
        score_threshold=args.score_threshold, max_boxes=args.max_boxes, fp16=args.fp16,
        device=args.device)


def run_ingest(args: argparse.Namespace) -> int:
    library = Library.create(args.library)
    summary = ingest(library, args.paths, settings_from_args(args), shard=parse_shard(args.shard),
                     progress=sys.stderr.isatty())
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"ingest: {summary['done']} done, {summary['failed']} failed, "
              f"{summary['videos'] - summary['todo']} already done")
        for video_id, error in summary["errors"].items():
            print(f"  {video_id}: {error}")
    return 0


def status_report(library: Library) -> dict:
    videos = []
    counts = {r[0]: r[1] for r in library.catalog.query(
        "SELECT video, count(*) FROM clips GROUP BY video")}
    for row in library.catalog.videos():
        videos.append({
            "video_id": row["video_id"], "path": row["path"], "status": row["status"],
            "error": row["error"], "warnings": json.loads(row["warnings"]),
            "clips": counts.get(row["id"], 0), "duration_sec": row["duration_sec"],
            "seconds_per_stage": json.loads(row["timings"]), "task": row["task"],
            "split": row["split"]})
    return {"library": str(library.root), "counts": library.catalog.stats(),
            "model": library.manifest.get("model"), "videos": videos}


def run_status(args: argparse.Namespace) -> int:
    report = status_report(Library(args.library, readonly=True))
    if args.json:
        print(json.dumps(report))
        return 0
    counts = report["counts"]
    print(f"{report['library']}: {counts['done']} done, {counts['failed']} failed, "
          f"{counts['pending']} pending, {counts['clips']} clips")
    for video in report["videos"]:
        line = f"  {video['status']:8} {video['clips']:4d} clips  {video['video_id']}"
        if video["error"]:
            line += f"  ({video['error']})"
        print(line)
    return 0


def run_delete(args: argparse.Namespace) -> int:
    library = Library(args.library)
    removed = []
    for video_id in args.video_ids:
        if library.catalog.video(video_id) is None:
            raise ValueError(f"no video {video_id!r} in {library.root}")
        removed += library.catalog.delete_video(video_id)
        library.feature_path(video_id).unlink(missing_ok=True)
    if removed and library.manifest.get("model"):
        from .search import update_index

        update_index(library, removed, [])
    print(f"delete: {len(args.video_ids)} videos, {len(removed)} clips removed")
    return 0


def run_merge(args: argparse.Namespace) -> int:
    """Copy every finished video (catalog rows and feature file) of each shard into ``out``."""
    from .store import ClipRecord

    out = Library.create(args.out)
    merged = 0
    for shard_path in args.shards:
        shard = Library(shard_path, readonly=True)
        for source in shard.manifest.get("sources", []):
            out.add_source(source)
        for row in shard.catalog.videos("done"):
            fields_ = {k: row[k] for k in row.keys() if k not in ("id", "video_id", "path",
                                                                  "fingerprint", "size_bytes", "status")}
            rowid = out.catalog.upsert_video(row["video_id"], row["path"], row["fingerprint"],
                                             row["size_bytes"])
            shutil.copy2(shard.feature_path(row["video_id"]), out.feature_path(row["video_id"]))
            clips = [ClipRecord(c["clip_index"], c["start_sec"], c["end_sec"], c["narration"],
                                tuple(json.loads(c["verbs"])),
                                tuple(map(tuple, json.loads(c["action_classes"]))))
                     for c in shard.catalog.clips_of(row["video_id"])]
            cues = [tuple(r) for r in shard.catalog.query(
                "SELECT start_sec, end_sec, text FROM cues WHERE video = ?", (row["id"],))]
            steps = [tuple(r) for r in shard.catalog.query(
                "SELECT step_index, start_sec, end_sec, verb, description FROM steps WHERE video = ?",
                (row["id"],))]
            fields_.pop("error", None)
            fields_.pop("updated_at", None)
            out.catalog.complete_video(rowid, clips, cues, steps, **fields_)
            merged += 1
        if shard.manifest.get("extractors"):
            out.update_manifest(extractors=shard.manifest["extractors"],
                                settings=shard.manifest.get("settings", {}))
    print(f"merge: {merged} videos into {out.root}")
    return 0
