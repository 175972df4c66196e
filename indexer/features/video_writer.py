"""Writing browser-playable videos with PyAV (re-exported as ``indexer.features.video.write_video``).

H.264 in MP4 with yuv420p, even dimensions, ``+faststart`` and a keyframe every 2 s is what every
browser plays and seeks quickly; OpenCV's wheels cannot encode H.264, hence PyAV. VP9/WebM, MPEG-4 Part 2
and MJPEG (in AVI) are there for tests and legacy corpora.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

log = logging.getLogger(__name__)

# codec name -> (FFmpeg encoder, pixel format, encoder options, allowed file suffixes)
_ENCODERS = {
    "h264": ("libx264", "yuv420p", {"preset": "medium"}, (".mp4", ".mov", ".mkv")),
    "vp9": (
        "libvpx-vp9",
        "yuv420p",
        {"b": "0", "row-mt": "1", "deadline": "good", "cpu-used": "4"},  # constant quality, set by crf
        (".webm", ".mkv"),
    ),
    "mpeg4": ("mpeg4", "yuv420p", {}, (".avi", ".mp4", ".mkv")),
    "mjpeg": ("mjpeg", "yuvj420p", {}, (".avi", ".mkv")),
}


def _even(frame: np.ndarray) -> np.ndarray:
    """Pad an (H, W, 3) frame by repeating its last row/column so both sides are even (yuv420p needs it)."""
    pad_h, pad_w = frame.shape[0] % 2, frame.shape[1] % 2
    if pad_h or pad_w:
        frame = np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return frame


def write_video(
    path: str | os.PathLike,
    frames_rgb: Iterable[np.ndarray] | np.ndarray,
    fps: float,
    codec: str = "h264",
    *,
    quality_crf: int | None = None,
    rotation_deg: int = 0,
    frame_times_sec: Sequence[float] | None = None,
) -> Path:
    """Encode RGB frames into a video file and return its path.

    ``frames_rgb``: an (N, H, W, 3) uint8 array or an iterable of (H, W, 3) uint8 arrays, all the same
    size, N >= 1. Odd heights/widths are padded to even by repeating the last row/column.

    ``codec``: ``"h264"`` (default; libx264, yuv420p, High profile, keyframe every 2 s, ``+faststart``
    for .mp4/.mov so browsers can start playing before the download ends) for .mp4/.mov/.mkv;
    ``"vp9"`` (libvpx-vp9, constant quality) for .webm/.mkv; ``"mpeg4"`` and ``"mjpeg"`` for .avi
    (legacy formats, for tests and old corpora). ``quality_crf`` is the constant-rate factor (lower is
    better; defaults 18 for h264, 32 for vp9; ignored by mpeg4/mjpeg).

    ``fps``: nominal frame rate (frames per second). Frame i is at i / fps unless ``frame_times_sec``
    (N increasing times in seconds, first >= 0) gives variable-frame-rate timestamps (ms precision).

    ``rotation_deg``: counter-clockwise display rotation stored in the container's display matrix
    (0/90/180/270); the pixels are stored as given and players rotate them when showing.
    """
    path = Path(path)
    encoder, pix_fmt, options = _encoder_settings(path, codec, fps, rotation_deg, quality_crf)
    rate = Fraction(fps).limit_denominator(1001)
    times = _checked_frame_times(frame_times_sec)

    frames = iter(frames_rgb)
    first = next(frames, None)
    if first is None:
        raise ValueError("write_video needs at least one frame")
    container_options = {"movflags": "+faststart"} if path.suffix.lower() in (".mp4", ".mov") else {}
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        n_frames = _encode_all(path, itertools.chain([first], frames), encoder, pix_fmt, options,
                               container_options, rate, rotation_deg, times)
    except BaseException:
        path.unlink(missing_ok=True)  # never leave a half-written video behind
        raise
    log.debug("wrote %s: %d frames, %s, %.3f fps", path, n_frames, codec, float(rate))
    return path


def _encoder_settings(path: Path, codec: str, fps: float, rotation_deg: int,
                      quality_crf: int | None) -> tuple[str, str, dict[str, str]]:
    """(FFmpeg encoder, pixel format, encoder options) for ``codec``, after checking the arguments
    that go with it (file suffix, fps, rotation)."""
    if codec not in _ENCODERS:
        raise ValueError(f"codec must be one of {sorted(_ENCODERS)}, got {codec!r}")
    encoder, pix_fmt, options, suffixes = _ENCODERS[codec]
    if path.suffix.lower() not in suffixes:
        raise ValueError(f"codec {codec!r} needs a file ending in one of {suffixes}, got {path.name!r}")
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    if rotation_deg % 90:
        raise ValueError(f"rotation_deg must be a multiple of 90, got {rotation_deg}")
    options = dict(options)
    if codec in ("h264", "vp9"):
        options["crf"] = str(quality_crf if quality_crf is not None else (18 if codec == "h264" else 32))
    if codec == "h264":
        options["profile"] = "high"
    return encoder, pix_fmt, options


def _checked_frame_times(frame_times_sec: Sequence[float] | None) -> np.ndarray | None:
    """``frame_times_sec`` as a float64 array (None stays None), refused unless 1-d, starting at >= 0
    and increasing by at least 1 ms."""
    times = None if frame_times_sec is None else np.asarray(frame_times_sec, dtype=np.float64)
    if times is not None and (
        times.ndim != 1 or not len(times) or times[0] < 0 or np.any(np.diff(np.round(times * 1000)) <= 0)
    ):
        raise ValueError("frame_times_sec must be a 1-d sequence of times >= 0, increasing by >= 1 ms")
    return times


def _encode_all(path, frames, encoder, pix_fmt, options, container_options, rate, rotation_deg, times) -> int:
    """Encode ``frames`` (first one present) into ``path``; returns the number of frames written."""
    time_base = Fraction(1, 1000) if times is not None else 1 / rate
    shape = None
    n_frames = 0
    with av.open(str(path), mode="w", options=container_options) as container:
        stream = container.add_stream(encoder, rate=rate, options=options)
        stream.pix_fmt = pix_fmt
        stream.codec_context.time_base = time_base
        stream.codec_context.gop_size = max(1, int(round(2 * float(rate))))  # a keyframe every 2 s
        for i, rgb in enumerate(frames):
            rgb = np.asarray(rgb)
            if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
                raise ValueError(f"frame {i}: expected (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
            if shape is None:
                shape = rgb.shape
                stream.height, stream.width = _even(rgb).shape[:2]
                if rotation_deg % 360:
                    stream.set_display_rotation(rotation_deg % 360)
            elif rgb.shape != shape:
                raise ValueError(f"frame {i}: shape {rgb.shape} differs from the first frame's {shape}")
            if times is not None and i >= len(times):
                raise ValueError(f"more frames than frame_times_sec ({len(times)})")
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(_even(rgb)), format="rgb24")
            frame.pts = i if times is None else int(round(times[i] * 1000))
            frame.time_base = time_base
            for packet in stream.encode(frame):
                container.mux(packet)
            n_frames += 1
        if times is not None and n_frames != len(times):
            raise ValueError(f"{n_frames} frames but {len(times)} frame_times_sec")
        for packet in stream.encode():
            container.mux(packet)
    return n_frames
