"""Clip spans and frame times: pure functions of times in seconds (no IO).

A video becomes a sequence of clips (``ClipSpan``): narration-aligned when it has a transcript
(``narration_spans``), fixed windows otherwise (``fixed_windows``). The model reads groups of K adjacent
clips (``group_clips``; the paper uses K = 10), and each clip is turned into frames at the times that
``sample_times`` gives (32 frames at 8 FPS for the action CNN, 1 FPS for the region detector), or
``spread_times`` (the action CNN's frames laid evenly over the whole clip).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from indexer.features.transcripts import Cue

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClipSpan:
    """One clip: [start_sec, end_sec] of its video, the narration said in it, its position ``index``,
    and whether narration made it (False: a window filling a stretch nobody talks over)."""

    start_sec: float
    end_sec: float
    text: str
    index: int
    narrated: bool = True

    @property
    def duration_sec(self) -> float:
        return self.end_sec - self.start_sec


def _check_bounds(min_sec: float, max_sec: float) -> None:
    if not 0 < min_sec <= max_sec:
        raise ValueError(f"need 0 < min_sec <= max_sec, got {min_sec}, {max_sec}")


def _join(texts: Sequence[str]) -> str:
    return " ".join(" ".join(texts).split())


def _merge_short(cues: list[Cue], min_sec: float, max_sec: float) -> list[tuple[float, float, str]]:
    """Greedily merge time-sorted cues: a group takes the next cue while it is shorter than ``min_sec``
    and the merged group stays within ``max_sec``; a short last group joins the one before if it fits."""
    groups: list[list] = []  # [start_sec, end_sec, [texts]]
    for cue in cues:
        if groups:
            start, end, texts = groups[-1]
            merged_end = max(end, cue.end_sec)
            if end - start < min_sec and merged_end - start <= max_sec:
                groups[-1] = [start, merged_end, texts + [cue.text]]
                continue
        groups.append([cue.start_sec, cue.end_sec, [cue.text]])
    if len(groups) >= 2:
        (p_start, p_end, p_texts), (start, end, texts) = groups[-2], groups[-1]
        if end - start < min_sec and max(p_end, end) - p_start <= max_sec:
            groups[-2:] = [[p_start, max(p_end, end), p_texts + texts]]
    return [(start, end, _join(texts)) for start, end, texts in groups]


def _split_long(start: float, end: float, text: str, max_sec: float) -> list[tuple[float, float, str]]:
    """Split [start, end] into the fewest equal parts of at most ``max_sec``; words are shared out in
    order, in proportion to the parts' durations (equal parts, so equal word counts up to rounding)."""
    parts = max(1, math.ceil((end - start) / max_sec - 1e-9))
    if parts == 1:
        return [(start, end, text)]
    bounds = np.linspace(start, end, parts + 1)
    words = text.split()
    cuts = np.round(np.linspace(0, len(words), parts + 1)).astype(int)
    return [
        (float(bounds[i]), float(bounds[i + 1]), " ".join(words[cuts[i] : cuts[i + 1]])) for i in range(parts)
    ]


def _widen(start: float, end: float, min_sec: float, duration_sec: float) -> tuple[float, float]:
    """Grow [start, end] about its centre to ``min_sec``, shifted to stay inside [0, duration_sec]."""
    if end - start >= min_sec:
        return start, end
    if duration_sec <= min_sec:
        return 0.0, duration_sec
    centre = (start + end) / 2
    new_start = min(max(centre - min_sec / 2, 0.0), duration_sec - min_sec)
    return new_start, new_start + min_sec


def narration_spans(
    cues: Sequence[Cue], duration_sec: float, min_sec: float = 4.0, max_sec: float = 10.0
) -> list[ClipSpan]:
    """Narration-aligned clips of a video of ``duration_sec`` seconds, in time order, indexed from 0.

    Cues are clipped to [0, duration_sec] (cues starting at or after the end are dropped), sorted by
    start, and merged while shorter than ``min_sec`` (merges never exceed ``max_sec``). Spans longer than
    ``max_sec`` are split into equal parts, their words shared out in order. Spans still shorter than
    ``min_sec`` (an isolated short cue) are widened about their centre, which may overlap a neighbour.
    Every span then lasts between ``min_sec`` and ``max_sec``, except when the video is shorter than
    ``min_sec`` (the span is the whole video) or ``min_sec > max_sec / 2`` makes an equal split shorter.
    Texts have their whitespace collapsed to single spaces; a split part can have empty text.
    """
    _check_bounds(min_sec, max_sec)
    if duration_sec <= 0:
        return []
    inside = [
        Cue(max(cue.start_sec, 0.0), min(cue.end_sec, duration_sec), cue.text)
        for cue in cues
        if cue.start_sec < duration_sec and cue.end_sec >= 0
    ]
    if len(inside) < len(cues):
        log.debug("dropped %d cues outside [0, %.2f] s", len(cues) - len(inside), duration_sec)
    inside.sort(key=lambda cue: (cue.start_sec, cue.end_sec))
    spans = []
    for start, end, text in _merge_short(inside, min_sec, max_sec):
        for part_start, part_end, part_text in _split_long(start, end, text, max_sec):
            part_start, part_end = _widen(part_start, part_end, min_sec, duration_sec)
            spans.append(ClipSpan(part_start, part_end, part_text, len(spans)))
    return spans


def fixed_windows(
    duration_sec: float, window_sec: float = 8.0, stride_sec: float | None = None
) -> list[ClipSpan]:
    """Windows of ``window_sec`` every ``stride_sec`` (default: back to back) covering the whole video.

    The last window is moved back to end exactly at ``duration_sec`` so every window is full length
    (it then overlaps the one before); a video shorter than one window gives one window [0, duration].
    Texts are empty. For videos without a transcript.
    """
    stride_sec = window_sec if stride_sec is None else stride_sec
    if window_sec <= 0 or stride_sec <= 0:
        raise ValueError(f"window_sec and stride_sec must be > 0, got {window_sec}, {stride_sec}")
    if duration_sec <= 0:
        return []
    if duration_sec <= window_sec:
        return [ClipSpan(0.0, float(duration_sec), "", 0)]
    count = math.ceil((duration_sec - window_sec) / stride_sec - 1e-9) + 1
    starts = np.minimum(np.arange(count) * stride_sec, duration_sec - window_sec)
    starts = np.unique(np.round(starts, 9))
    return [ClipSpan(float(s), float(s + window_sec), "", i) for i, s in enumerate(starts)]


def cover_gaps(spans: Sequence[ClipSpan], duration_sec: float, window_sec: float = 6.0,
               min_gap_sec: float = 2.0) -> list[ClipSpan]:
    """``spans`` plus fixed windows (``narrated=False``, empty text) over every stretch of
    [0, duration_sec] that no span covers and that lasts at least ``min_gap_sec``, all in time order
    and re-indexed from 0. Why: clips made only around narration leave the silent parts of a video
    unsearchable (a 52.8 s video with one cue at 0-5 s was one 5 s clip). A gap shorter than a window
    gets one window of the gap's length; a longer one gets ``fixed_windows`` laid over it."""
    covered = sorted((s.start_sec, s.end_sec) for s in spans)
    gaps, reached = [], 0.0
    for start, end in covered + [(duration_sec, duration_sec)]:
        if start - reached >= min_gap_sec:
            gaps.append((reached, start))
        reached = max(reached, end)
    filled = [replace(w, start_sec=a + w.start_sec, end_sec=a + w.end_sec, narrated=False)
              for a, b in gaps for w in fixed_windows(b - a, window_sec)]
    ordered = sorted([*spans, *filled], key=lambda s: (s.start_sec, s.end_sec))
    return [replace(s, index=i) for i, s in enumerate(ordered)]


def group_clips(
    spans: Sequence[ClipSpan], k: int = 10, stride: int | None = None
) -> list[tuple[ClipSpan, ...]]:
    """Groups of ``k`` adjacent clips starting every ``stride`` clips (default ``k``: no overlap).

    Every clip is in at least one group: when the clips do not divide evenly, the last group is moved
    back to end at the last clip (overlapping the group before). Fewer than ``k`` clips give one group.
    """
    stride = k if stride is None else stride
    if k < 1 or stride < 1:
        raise ValueError(f"k and stride must be >= 1, got {k}, {stride}")
    if not spans:
        return []
    if len(spans) <= k:
        return [tuple(spans)]
    starts = list(range(0, len(spans) - k + 1, stride))
    if starts[-1] + k < len(spans):
        starts.append(len(spans) - k)
    return [tuple(spans[s : s + k]) for s in starts]


def sample_times(start_sec: float, end_sec: float, fps: float, num_frames: int | None = None) -> np.ndarray:
    """Frame times (seconds, ascending, float64) for one clip [start_sec, end_sec].

    ``num_frames=None``: as many frames as fit at ``fps`` (at least one), each in the middle of its
    1/fps slot and the set centred in the clip; e.g. (10, 13, fps=1) -> [10.5, 11.5, 12.5].

    ``num_frames=N``: N frames 1/fps apart, centred on the clip's centre (the action CNN's 32 at 8 FPS
    span 4 s). When the clip is shorter than N/fps the times are clamped to [start_sec, end_sec], so the
    frames at the clip's edges repeat; the middle keeps its true 1/fps spacing.
    """
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if end_sec < start_sec:
        raise ValueError(f"end_sec {end_sec} < start_sec {start_sec}")
    duration_sec = end_sec - start_sec
    if num_frames is None:
        count = max(1, math.floor(duration_sec * fps + 1e-9))
        offset_sec = max(duration_sec - count / fps, -1.0 / fps) / 2
        times = start_sec + offset_sec + (np.arange(count) + 0.5) / fps
    else:
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        centre = (start_sec + end_sec) / 2
        times = centre + (np.arange(num_frames) - (num_frames - 1) / 2) / fps
    return np.clip(times, start_sec, end_sec)


# Where the action CNN's frames of a clip are taken (``action_times``): "centre", frames/fps seconds
# around the clip's centre (the paper's; 2 s of a 4-10 s clip with the "fast" preset), or "spread",
# the same number of frames laid evenly over the whole clip, so a step in a clip's first or last
# seconds reaches the action CNN (lab/model_tries.md, session 44).
SAMPLINGS = ("centre", "spread")


def action_times(start_sec: float, end_sec: float, num_frames: int, fps: float,
                 sampling: str = "centre") -> np.ndarray:
    """The action CNN's ``num_frames`` times for the clip [start_sec, end_sec]: ``fps`` apart around
    its centre (``"centre"``, ``sample_times``) or over all of it (``"spread"``, ``spread_times``;
    ``fps`` is then unused)."""
    if sampling not in SAMPLINGS:
        raise ValueError(f"unknown action sampling {sampling!r}; choose one of {', '.join(SAMPLINGS)}")
    if sampling == "spread":
        return spread_times(start_sec, end_sec, num_frames)
    return sample_times(start_sec, end_sec, fps=fps, num_frames=num_frames)


def spread_times(start_sec: float, end_sec: float, num_frames: int) -> np.ndarray:
    """``num_frames`` frame times (seconds, ascending, float64) laid evenly over the whole clip
    [start_sec, end_sec], each in the middle of its 1/num_frames share (TSN-style segment sampling);
    e.g. (10, 14, 4) -> [10.5, 11.5, 12.5, 13.5]. Unlike ``sample_times`` with ``num_frames`` (a
    fixed stretch at the clip's centre), every part of a long clip gets frames: a step done in the
    first or last seconds of a clip is in the action CNN's input. A zero-length clip repeats its one
    time."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if end_sec < start_sec:
        raise ValueError(f"end_sec {end_sec} < start_sec {start_sec}")
    return start_sec + (np.arange(num_frames) + 0.5) * ((end_sec - start_sec) / num_frames)
