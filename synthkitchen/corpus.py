"""SynthKitchen: the procedural demo corpus of kitchen tasks with narration and ground truth.

``python -m indexer synthkitchen --out DIR --videos N --seed S`` writes::

    DIR/synthkitchen.json              manifest: seed, classes, verbs, noise, generator version
    DIR/videos/<id>.mp4                H.264 yuv420p, +faststart (plays in browsers)
    DIR/videos/<id>.vtt                WebVTT narration with ASR-like noise
    DIR/ground_truth/<id>.json         task, split, steps, narration lines with aligned flags
    DIR/ground_truth/<id>.npz          per-frame action labels and boxes (see :func:`render_task`)

Every video is one task instance; splits (train/val/test, 70/15/15) are assigned by instance.
Everything is a function of ``(seed, video index)`` and the settings: the same call gives the
same ground truth and the same decoded frames, and video ``i`` does not depend on ``n_videos``.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import multiprocessing
import time
from dataclasses import asdict
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import av
import cv2
import numpy as np

from actbert.atomic import atomic_path, write_bytes
from synthkitchen.narration import (
    NarrationNoise,
    narrate,
    to_webvtt,
)
from synthkitchen.plan import GENERATOR_VERSION, Look, Prop, StepPlan, VideoPlan
from synthkitchen.render import render_frames
from synthkitchen.tasks import (
    ACTION_LABELS,
    CONTAINERS,
    OBJECT_CLASSES,
    SUBSTANCES,
    TASKS,
    TOOLS,
    VARIANTS,
    VERBS,
    TaskTemplate,
)

__all__ = ["NarrationNoise", "VideoPlan", "StepPlan", "plan", "plan_video", "render_task", "generate",
           "OBJECT_CLASSES", "VERBS", "ACTION_LABELS", "GENERATOR_VERSION"]

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
_SPLIT_BLOCK = ("train",) * 14 + ("val",) * 3 + ("test",) * 3  # 70/15/15 within every 20 instances
BACK_SLOTS = ((48.0, 104.0), (124.0, 100.0), (200.0, 100.0), (272.0, 104.0))  # containers, design px
SIDE_SLOTS = ((34.0, 150.0), (288.0, 150.0), (36.0, 200.0), (286.0, 198.0))  # food
TOOL_SLOTS = ((232.0, 226.0), (96.0, 226.0))
BOARD_XY = (160.0, 166.0)


def _split(seed: int, index: int) -> str:
    block = np.random.default_rng([seed, index // len(_SPLIT_BLOCK), 11]).permutation(len(_SPLIT_BLOCK))
    return _SPLIT_BLOCK[int(block[index % len(_SPLIT_BLOCK)])]


def _task(seed: int, index: int) -> TaskTemplate:
    order = np.random.default_rng([seed, index // len(TASKS), 7]).permutation(len(TASKS))
    return TASKS[int(order[index % len(TASKS)])]


def _jitter(rng: np.random.Generator, c: tuple[int, int, int], amount: int) -> tuple[int, int, int]:
    return tuple(int(v) for v in np.clip(np.asarray(c) + rng.integers(-amount, amount + 1, 3), 0, 255))  # type: ignore


def _props(task: TaskTemplate, rng: np.random.Generator) -> tuple[Prop, ...]:
    roles = dict(task.props)
    roles.setdefault("board", ("cutting_board", ""))
    back, side, tools = (list(rng.permutation(len(s))) for s in (BACK_SLOTS, SIDE_SLOTS, TOOL_SLOTS))
    if "pan" in [c for c, _ in roles.values()] and back.index(3) < sum(c in CONTAINERS for c, _ in roles.values()):
        back.remove(3)  # keep the pan's long handle inside the frame
        back.append(3)
    props = []
    for uid, (role, (cls, forced)) in enumerate(sorted(roles.items(), key=lambda kv: (kv[1][0] in TOOLS, kv[0]))):
        options = VARIANTS[cls]
        name, c1, c2 = next(v for v in options if v[0] == forced) if forced else options[int(rng.integers(len(options)))]
        c1 = _jitter(rng, c1, 10)
        angle = 0.0
        if cls == "cutting_board":
            x, y = BOARD_XY
        elif cls in TOOLS:
            x, y = TOOL_SLOTS[int(tools.pop(0))]
            angle = -90.0
        elif cls in CONTAINERS:
            x, y = BACK_SLOTS[int(back.pop(0))] if back else SIDE_SLOTS[int(side.pop(0))]
        else:
            x, y = SIDE_SLOTS[int(side.pop(0))]
        props.append(Prop(uid, role, cls, name, c1, c2, x, y, angle))
    return tuple(props)


def _look(rng: np.random.Generator) -> Look:
    walls = ((236, 236, 230), (205, 225, 235), (238, 226, 205), (214, 232, 214))
    counters = (((200, 170, 130), (175, 140, 100)), ((225, 225, 222), (190, 190, 195)),
                ((120, 120, 125), (95, 95, 100)), ((215, 200, 175), (190, 170, 140)))
    skins = ((240, 200, 170), (225, 175, 140), (190, 140, 100), (140, 95, 65), (100, 70, 50))
    sleeves = ((60, 90, 160), (180, 50, 50), (70, 70, 70), (230, 230, 230), (60, 130, 90))
    wall = walls[int(rng.integers(len(walls)))]
    c1, c2 = counters[int(rng.integers(len(counters)))]
    return Look(wall=wall, grout=tuple(int(v * 0.85) for v in wall), counter=c1, counter2=c2,  # type: ignore[arg-type]
                skin=_jitter(rng, skins[int(rng.integers(len(skins)))], 8),
                sleeve=sleeves[int(rng.integers(len(sleeves)))], gain=float(rng.uniform(0.88, 1.08)),
                tint=tuple(float(v) for v in rng.uniform(0.95, 1.05, 3)),  # type: ignore[arg-type]
                jitter_px=float(rng.uniform(0.0, 1.2)), jitter_phase=float(rng.uniform(0, 6.28)),
                texture_seed=int(rng.integers(2**31)))


def plan_video(index: int, seed: int, *, size: tuple[int, int] = (320, 240), fps: int = 24,
               step_sec: tuple[float, float] = (3.0, 8.0), noise: NarrationNoise = NarrationNoise()) -> VideoPlan:
    """Plan video ``index`` of the corpus ``seed``: task, props, step times, narration, look."""
    width, height = size
    if width % 2 or height % 2 or width < 64 or height < 48:
        raise ValueError(f"size must be even (yuv420p) and at least 64x48, got {size}")
    if not 0 < step_sec[0] <= step_sec[1]:
        raise ValueError(f"step_sec must be (min, max) seconds with 0 < min <= max, got {step_sec}")
    rng = np.random.default_rng([seed, index])
    task = _task(seed, index)
    props = _props(task, rng)
    uid = {p.role: p.uid for p in props}
    cls = {p.role: p.cls for p in props}
    substances = {k: str(rng.choice(sorted(v))) for k, v in SUBSTANCES.items()}
    blocks = [b for b in task.blocks if b.p_include >= 1.0 or rng.random() < b.p_include]
    i = 0
    while i < len(blocks):  # shuffle runs of consecutive blocks sharing a nonzero group
        j = i
        while j + 1 < len(blocks) and blocks[i].group and blocks[j + 1].group == blocks[i].group:
            j += 1
        blocks[i:j + 1] = [blocks[i:j + 1][int(k)] for k in rng.permutation(j + 1 - i)]
        i = j + 1
    frame = int(round(rng.uniform(0.8, 1.5) * fps))
    steps = []
    for tmpl in (s for b in blocks for s in b.steps):
        n = max(int(round(rng.uniform(*step_sec) * fps)), 2)
        fill = dict(substances, liquid="")
        sub = substances.get(tmpl.substance, "")
        steps.append(StepPlan(
            verb=tmpl.verb, objects=tuple(cls[r] for r in tmpl.roles), object_ids=tuple(uid[r] for r in tmpl.roles),
            description=tmpl.description.format(**fill), noun=tmpl.noun.format(**fill), dest=tmpl.dest.format(**fill),
            start_frame=frame, end_frame=frame + n, start_sec=frame / fps, end_sec=(frame + n) / fps,
            substance=sub, substance_color=SUBSTANCES[tmpl.substance][sub] if sub else (255, 255, 255)))
        frame += n + int(round(rng.uniform(0.3, 1.0) * fps))
    n_frames = frame + int(round(rng.uniform(0.5, 1.0) * fps))
    look = _look(rng)
    lines = narrate([{"verb": s.verb, "objects": s.objects, "noun": s.noun, "dest": s.dest,
                      "start_sec": s.start_sec, "end_sec": s.end_sec} for s in steps], n_frames / fps, rng, noise)
    return VideoPlan(video_id=f"sk{index:05d}_{task.name}", index=index, seed=seed, task=task.name, title=task.title,
                     split=_split(seed, index), fps=fps, width=width, height=height, n_frames=n_frames,
                     props=props, steps=tuple(steps), narration=tuple(lines), look=look, substances=substances)


def plan(n_videos: int, seed: int, **kwargs) -> list[VideoPlan]:
    """Plans of videos ``0 .. n_videos-1`` (no rendering); keyword arguments as :func:`plan_video`."""
    return [plan_video(i, seed, **kwargs) for i in range(n_videos)]


def render_task(p: VideoPlan, video_path: Path, *, crf: int = 23) -> dict[str, np.ndarray]:
    """Render and encode ``p`` to ``video_path`` (atomically); return the per-frame arrays.

    Returns ``action_label`` (F,) int16 (ACTION_LABELS index, 0 = background), and the boxes of
    all frames concatenated: ``box_frame`` (K,) int32 frame index, ``box_xyxy`` (K, 4) float32
    pixels in the output frame, ``box_class`` (K,) int16 OBJECT_CLASSES index, ``box_track``
    (K,) int16 track id (Prop uid; 1000/1001 for the left/right hand).
    """
    frames, xyxy, klass, track = [], [], [], []

    def tracked() -> Iterable[np.ndarray]:
        for fi, (image, b, c, t) in enumerate(render_frames(p)):
            frames.append(np.full(len(b), fi, np.int32))
            xyxy.append(b)
            klass.append(c)
            track.append(t)
            yield image

    encode_mp4(tracked(), video_path, p.fps, p.width, p.height, crf=crf)
    return {"action_label": p.action_labels(), "box_frame": np.concatenate(frames),
            "box_xyxy": np.concatenate(xyxy).reshape(-1, 4), "box_class": np.concatenate(klass),
            "box_track": np.concatenate(track)}


def encode_mp4(images: Iterable[np.ndarray], path: Path, fps: int, width: int, height: int, *, crf: int = 23) -> int:
    """Encode RGB frames (H, W, 3) uint8 as H.264 yuv420p mp4 at ``fps``; returns the frame count.

    Written to a temporary name and renamed, so ``path`` is either absent or complete. The
    bitstream is identical from run to run: one encoder thread and x264's portable C code
    (``asm=0``; its SIMD paths gave occasional run-to-run differences with PyAV 18.1's x264).
    """
    path = Path(path)
    n = 0
    with atomic_path(path) as tmp, av.open(str(tmp), "w", format="mp4",
                                           options={"movflags": "+faststart"}) as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = Fraction(1, fps)
        stream.codec_context.thread_count = 1
        stream.options = {"crf": str(crf), "preset": "veryfast", "tune": "animation", "x264-params": "asm=0"}
        for n, image in enumerate(images, 1):
            # BT.601 limited range, the same as swscale's default conversion.
            frame = av.VideoFrame.from_ndarray(cv2.cvtColor(image, cv2.COLOR_RGB2YUV_I420), format="yuv420p")
            frame.pts = n - 1
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return n


def _manifest(seed: int, size: tuple[int, int], fps: int, step_sec: tuple[float, float], noise: NarrationNoise) -> dict:
    return {"generator": GENERATOR_VERSION, "seed": seed, "width": size[0], "height": size[1], "fps": fps,
            "step_sec": list(step_sec), "object_classes": list(OBJECT_CLASSES), "verbs": list(VERBS),
            "action_labels": list(ACTION_LABELS), "tasks": [t.name for t in TASKS], "splits": list(SPLITS),
            "noise": {**asdict(noise), "expected_unaligned_share": noise.expected_unaligned_share}}


def _make_one(args: tuple) -> Path:
    index, out_dir, seed, size, fps, step_sec, noise = args
    p = plan_video(index, seed, size=size, fps=fps, step_sec=step_sec, noise=noise)
    gt_json = out_dir / "ground_truth" / f"{p.video_id}.json"
    video = out_dir / "videos" / f"{p.video_id}.mp4"
    if gt_json.exists() and video.exists():
        return video
    t0 = time.perf_counter()
    arrays = render_task(p, video)
    write_bytes(video.with_suffix(".vtt"), to_webvtt(p.narration).encode())
    npz = gt_json.with_suffix(".npz")
    with atomic_path(npz, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)
    record = {**p.to_json(), "files": {"video": f"videos/{video.name}", "narration": f"videos/{video.stem}.vtt",
                                       "frames": f"ground_truth/{npz.name}"}}
    write_bytes(gt_json, json.dumps(record, indent=1).encode())  # written last: marks the video complete
    log.info("rendered %s (%.1f s of video) in %.2f s", p.video_id, p.duration_sec, time.perf_counter() - t0)
    return video


def generate(out_dir: Path | str, n_videos: int, seed: int, *, size: tuple[int, int] = (320, 240), fps: int = 24,
             step_sec: tuple[float, float] = (3.0, 8.0), noise: NarrationNoise = NarrationNoise(),
             jobs: int = 1) -> list[Path]:
    """Write the corpus into ``out_dir``; returns the mp4 paths in index order.

    Idempotent: videos whose ground-truth JSON already exists are skipped, so a killed run resumes.
    Refuses (ValueError) to add to a directory generated with different settings.
    """
    if jobs <= 1:
        work = _prepare(Path(out_dir), n_videos, seed, size, fps, step_sec, noise)
        return [_make_one(w) for w in work]
    return list(generate_iter(out_dir, n_videos, seed, size=size, fps=fps, step_sec=step_sec, noise=noise,
                              jobs=jobs))


class Rendering:
    """Videos handed to worker processes (``generate_iter``): iterating yields each mp4 path in
    index order as soon as that video is complete; ``close()`` (or leaving a ``with`` block) cancels
    the videos not yet started and waits for the workers."""

    def __init__(self, pool: concurrent.futures.ProcessPoolExecutor, futures: list) -> None:
        self._pool, self._futures = pool, futures

    def __iter__(self) -> Iterator[Path]:
        for future in self._futures:
            yield future.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "Rendering":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def generate_iter(out_dir: Path | str, n_videos: int, seed: int, *, size: tuple[int, int] = (320, 240),
                  fps: int = 24, step_sec: tuple[float, float] = (3.0, 8.0),
                  noise: NarrationNoise = NarrationNoise(), jobs: int = 1,
                  order: Sequence[int] | None = None) -> Rendering:
    """As :func:`generate`, rendering in ``jobs`` worker processes while the caller consumes: the
    settings are checked and every video handed to the workers before this returns (the demo
    analyses one video while the next renders). ``order``: the video indices in the order to
    render and yield them (default ``0 .. n_videos-1``; each index below ``n_videos``)."""
    work = _prepare(Path(out_dir), n_videos, seed, size, fps, step_sec, noise)
    if order is not None:
        if sorted(order) != list(range(n_videos)):
            raise ValueError(f"order must list the video indices 0..{n_videos - 1} once each")
        work = [work[i] for i in order]
    # spawned, not forked: the caller may have run torch's thread pools, which do not survive a fork
    pool = concurrent.futures.ProcessPoolExecutor(max(1, jobs), mp_context=multiprocessing.get_context("spawn"))
    return Rendering(pool, [pool.submit(_make_one, w) for w in work])


def _prepare(out_dir: Path, n_videos: int, seed: int, size: tuple[int, int], fps: int,
             step_sec: tuple[float, float], noise: NarrationNoise) -> list[tuple]:
    """Check and write the corpus manifest; returns the work items of videos ``0 .. n_videos-1``."""
    (out_dir / "videos").mkdir(parents=True, exist_ok=True)
    (out_dir / "ground_truth").mkdir(parents=True, exist_ok=True)
    manifest = json.loads(json.dumps(_manifest(seed, size, fps, step_sec, noise)))  # as stored: tuples -> lists
    path = out_dir / "synthkitchen.json"
    if path.exists():
        old = json.loads(path.read_text())
        if {k: v for k, v in old.items() if k != "n_videos"} != manifest:
            raise ValueError(f"{out_dir} holds a SynthKitchen corpus made with other settings; use another --out")
        n_videos_total = max(n_videos, int(old.get("n_videos", 0)))
    else:
        n_videos_total = n_videos
    write_bytes(path, json.dumps({**manifest, "n_videos": n_videos_total}, indent=1).encode())
    return [(i, out_dir, seed, size, fps, step_sec, noise) for i in range(n_videos)]
