"""Ingestion cost: seconds of compute per minute of video for each stage. Prints one JSON object.

Runs the real extraction (``indexer.library.ingest.extract_video``) on generated SynthKitchen videos
(320x240, 24 fps) for both presets:

- ``fast``: I3D Kinetics-400 (16 frames at 8 FPS, 112 crop) and the small ``tiny`` detector at the
  video's own size, as the demo uses;
- ``paper``: I3D (32 frames at 8 FPS, 224 crop) and Faster R-CNN R50-FPN v2 at 1 FPS. Offline
  there are no COCO weights: the detector runs with random weights, which costs the same compute
  (its boxes are not meaningful; the timing is).

Target: ``fast`` at least 2x real time (< 30 s per minute of video) on 2 cores.

``--ray [ADDRESS]`` adds ``whole_ingest``: complete ``indexer ingest`` runs (probe, verbs, features,
feature files, catalog; the ``fast`` preset) into fresh libraries, ``--repeats`` times each, on this
process (local) and on Ray actors (``local``: a Ray started here with ``--ray-cpus``), with medians,
the Ray/local ratio and Ray's start-up seconds (counted apart).

Usage: python bench/ingest.py [--videos 2] [--presets fast paper] [--ray [ADDRESS]] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from indexer.features.actions import PRESETS, ActionExtractor
from indexer.features.detector import build_detector, save_detector
from indexer.features.regions import RegionExtractor
from indexer.features.transcripts import load_transcript
from indexer.features.video import probe
from indexer.library.ingest import Extractors, IngestSettings, clip_spans, extract_video
from synthkitchen.corpus import generate


def extractors(preset: str, workdir: Path) -> Extractors:
    actions = ActionExtractor("i3d", weights="default", **PRESETS[preset])
    if preset == "fast":
        torch.manual_seed(0)
        path = save_detector(build_detector("tiny", 18).eval(), workdir / "tiny", arch="tiny",
                             class_names=[f"c{i}" for i in range(17)])
        regions = RegionExtractor(str(path), score_threshold=0.0)
    else:
        regions = RegionExtractor("fasterrcnn_resnet50_fpn_v2", weights="none", score_threshold=0.0)
    return Extractors(actions, regions, {"actions": actions.name, "regions": regions.name})


def whole_ingest(videos_dir: Path, workdir: Path, args: argparse.Namespace, minutes: float) -> dict:
    """Seconds of complete ingest runs on this process and on Ray (see the module docstring)."""
    import statistics

    import ray

    from indexer.library.ingest import ingest
    from indexer.library.ray_ingest import connect, ray_runner
    from indexer.library.store import Library
    from synthkitchen.ground_truth import register

    register()  # ingest reads the corpus's ground truth, as the indexer command does
    torch.manual_seed(0)  # the same tiny detector as the ``fast`` preset above
    detector = save_detector(build_detector("tiny", 18).eval(), workdir / "tiny-whole", arch="tiny",
                             class_names=[f"c{i}" for i in range(17)])
    settings = IngestSettings(preset="fast", detector=str(detector), score_threshold=0.0)
    t0 = time.perf_counter()
    connect(args.ray, num_cpus=args.ray_cpus)
    startup = time.perf_counter() - t0
    runs: dict[str, list[float]] = {"local": [], "ray": []}
    for repeat in range(args.repeats):
        for name in ("local", "ray"):
            library = Library.create(workdir / f"lib-{name}-{repeat}")
            runner = ray_runner(settings, args.ray) if name == "ray" else None
            t0 = time.perf_counter()
            summary = ingest(library, [videos_dir], settings, progress=False, runner=runner)
            runs[name].append(time.perf_counter() - t0)
            assert summary.failed == 0, summary.errors
    resources = ray.cluster_resources()
    ray.shutdown()
    median = {name: statistics.median(times) for name, times in runs.items()}
    return {"videos": len(list(videos_dir.glob("*.mp4"))), "repeats": args.repeats, "ray_address": args.ray,
            "ray_cpus": resources.get("CPU"), "ray_startup_s": round(startup, 2),
            "seconds": {name: [round(t, 2) for t in times] for name, times in runs.items()},
            "median_s": {name: round(t, 2) for name, t in median.items()},
            "real_time_factor": {name: round(60 * minutes / t, 2) for name, t in median.items()},
            "ray_over_local_time": round(median["ray"] / median["local"], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--videos", type=int, default=2)
    parser.add_argument("--presets", nargs="+", default=["fast", "paper"])
    parser.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                        help="also time whole ingest runs locally and on Ray (local: start one here)")
    parser.add_argument("--ray-cpus", type=int, help="CPUs of a Ray started here (default: all)")
    parser.add_argument("--repeats", type=int, default=3, help="whole-ingest runs per side (--ray)")
    args = parser.parse_args()
    report = {"torch_threads": torch.get_num_threads(), "presets": {}}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        paths = generate(workdir / "corpus", args.videos, seed=7)
        videos = list(paths)
        minutes = 0.0
        infos = []
        for path in videos:
            info = probe(path)
            minutes += info.duration_sec / 60
            infos.append((path, info, load_transcript(path.with_suffix(".vtt"))))
        report["video_minutes"] = round(minutes, 3)
        report["size"] = [infos[0][1].width, infos[0][1].height]
        for preset in args.presets:
            ex = extractors(preset, workdir)
            settings = IngestSettings(preset=preset)
            totals = {"decode": 0.0, "actions": 0.0, "regions": 0.0}
            clips = 0
            t0 = time.perf_counter()
            for path, info, cues in infos:
                spans = clip_spans(info, cues, settings)
                clips += len(spans)
                _, timings = extract_video(path, path.stem, info, spans, ex, settings)
                for key in totals:
                    totals[key] += timings[key]
            wall = time.perf_counter() - t0
            per_minute = {k: round(v / minutes, 2) for k, v in totals.items()}
            report["presets"][preset] = {
                "action": ex.names["actions"], "regions": ex.names["regions"], "clips": clips,
                "seconds_per_video_minute": per_minute,
                "total_seconds_per_video_minute": round(wall / minutes, 2),
                "real_time_factor": round(60 * minutes / wall, 2)}
        if args.ray:
            report["whole_ingest"] = whole_ingest(workdir / "corpus" / "videos", workdir, args, minutes)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
