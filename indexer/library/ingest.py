"""Ingestion: folders of videos with narration -> clip spans, verbs, action and region features.

reader (``indexer.library.discovery``: the videos, their ids, transcripts; then probe) -> mapper
(spans, verbs, frames, extractors) -> writer (feature file, then the catalog in one transaction).
Any exception in one video records it as ``failed`` with a one-line reason and the batch goes on;
transcript and ground-truth problems, and a truncated file, are warnings on a video that is still
usable. A corpus's ground truth (task, split, true steps) comes from the readers registered in
``indexer.library.ground_truth``. A killed run leaves the interrupted video ``pending`` and nothing
half-written, so rerunning the same command resumes; a video is marked ``INTERRUPTED`` while it
is being analysed, so one that killed the last run (out of memory) is redone after the others and
reported (``IngestSummary.interrupted``) instead of blocking them again. The run holds the library's writer lock and
ends by bringing the index to the catalog (``indexer.index.reconcile``). ``--shard i/n`` picks a
deterministic subset. Only the folders named become the library's ``sources`` (never a symlink's
target folder).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
from tqdm import tqdm

from actbert.data import VideoFeatures
from indexer.features.boxes import scale_xyxy
from indexer.features.sampling import SAMPLINGS, cover_gaps, fixed_windows, narration_spans, sample_times
from indexer.features.video import VideoError, VideoInfo, probe, read_frames_at
from indexer.library.catalog import ClipRecord
from indexer.library.discovery import (
    discover,
    fingerprint,
    resolved_path,
    shard_of,
    sidecar_transcript,
    source_folders,
    video_id_for,
)
from indexer.library.feature_check import FeatureWidths, check_features
from indexer.library.ground_truth import GroundTruthError, ground_truth_for
from indexer.library.store import Library

log = logging.getLogger(__name__)

# Clips decoded at once: bounds memory on long videos (clips are processed in chunks), and the
# decoded pixels of a chunk stay under CHUNK_BYTES (frames are decoded at the size each stage takes).
CLIPS_PER_CHUNK = 8
CHUNK_BYTES = 256 * 2**20
# Narration text kept per clip (cues are cut in ``discovery``): spaCy refuses texts over
# 1,000,000 characters (E088).
MAX_NARRATION_CHARS = 5_000
# The error of a ``pending`` video while it is analysed: still there at the next run, the video
# was being worked on when the run died (an out-of-memory kill leaves no other trace).
INTERRUPTED = "interrupted: the last ingest stopped while analysing this video (killed, out of memory?)"


@dataclass(frozen=True)
class IngestSettings:
    """What ingestion extracts and how. ``preset`` picks the action sampling (``paper``: 32
    frames at 8 FPS, 224 crop; ``fast``: the cheaper CPU setting) and the default detector."""

    preset: str = "fast"
    action_sampling: str = "centre"  # or "spread": the preset's frames over the whole clip
    action_backbone: str = "i3d"
    action_weights: str = "default"
    detector: str | None = None
    detector_weights: str = "default"
    regions: bool = True
    score_threshold: float = 0.4
    max_boxes: int = 5
    region_fps: float = 1.0
    min_clip_sec: float = 4.0
    max_clip_sec: float = 10.0
    window_sec: float = 6.0  # unnarrated stretches (and videos without narration): windows this long
    min_gap_sec: float = 2.0  # shorter stretches between narrated clips are left uncovered
    fp16: bool = False
    device: str = "cpu"
    max_duration_sec: float = 4 * 3600.0  # longer videos are refused (measured from their packets)

    def __post_init__(self) -> None:
        if self.preset not in ("fast", "paper"):
            raise ValueError(f"preset must be 'fast' or 'paper', got {self.preset!r}")
        if self.action_sampling not in SAMPLINGS:
            raise ValueError(f"action_sampling must be one of {', '.join(SAMPLINGS)}, got {self.action_sampling!r}")

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> "IngestSettings":
        """The settings a library recorded (library.json's ``settings``); keys this version does not
        know are left out."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in known})

    @property
    def detector_name(self) -> str:
        if self.detector:
            return self.detector
        return ("fasterrcnn_resnet50_fpn_v2" if self.preset == "paper"
                else "fasterrcnn_mobilenet_v3_large_320_fpn")


@dataclass
class IngestSummary:
    """What one ingest run did; ``to_json()`` is what ``indexer ingest --json`` prints."""

    videos: int                # video files found under the paths named
    todo: int                  # of them, those not done before (or changed since), this run's work
    done: int = 0
    failed: int = 0
    errors: dict[str, str] = field(default_factory=dict)  # video id -> its one-line reason
    indexed: bool = False      # the library has a model, and the index was brought to the catalog
    not_searched: list[str] = field(default_factory=list)  # folders that could not be searched
    interrupted: list[str] = field(default_factory=list)   # video ids the last run died on (run last)

    @property
    def already_done(self) -> int:
        """Videos found that an earlier run had finished (and unchanged since)."""
        return self.videos - self.todo

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Extractors:
    """The models, built once per run (only when there is work)."""

    actions: object
    regions: object | None
    names: dict = field(default_factory=dict)


def build_extractors(settings: IngestSettings) -> Extractors:
    from indexer.features.actions import PRESETS, ActionExtractor

    actions = ActionExtractor(settings.action_backbone, weights=settings.action_weights,
                              device=settings.device, sampling=settings.action_sampling,
                              **PRESETS[settings.preset])
    regions = None
    if settings.regions:
        from indexer.features.regions import RegionExtractor

        regions = RegionExtractor(settings.detector_name, weights=settings.detector_weights,
                                  score_threshold=settings.score_threshold,
                                  max_boxes=settings.max_boxes, device=settings.device)
    names = {"actions": {"name": actions.name, "version": actions.version,
                         "preset": settings.preset}}  # version names the sampling
    if regions is not None:
        names["regions"] = {"name": regions.name, "version": regions.version,
                            "classes": list(regions.class_names)}
    return Extractors(actions, regions, names)


# ---- mapper ---------------------------------------------------------------------------------


def clip_spans(info: VideoInfo, cues, settings: IngestSettings):
    """The whole video as clips: narration-aligned spans, and fixed windows flagged
    ``narrated=False`` over every stretch of at least ``min_gap_sec`` that no narrated span covers
    (``cover_gaps``), so visual search reaches the silent parts too. A video without usable
    narration is windows only, all unnarrated."""
    spans = (narration_spans(cues, info.duration_sec, settings.min_clip_sec, settings.max_clip_sec)
             if cues else [])
    if not spans:
        return [replace(w, narrated=False) for w in fixed_windows(info.duration_sec, settings.window_sec)]
    return cover_gaps(spans, info.duration_sec, settings.window_sec, settings.min_gap_sec)


def decode_sizes(info: VideoInfo, spans, ex: Extractors, settings: IngestSettings):
    """(action frame size, region frame size or None, clips per chunk): frames are scaled in the
    decoder to what each stage takes (the action CNN's short side, the detector's input size), and
    a chunk holds at most ``CHUNK_BYTES`` of decoded pixels (at least one clip)."""
    height, width = info.height, info.width
    scale = getattr(ex.actions, "short_side", 256) / min(height, width)
    action_size = (max(2, round(height * scale)), max(2, round(width * scale)))
    region_size = ex.regions.input_size(height, width) if ex.regions is not None else None
    longest = max((s.duration_sec for s in spans), default=0.0)
    clip_bytes = 3 * action_size[0] * action_size[1] * len(ex.actions.sample_clip_times(0.0, longest))
    if region_size is not None:
        clip_bytes += 3 * region_size[0] * region_size[1] * len(sample_times(0.0, longest, settings.region_fps))
    return action_size, region_size, max(1, min(CLIPS_PER_CHUNK, CHUNK_BYTES // clip_bytes))


def extract_video(path: Path, video_id: str, info: VideoInfo, spans, ex: Extractors,
                  settings: IngestSettings) -> tuple[VideoFeatures, dict[str, float]]:
    """Action and region features of every span, processed in chunks of clips (``decode_sizes``);
    region boxes are mapped back to the video's own pixels."""
    timings = {"decode": 0.0, "actions": 0.0, "regions": 0.0}
    action_feats, action_probs = [], []
    region_rows: list[tuple] = []
    height, width = info.height, info.width
    action_size, region_size, per_chunk = decode_sizes(info, spans, ex, settings)
    for start in range(0, len(spans), per_chunk):
        chunk = spans[start:start + per_chunk]
        t0 = time.perf_counter()
        times = [ex.actions.sample_clip_times(s.start_sec, s.end_sec) for s in chunk]
        frames = read_frames_at(path, np.concatenate(times), size=action_size)
        clips = frames.reshape(len(chunk), len(times[0]), *frames.shape[1:])
        region_times = [sample_times(s.start_sec, s.end_sec, settings.region_fps) for s in chunk]
        region_frames = (read_frames_at(path, np.concatenate(region_times), size=region_size)
                         if ex.regions is not None else None)
        timings["decode"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        feats, probs = ex.actions(clips)
        action_feats.append(feats)
        action_probs.append(probs)
        timings["actions"] += time.perf_counter() - t0
        if ex.regions is None:
            continue
        t0 = time.perf_counter()
        detections = ex.regions(region_frames)
        flat_times = np.concatenate(region_times)
        clip_of_frame = np.concatenate([np.full(len(t), start + i) for i, t in enumerate(region_times)])
        for det, t, clip in zip(detections, flat_times, clip_of_frame):
            boxes = scale_xyxy(det.boxes_xyxy, region_size[::-1], (width, height))
            for k in range(len(det.scores)):
                region_rows.append((det.features[k], boxes[k], det.class_probs[k],
                                    det.scores[k], clip, t))
        timings["regions"] += time.perf_counter() - t0
    num_classes = len(ex.regions.class_names) if ex.regions is not None else 1
    feature_size = ex.regions.feature_size if ex.regions is not None else 1
    columns = list(zip(*region_rows)) if region_rows else [[]] * 6
    features = VideoFeatures(
        video_id=video_id,
        clip_start_sec=np.array([s.start_sec for s in spans]),
        clip_end_sec=np.array([s.end_sec for s in spans]),
        action_features=np.concatenate(action_feats),
        action_scores=np.concatenate(action_probs),
        region_features=np.array(columns[0], np.float32).reshape(-1, feature_size),
        region_boxes_xyxy=np.array(columns[1], np.float32).reshape(-1, 4),
        region_classes=np.array(columns[2], np.float32).reshape(-1, num_classes),
        region_scores=np.array(columns[3], np.float32),
        region_clip=np.array(columns[4], np.int64),
        region_time_sec=np.array(columns[5], np.float64),
        frame_size=(width, height),
        extractors=ex.names,
    )
    return features, timings


def top_classes(probs: np.ndarray, names: list[str], k: int = 5) -> list[list[tuple[str, float]]]:
    order = np.argsort(-probs, axis=1)[:, :k]
    return [[(names[j], round(float(p[j]), 4)) for j in row] for p, row in zip(probs, order)]


# ---- runner ---------------------------------------------------------------------------------


@dataclass
class VideoJob:
    """One video to process: its catalog row, id and file."""

    rowid: int
    video_id: str
    path: Path


@dataclass
class VideoResult:
    """One video analysed (the mapper's output, made anywhere): what the library's writer commits."""

    info: VideoInfo
    features: VideoFeatures
    clips: list[ClipRecord]
    cues: list
    sidecar: Path | None
    truth: object | None
    warnings: list[str]
    timings: dict[str, float]


@dataclass
class VideoFailure:
    """One video that could not be processed, with its one-line reason."""

    message: str
    seconds: float


def failure_of(exc: BaseException, started: float) -> VideoFailure:
    return VideoFailure(f"{type(exc).__name__}: {exc}".splitlines()[0][:500],
                        round(time.perf_counter() - started, 3))


class LocalRunner:
    """Processes the jobs one after the other in this process (the embedded default). A runner
    has ``names`` (the extractors' record) and ``run(jobs)``, which yields ``(job, VideoResult or
    VideoFailure)`` in the order of ``jobs`` (so clip ids do not depend on the runner)."""

    def __init__(self, settings: IngestSettings, extractors: Extractors | None = None) -> None:
        self.settings = settings
        self.ex = extractors or build_extractors(settings)
        self.names = self.ex.names

    def run(self, jobs: list[VideoJob]):
        from indexer.features.verbs import extract_verbs

        for job in jobs:
            yield job, analyse_or_fail(job, self.settings, self.ex, extract_verbs)


def analyse_or_fail(job: VideoJob, settings: IngestSettings, ex: Extractors,
                    extract_verbs) -> VideoResult | VideoFailure:
    """``analyse_video`` with any exception turned into that video's failure."""
    started = time.perf_counter()
    try:
        return analyse_video(job.path, job.video_id, settings, ex, extract_verbs)
    except Exception as exc:  # noqa: BLE001 - one video's failure, whatever it is, is that video's
        return failure_of(exc, started)


def ingest(library: Library, paths: list[str | Path], settings: IngestSettings,
           shard: tuple[int, int] | None = None, progress: bool = True,
           extractors: Extractors | None = None,
           on_video_done: Callable[[str], None] | None = None,
           runner: Callable[[], object] | None = None) -> IngestSummary:
    """Ingest every video under ``paths`` into ``library``; returns what it did.

    Videos already ``done`` with an unchanged file are skipped. Extractors are built only when
    there is work (a missing pretrained model is one clear error, raised before any video).
    ``runner`` makes the runner that analyses the videos (default ``LocalRunner``; Ray:
    ``indexer.library.ray_ingest``); whichever it is, this process commits every result. Holds
    the library's writer lock; ends with the index brought to the catalog."""
    with library.writing():
        summary = _ingest_locked(library, paths, settings, shard, progress, on_video_done,
                                 runner or (lambda: LocalRunner(settings, extractors)))
        from indexer.index.reconcile import reconcile_index

        index, report = reconcile_index(library)  # also removes files a killed run left
        summary.indexed = index is not None
        summary.errors.update(report["failed"])
        return summary


def plan(library: Library, paths: list[str | Path], shard: tuple[int, int] | None,
         problems: list[str] | None = None) -> tuple[list[Path], list[VideoJob]]:
    """Register the videos under ``paths`` (and the folders as sources); returns all videos and
    the jobs still to do (not ``done``, or changed since), in sorted order. Folders that could not
    be searched are added to ``problems``."""
    videos = discover(paths, problems)
    for folder in source_folders(paths):
        library.add_source(folder)
    todo = []
    for path in videos:
        video_id = video_id_for(path)
        if shard and shard_of(video_id, shard[1]) != shard[0]:
            continue
        try:
            size, fp = path.stat().st_size, fingerprint(path)
        except (OSError, RuntimeError) as exc:
            size, fp = 0, f"unreadable:{exc}"
        rowid = library.catalog.upsert_video(video_id, str(path), fp, size)
        row = library.catalog.video(video_id)
        if row["status"] != "done":
            todo.append(VideoJob(rowid, video_id, path))
    return videos, todo


def _ingest_locked(library, paths, settings, shard, progress, on_video_done, make_runner) -> IngestSummary:
    problems: list[str] = []
    videos, todo = plan(library, paths, shard, problems)
    interrupted = [job for job in todo if library.catalog.video(job.video_id)["error"] == INTERRUPTED]
    todo = [job for job in todo if job not in interrupted] + interrupted  # the others first
    summary = IngestSummary(len(videos), len(todo), not_searched=problems,
                            interrupted=[job.video_id for job in interrupted])
    for job in interrupted:
        log.warning("%s: the last ingest stopped while analysing it; it runs after the others", job.path)
    if not todo:
        return summary
    runner = make_runner()
    library.update_manifest(settings={**library.manifest.settings, **asdict(settings)},
                            extractors=runner.names)
    results = runner.run(todo)
    try:
        _commit_all(library, results, todo, settings, runner.names, summary, progress, on_video_done)
    finally:
        results.close()  # stops the runner's outstanding work (Ray: its actors) even when a commit fails
    return summary


def _commit_all(library, results, todo, settings, names, summary, progress, on_video_done) -> None:
    """Commit each result in job order. The job analysed next is marked ``INTERRUPTED`` before its
    result is asked for (the local runner starts it then), and the mark goes with its commit."""
    bar = tqdm(results, total=len(todo), desc="ingest", unit="video", disable=not progress,
               dynamic_ncols=True)
    if todo:
        library.catalog.update_video(todo[0].rowid, error=INTERRUPTED)
    for position, (job, result) in enumerate(bar, start=1):
        bar.set_postfix_str(job.path.name[:30])
        started = time.perf_counter()
        if isinstance(result, VideoResult):
            try:
                commit_video(library, job, result, settings, names)
                summary.done += 1
            except Exception as exc:  # noqa: BLE001 - e.g. a full disk: this video's failure
                result = failure_of(exc, started)
        if isinstance(result, VideoFailure):
            library.catalog.mark_failed(job.rowid, result.message, timings={"total": result.seconds})
            summary.failed += 1
            summary.errors[job.video_id] = result.message
            log.warning("%s failed: %s", job.path, result.message)
        if on_video_done:
            on_video_done(job.video_id)
        if position < len(todo):
            library.catalog.update_video(todo[position].rowid, error=INTERRUPTED)


def analyse_video(path: Path, video_id: str, settings: IngestSettings, ex: Extractors,
                  extract_verbs) -> VideoResult:
    """Everything about one video that does not touch the library: probe, transcript, clip spans,
    verbs, features, ground truth. Runs wherever the runner puts it (this process, a Ray worker)."""
    timings: dict[str, float] = {}
    warnings: list[str] = []
    t0 = time.perf_counter()
    if path.is_symlink() and resolved_path(path) == path.absolute():
        raise VideoError(f"{path}: broken symlink or symlink loop")
    info = probe(path)
    if info.duration_sec > settings.max_duration_sec:
        raise VideoError(f"{path}: {info.duration_sec:.0f} s long, over the per-video limit of "
                         f"{settings.max_duration_sec:.0f} s (--max-duration-sec)")
    if info.truncated_sec:
        warnings.append(f"truncated file: {info.duration_sec:.1f} s of the {info.declared_duration_sec:.1f} s "
                        "its header announces were kept")
    timings["probe"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    cues, sidecar = sidecar_transcript(path, warnings)
    spans = [replace(s, text=s.text[:MAX_NARRATION_CHARS]) for s in clip_spans(info, cues, settings)]
    verbs = [[] for _ in spans]
    if any(s.text for s in spans):
        try:
            verbs = extract_verbs([s.text for s in spans])
        except Exception as exc:  # noqa: BLE001 - narration without verbs is still usable
            warnings.append(f"verbs not extracted ({type(exc).__name__}: {exc})".splitlines()[0][:300])
    timings["text"] = time.perf_counter() - t0

    features, stage_times = extract_video(path, video_id, info, spans, ex, settings)
    timings.update(stage_times)
    classes = top_classes(features.action_scores, list(ex.actions.class_names))
    clips = [ClipRecord(i, s.start_sec, s.end_sec, s.text, tuple(v), tuple(map(tuple, c)), s.narrated)
             for i, (s, v, c) in enumerate(zip(spans, verbs, classes))]
    try:
        truth = ground_truth_for(path)
    except GroundTruthError as exc:
        truth = None
        warnings.append(str(exc))
    return VideoResult(info, features, clips, cues, sidecar, truth, warnings, timings)


def commit_video(library: Library, job: VideoJob, result: VideoResult, settings: IngestSettings,
                 extractors: dict) -> list[int]:
    """The writer's part: the feature file (checked first: finite, the widths the library's model
    takes), then the catalog in one transaction; a failed commit leaves no feature file behind.
    Returns the clip ids it replaced (from an earlier ingest)."""
    info, timings = result.info, dict(result.timings)
    library.catalog.update_video(
        job.rowid, status="pending", error=None, duration_sec=info.duration_sec, fps=info.fps,
        width=info.width, height=info.height, rotation_deg=info.rotation_deg, codec=info.codec)
    t0 = time.perf_counter()
    feature_path = library.feature_path(job.video_id)
    check_features(result.features, FeatureWidths.of_library(library), feature_path.name)
    result.features.save(feature_path, dtype="float16" if settings.fp16 else "float32")
    timings["write"] = time.perf_counter() - t0
    truth = result.truth
    timings["total"] = sum(timings.values())
    try:
        removed, _ = library.catalog.complete_video(
            job.rowid, result.clips, [(c.start_sec, c.end_sec, c.text) for c in result.cues],
            list(truth.steps) if truth else [],
            transcript_path=str(result.sidecar) if result.sidecar else None, warnings=result.warnings,
            extractors=extractors, timings={k: round(v, 3) for k, v in timings.items()},
            feature_path=str(feature_path.relative_to(library.root)), **(truth.video_fields() if truth else {}))
    except Exception:
        feature_path.unlink(missing_ok=True)  # the video is marked failed: no stray file of it
        raise
    return removed
