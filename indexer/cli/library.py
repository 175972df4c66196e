"""CLI commands about a library's contents: ``ingest``, ``status``, ``merge``, ``delete``, ``repair``.

Every writing command holds the library's writer lock and ends with the index brought to the
catalog (``indexer.index.reconcile``); ``repair`` does only that, plus an SQLite integrity check.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import sys

from actbert.atomic import atomic_write
from actbert.device import checked_device
from indexer.features.sampling import SAMPLINGS
from indexer.index.reconcile import index_state, reconcile_index
from indexer.index.region_index import region_state
from indexer.index.service import LibraryService
from indexer.library.catalog import ClipRecord, clip_narrated
from indexer.library.discovery import parse_shard
from indexer.library.export import MIN_VERB_COUNT, export_corpus
from indexer.library.feature_check import FeatureWidths, read_features
from indexer.library.ingest import IngestSettings
from indexer.library.store import Library, LibraryError

# What merge copies from a shard's video rows (the rest is set here or is the shard's own).
MERGED_VIDEO_FIELDS = ("duration_sec", "fps", "width", "height", "rotation_deg", "codec", "transcript_path",
                       "task", "task_instance", "split", "warnings", "extractors", "timings")
_REQUIRED_COLUMNS = {
    "videos": {"id", "video_id", "path", "fingerprint", "size_bytes", "status", *MERGED_VIDEO_FIELDS},
    "clips": {"id", "video", "clip_index", "start_sec", "end_sec", "narration", "verbs", "action_classes"},
    "cues": {"video", "start_sec", "end_sec", "text"},
    "steps": {"video", "step_index", "start_sec", "end_sec", "verb", "description"},
}
_SAFE_VIDEO_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,159}")


def add_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ingest", help="extract clips, verbs, action and region features from videos")
    p.add_argument("paths", nargs="+", help="video files or folders (searched recursively)")
    p.add_argument("--library", required=True, help="library folder (created if missing)")
    p.add_argument("--preset", choices=["fast", "paper"], default="fast")
    p.add_argument("--action-sampling", choices=SAMPLINGS, default="centre",
                   help="the action CNN's frames around each clip's centre (the paper's) or laid "
                        "evenly over the whole clip; the shipped demo models were trained on centre "
                        "features: use spread with a model trained on spread ones")
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
    p.add_argument("--max-duration-sec", type=float, default=IngestSettings.max_duration_sec,
                   help="refuse videos longer than this (default: 4 hours)")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="analyse the videos on Ray actors: 'local' (default: start Ray here), 'auto' "
                        "(this machine's cluster) or an address (ray://host:10001); this process writes")
    p.add_argument("--ray-actors", type=int, help="actors (default: the cluster's CPUs, or GPUs with --device cuda)")
    p.add_argument("--index-backend", choices=["faiss", "milvus"],
                   help="where the clip index lives (default: as the library has it; new libraries: faiss)")
    p.add_argument("--uri", help="with --index-backend milvus: a file path (Milvus Lite) or http://host:19530")
    p.add_argument("--collection", help="with --index-backend milvus: the collection (default: from the library)")
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

    p = sub.add_parser("repair", help="bring the index to the catalog, remove files killed commands left")
    p.add_argument("library")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_repair)


def settings_from_args(args: argparse.Namespace) -> IngestSettings:
    return IngestSettings(
        preset=args.preset, action_sampling=args.action_sampling, action_backbone=args.action_backbone,
        action_weights=args.action_weights, detector=args.detector,
        detector_weights=args.detector_weights, regions=not args.no_regions,
        score_threshold=args.score_threshold, max_boxes=args.max_boxes, fp16=args.fp16,
        device=checked_device(args.device), max_duration_sec=args.max_duration_sec)


def add_export_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export-corpus", help="write LIB/corpus.jsonl (what actbert train and "
                                             "evaluate read) from the library's finished videos")
    p.add_argument("library")
    p.add_argument("--min-verb-count", type=int, default=MIN_VERB_COUNT,
                   help="keep verbs seen at least this often in the narrations")
    p.set_defaults(func=run_export_corpus)


def run_export_corpus(args: argparse.Namespace) -> int:
    library = Library(args.library)
    with library.writing():
        print(export_corpus(library, args.min_verb_count))
    return 0


def run_ingest(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    runner = None
    if args.ray:
        from indexer.library.ray_ingest import ray_runner  # Ray is imported only here

        runner = ray_runner(settings, args.ray, actors=args.ray_actors)
    library = Library.create(args.library)
    choose_index_backend(library, args.index_backend, args.uri, args.collection)
    summary = LibraryService(library).ingest(args.paths, settings, shard=parse_shard(args.shard),
                                             progress=sys.stderr.isatty() and not args.json, runner=runner)
    if args.json:
        print(json.dumps(summary.to_json()))
    else:
        print(f"ingest: {summary.done} done, {summary.failed} failed, {summary.already_done} already done")
        for video_id, error in summary.errors.items():
            print(f"  {video_id}: {error}")
        for video_id in summary.interrupted:
            print(f"  {video_id}: the last ingest stopped while analysing it (killed, out of memory?); "
                  "it ran after the others")
        for problem in summary.not_searched:
            print(f"  {problem}")
    return 0


def choose_index_backend(library: Library, name: str | None, uri: str | None, collection: str | None) -> None:
    """Record ``--index-backend`` in library.json; the run's end builds or updates that index."""
    from indexer.index import backends

    if name is None:
        if uri or collection:
            raise ValueError("--uri and --collection go with --index-backend milvus")
        return
    if name == "milvus" and not uri:
        raise ValueError("--index-backend milvus needs --uri (a file path for Milvus Lite, or http://host:19530)")
    record = backends.milvus_record(library, uri, collection) if name == "milvus" else {"name": "faiss"}
    if record != backends.backend_of(library):
        library.update_manifest(index_backend=record)


def run_status(args: argparse.Namespace) -> int:
    status = LibraryService(Library(args.library, readonly=True)).status()
    if args.json:
        print(json.dumps(status.to_json()))
        return 0
    counts = status.counts
    print(f"{status.library}: {counts['done']} done, {counts['failed']} failed, "
          f"{counts['pending']} pending, {counts['clips']} clips")
    index = status.index
    if index["state"] not in ("ok", "no model"):
        print(f"  index {index['state']}: {index['problem']}; run `python -m indexer repair {status.library}`")
    regions = status.region_index
    if regions["state"] != "ok":
        print(f"  region index {regions['state']}: {regions['problem']}; run "
              f"`python -m indexer repair {status.library}`")
    for video in status.videos:
        line = f"  {video.status:8} {video.clips:4d} clips  {video.video_id}"
        if video.error:
            line += f"  ({video.error})"
        print(line)
    return 0


def run_delete(args: argparse.Namespace) -> int:
    """Catalog first (one transaction per video), then feature files, then the index: a crash in
    between leaves extra index ids or files that the next writing command removes. An id already
    gone (an interrupted delete run again) is reported and the others are still deleted; an id
    that is no plain file name loses its catalog rows but no file is touched for it."""
    library = Library(args.library)
    removed, deleted, missing = [], 0, []
    with library.writing():
        for video_id in dict.fromkeys(args.video_ids):
            if library.catalog.video(video_id) is None:
                missing.append(video_id)
                continue
            try:
                feature_file = library.feature_path(video_id)
            except LibraryError as exc:
                feature_file = None
                print(f"  {video_id[:80]!r}: catalog rows removed, no file touched ({exc})", file=sys.stderr)
            removed += library.catalog.delete_video(video_id)
            deleted += 1
            if feature_file is not None:
                feature_file.unlink(missing_ok=True)
        failed = reconcile_index(library)[1]["failed"]
    for video_id in missing:
        print(f"  no video {video_id[:80]!r} in {library.root} (already deleted?)", file=sys.stderr)
    if not deleted:
        raise LibraryError(f"no video to delete: none of {len(missing)} ids is in {library.root}")
    print(f"delete: {deleted} videos, {len(removed)} clips removed"
          + (f", {len(missing)} not found" if missing else ""))
    _print_failed(failed)
    return 0


def run_repair(args: argparse.Namespace) -> int:
    library = Library(args.library)
    _, report = reconcile_index(library)
    report["integrity_check"] = library.catalog.integrity_check()
    report["index"] = index_state(library)
    report["region_index"] = region_state(library)
    if args.json:
        print(json.dumps(report))
    else:
        regions = report["regions"]
        print(f"repair: index {report['index']['state']}, {report['added']} clips added, "
              f"{report['removed']} removed{', rebuilt' if report['rebuilt'] else ''}; region index "
              f"{report['region_index']['state']}, {regions['added']} regions added, {regions['removed']} "
              f"removed{', rebuilt' if regions['rebuilt'] else ''}; "
              f"{len(report['orphans']) + len(regions['orphans'])} leftover files removed, "
              f"catalog {report['integrity_check']}")
        if report["reindex"]:
            print(f"  {report['reindex']}")
        for video_id, reason in report["failed"].items():
            print(f"  {video_id[:80]}: {reason}")
    return 0 if report["integrity_check"] == "ok" else 1


def check_shard(shard: Library) -> None:
    """A shard's catalog must have this version's tables and columns (merge reads them by name)."""
    for table, required in _REQUIRED_COLUMNS.items():
        have = shard.catalog.columns(table)
        if not required <= have:
            raise LibraryError(f"{shard.root}: not a shard of this version (table {table} lacks "
                               f"{', '.join(sorted(required - have))})")


def shard_clip(row) -> ClipRecord:
    """A shard's clip row, checked: whole index, finite times in order, JSON lists."""
    start, end = float(row["start_sec"]), float(row["end_sec"])
    if not (math.isfinite(start) and math.isfinite(end) and 0 <= start <= end) or int(row["clip_index"]) < 0:
        raise ValueError(f"clip {row['clip_index']}: bad times {start}..{end}")
    verbs, classes = json.loads(row["verbs"]), json.loads(row["action_classes"])
    if not isinstance(verbs, list) or not isinstance(classes, list):
        raise ValueError(f"clip {row['clip_index']}: verbs and action classes must be lists")
    return ClipRecord(int(row["clip_index"]), start, end, str(row["narration"]), tuple(map(str, verbs)),
                      tuple((str(c[0]), float(c[1])) for c in classes), clip_narrated(row))


def check_same_extractors(out: Library, shards: list[Library]) -> None:
    """Refuse, before anything is copied, shards whose features were made by other extractors than
    each other's or than ``out``'s finished videos (another action backbone, detector or preset):
    their widths and meanings differ, so one index cannot hold them."""
    records = [(lib, lib.manifest.extractors) for lib in ([out] if out.catalog.videos("done") else []) + shards]
    records = [(lib, rec) for lib, rec in records if rec]
    for lib, rec in records[1:]:
        if rec != records[0][1]:
            raise LibraryError(f"{lib.root} was made by other extractors ({_describe(rec)}) than "
                               f"{records[0][0].root} ({_describe(records[0][1])}): merge only shards "
                               "ingested with the same --preset, --action-backbone and detector")


def _describe(extractors: dict) -> str:
    return ", ".join(f"{stream} {str(rec.get('name'))[:60]}" if isinstance(rec, dict) else f"{stream} ?"
                     for stream, rec in sorted(extractors.items())) if isinstance(extractors, dict) else "?"


def run_merge(args: argparse.Namespace) -> int:
    """Copy every finished video (catalog rows and feature file) of each shard into ``out``.

    Shards are checked first (schema, the same extractors, video ids that are plain file names); a
    video whose rows or feature file are unusable is skipped with its reason."""
    out = Library.create(args.out)
    shards = [Library(path, readonly=True) for path in args.shards]
    for shard in shards:
        check_shard(shard)
    check_same_extractors(out, shards)
    widths = FeatureWidths.of_library(out)
    merged, skipped = 0, {}
    with out.writing():
        for shard in shards:
            expected = widths if widths.action is not None else FeatureWidths.of_library(shard)
            for source in shard.manifest.sources:
                out.add_source(source)
            for row in shard.catalog.videos("done"):
                try:
                    _merge_video(out, shard, row, expected)
                    merged += 1
                except (ValueError, TypeError, KeyError, IndexError, OSError, LibraryError) as exc:
                    skipped[str(row["video_id"])[:80]] = f"{type(exc).__name__}: {exc}".splitlines()[0]
            if shard.manifest.extractors:
                out.update_manifest(extractors=dict(shard.manifest.extractors),
                                    settings=dict(shard.manifest.settings))
        failed = reconcile_index(out)[1]["failed"]
    print(f"merge: {merged} videos into {out.root}" + (f", {len(skipped)} skipped" if skipped else ""))
    for video_id, reason in skipped.items():
        print(f"  skipped {video_id}: {reason}")
    _print_failed(failed)
    return 0


def _print_failed(failed: dict[str, str]) -> None:
    """The videos a writing command's reconciliation marked failed, one line each."""
    for video_id, reason in failed.items():
        print(f"  failed {video_id[:80]}: {reason}")


def _merge_video(out: Library, shard: Library, row, widths: FeatureWidths) -> None:
    video_id = row["video_id"]
    if not isinstance(video_id, str) or not _SAFE_VIDEO_ID.fullmatch(video_id):
        raise ValueError(f"video id {str(video_id)[:80]!r} is not a plain file name")
    source, target = shard.feature_path(video_id), out.feature_path(video_id)
    read_features(source, widths, f"{shard.root.name}/features/{source.name}")
    clips = [shard_clip(c) for c in shard.catalog.clips_of(video_id)]
    cues = [(float(a), float(b), str(t)) for a, b, t in shard.catalog.cues_of(video_id)]
    steps = [(int(i), float(a), float(b), v, str(d)) for i, a, b, v, d in shard.catalog.steps_of(video_id)]
    fields_ = {k: row[k] for k in MERGED_VIDEO_FIELDS}
    rowid = out.catalog.upsert_video(video_id, str(row["path"]), str(row["fingerprint"]),
                                     int(row["size_bytes"] or 0))
    atomic_write(target, lambda tmp: shutil.copy2(source, tmp))
    out.catalog.complete_video(rowid, clips, cues, steps, feature_path=f"features/{video_id}.safetensors",
                               **fields_)
