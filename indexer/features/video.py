"""Video probing, frame-accurate reading and browser-playable writing, all through PyAV.

Time convention: every time in this module is in seconds on the video stream's presentation timeline,
measured from the stream's first timestamp (so the first frame is at 0.0). A frame is *displayed* from
its own timestamp until the next frame's; ``read_frames_at`` returns exactly that frame.

Rotation convention: ``rotation_deg`` is FFmpeg's display-matrix rotation, counter-clockwise, normalised
to 0, 90, 180 or 270. A phone portrait clip that ffprobe reports as "rotation of -90.00 degrees" has
``rotation_deg == 270``. Decoded frames are returned as displayed, i.e. already rotated.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import av
import numpy as np

from indexer.errors import VideoError
from indexer.features.video_writer import write_video  # noqa: F401  (re-exported: the writing half of video IO)

log = logging.getLogger(__name__)

# Frames whose timestamp is within this many seconds after a requested time count as "at" that time;
# it absorbs the rounding of millisecond time bases (Matroska/WebM) and of float arithmetic.
_TIME_TOLERANCE_SEC = 1e-3
# probe() looks at the timestamps of at most this many video packets (demuxing only, no decoding).
_PROBE_MAX_PACKETS = 600
# read_frames_at() decodes from the start instead of seeking when the first time is this early.
_SEEK_MIN_SEC = 1.0

# Leading bytes of the containers we can name in an error message when the file does not open.
_SIGNATURES = (
    (4, b"ftyp", "MP4/MOV"),
    (0, b"\x1a\x45\xdf\xa3", "Matroska/WebM"),
    (8, b"AVI ", "AVI"),
)


# FFmpeg demuxers of still images (besides the ``*_pipe`` ones: png_pipe, jpeg_pipe, webp_pipe...).
IMAGE_DEMUXERS = frozenset({"image2", "png", "apng"})


class VideoNotFoundError(VideoError):
    """The path does not exist or is not a regular file."""


class EmptyVideoFileError(VideoError):
    """The file has zero bytes."""


class NotAVideoError(VideoError):
    """No container format recognises the file (e.g. a text file named ``.mp4``)."""


class NoVideoStreamError(VideoError):
    """The container opens but holds no video stream (e.g. audio only)."""


class TruncatedVideoError(VideoError):
    """The file starts like a known container but its header or index is missing (cut download)."""


class UndecodableVideoError(VideoError):
    """The container opens but not a single frame of its video stream decodes."""


@dataclass(frozen=True)
class VideoInfo:
    """What ``probe`` learns about a video file.

    ``width``/``height`` are in displayed pixels (after rotation); ``fps`` is the average frame rate;
    ``frame_count`` is exact when ``probe`` could scan every packet, otherwise estimated from the
    container; ``variable_frame_rate`` is True when frame intervals differ by more than one time-base
    tick and 2 % (judged on the first packets); ``codec`` is FFmpeg's decoder name (``h264``, ``vp9``...).
    """

    path: Path
    duration_sec: float
    fps: float
    width: int
    height: int
    rotation_deg: int
    frame_count: int
    codec: str
    variable_frame_rate: bool
    has_audio: bool
    declared_duration_sec: float | None = None

    @property
    def truncated_sec(self) -> float:
        """Seconds the header announces beyond the last packet (0 unless > 0.5 s and > 5 %)."""
        missing = (self.declared_duration_sec or 0.0) - self.duration_sec
        return missing if missing > max(0.5, 0.05 * self.duration_sec) else 0.0


def _sniff_container(path: Path) -> str | None:
    """Name of the container the file's first bytes announce, or None."""
    with open(path, "rb") as f:
        head = f.read(16)
    for offset, magic, name in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return name
    return None


@contextmanager
def _open_video(path: str | os.PathLike) -> Iterator[tuple[av.container.InputContainer, av.VideoStream]]:
    """Open ``path`` for reading and yield (container, first video stream), raising VideoError kinds."""
    path = Path(path)
    if not path.is_file():
        if path.exists() and not path.is_dir():  # a FIFO would block the open forever
            raise VideoNotFoundError(f"{path}: not a regular file (a FIFO, socket or device): not opened")
        raise VideoNotFoundError(f"{path}: no such video file")
    if path.stat().st_size == 0:
        raise EmptyVideoFileError(f"{path}: file is empty (0 bytes)")
    try:
        container = av.open(str(path), mode="r")
    except av.error.FFmpegError as exc:
        kind = _sniff_container(path)
        if kind is not None:
            raise TruncatedVideoError(
                f"{path}: starts like {kind} but cannot be opened (truncated or corrupt?): {exc.strerror}"
            ) from exc
        raise NotAVideoError(f"{path}: not a video file (no container format recognises it)") from exc
    try:
        if not container.streams:
            kind = _sniff_container(path)
            if kind is not None:
                raise TruncatedVideoError(
                    f"{path}: starts like {kind} but holds no stream (truncated or corrupt?)"
                )
            raise NotAVideoError(f"{path}: not a video file (it holds no stream)")
        if not container.streams.video:
            kinds = ", ".join(sorted({s.type for s in container.streams})) or "none"
            raise NoVideoStreamError(f"{path}: no video stream (streams: {kinds})")
        if container.format.name in IMAGE_DEMUXERS or container.format.name.endswith("_pipe"):
            raise NotAVideoError(f"{path}: an image ({container.streams.video[0].codec_context.name}), "
                                 "not a video")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        yield container, stream
    finally:
        container.close()


def _rotation_of(frame: av.VideoFrame) -> int:
    """Counter-clockwise display rotation of a decoded frame, snapped to a multiple of 90 degrees."""
    degrees = frame.rotation or 0
    snapped = int(round(degrees / 90.0)) * 90 % 360
    if abs(((degrees - snapped) + 180) % 360 - 180) > 1:
        log.warning("display rotation %s deg is not a multiple of 90; using %d", degrees, snapped)
    return snapped


def _frame_time_sec(frame: av.VideoFrame, start_pts: int, time_base: Fraction) -> float | None:
    if frame.pts is None:
        return None
    return float((frame.pts - start_pts) * time_base)


class _PacketScan(NamedTuple):
    """What ``probe`` learns by demuxing: the first decoded frame, the packets' timestamps, the latest
    packet end, and whether every packet of the stream was seen."""

    first_frame: av.VideoFrame
    pts: list[int]
    end_pts: int | None
    exhausted: bool


def _scan_packets(path: Path, container, stream) -> _PacketScan:
    """Demux up to ``_PROBE_MAX_PACKETS`` packets (more until a frame decodes), decoding only the first
    frame. Raises ``UndecodableVideoError`` when no frame decodes."""
    first_frame = None
    pts: list[int] = []
    end_pts = None
    exhausted = True
    try:
        for packet in container.demux(stream):
            if packet.pts is not None and packet.size > 0:
                pts.append(packet.pts)
                packet_end = packet.pts + (packet.duration or 0)
                end_pts = packet_end if end_pts is None else max(end_pts, packet_end)
            if first_frame is None:
                frames = stream.decode(packet)
                first_frame = frames[0] if frames else None
            if first_frame is not None and len(pts) >= _PROBE_MAX_PACKETS:
                exhausted = False
                break
    except av.error.FFmpegError as exc:
        log.warning("%s: stopped reading after %d packets: %s", path, len(pts), exc)
    if first_frame is None and pts:
        try:  # frame-threaded decoders hold frames back until flushed
            flushed = stream.decode(None)
            first_frame = flushed[0] if flushed else None
        except av.error.FFmpegError:
            pass
    if first_frame is None:
        raise UndecodableVideoError(f"{path}: no video frame could be decoded (truncated or corrupt?)")
    return _PacketScan(first_frame, pts, end_pts, exhausted)


def _is_variable_rate(deltas: np.ndarray) -> bool:
    """Whether packet intervals differ by more than one time-base tick and 2 % of their median."""
    if deltas.size < 2:
        return False
    spread = int(deltas.max() - deltas.min())
    return spread > max(1.0, 0.02 * float(np.median(deltas)))


def _declared_duration_sec(container, stream) -> float | None:
    """The duration the header declares: the stream's, else the container's (None when it says none)."""
    if stream.duration:
        return float((stream.duration - (stream.start_time or 0)) * stream.time_base)
    return (container.duration or 0) / av.time_base or None


def _tail_end_pts(container, stream, declared_sec: float) -> int | None:
    """The end of the stream's last packet, found by seeking to the keyframe before the declared end
    and demuxing what follows (at most ``_PROBE_MAX_PACKETS``: a tail longer than that means the file
    really is at least that long); None when nothing can be read there."""
    start = stream.start_time or 0
    try:
        container.seek(start + int(declared_sec / stream.time_base), stream=stream, backward=True,
                       any_frame=False)
        end_pts = None
        for count, packet in enumerate(container.demux(stream)):
            if count >= _PROBE_MAX_PACKETS:
                return None
            if packet.pts is not None and packet.size > 0:
                end = packet.pts + (packet.duration or 0)
                end_pts = end if end_pts is None else max(end_pts, end)
        return end_pts
    except av.error.FFmpegError:
        return None


def _duration_and_frame_count(container, stream, scan: _PacketScan, deltas: np.ndarray,
                              declared_sec: float | None) -> tuple[float, int]:
    """Measured from the packets: all of them when the probe saw every one; otherwise those after a
    seek to the declared end, so a header that declares more than the file holds (30 s declaring
    600 s) is not believed. The frame count of a long file is estimated from the frame rate."""
    if scan.exhausted and scan.pts:
        # Every packet seen: the end is the last packet's end (its duration, or a typical interval).
        end_pts = scan.end_pts
        if end_pts == max(scan.pts) and deltas.size:
            end_pts += int(np.median(deltas))
        return float((end_pts - (stream.start_time or 0)) * stream.time_base), len(scan.pts)
    duration_sec = declared_sec or 0.0
    end_pts = _tail_end_pts(container, stream, duration_sec) if duration_sec else None
    if end_pts is not None:
        measured = float((end_pts - (stream.start_time or 0)) * stream.time_base)
        if measured < duration_sec - max(0.5, 0.05 * measured):
            log.warning("%s declares %.1f s but its packets end at %.1f s: using %.1f s",
                        container.name, duration_sec, measured, measured)
            duration_sec = measured
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    estimate = int(round(duration_sec * float(rate or 0)))
    return duration_sec, min(stream.frames, estimate) if stream.frames else estimate


def probe(path: str | os.PathLike) -> VideoInfo:
    """Describe a video file; decodes only its first frame (to learn rotation and check decodability).

    Raises a ``VideoError`` subclass when the file is missing, empty, not a video, truncated, has no
    video stream, or when no frame can be decoded.
    """
    path = Path(path)
    with _open_video(path) as (container, stream):
        scan = _scan_packets(path, container, stream)
        deltas = np.diff(np.unique(np.asarray(scan.pts, dtype=np.int64)))
        variable = _is_variable_rate(deltas)
        declared = _declared_duration_sec(container, stream)
        duration_sec, frame_count = _duration_and_frame_count(container, stream, scan, deltas, declared)
        if stream.average_rate and not (scan.exhausted and variable):
            fps = float(stream.average_rate)
        else:
            fps = frame_count / duration_sec if duration_sec > 0 else 0.0
        rotation = _rotation_of(scan.first_frame)
        width, height = scan.first_frame.width, scan.first_frame.height
        if rotation in (90, 270):
            width, height = height, width
        return VideoInfo(
            path=path,
            duration_sec=max(duration_sec, 0.0),
            fps=fps,
            width=width,
            height=height,
            rotation_deg=rotation,
            frame_count=frame_count,
            codec=stream.codec_context.name,
            variable_frame_rate=variable,
            has_audio=bool(container.streams.audio),
            declared_duration_sec=declared,
        )


def _to_rgb(frame: av.VideoFrame, rotation: int, size: tuple[int, int] | None) -> np.ndarray:
    """Decoded frame -> (H, W, 3) uint8 RGB as displayed; ``size`` is the displayed (height, width)."""
    kwargs = {}
    if size is not None:
        out_h, out_w = size
        if rotation in (90, 270):
            out_h, out_w = out_w, out_h
        kwargs = {"width": out_w, "height": out_h}
    rgb = frame.to_ndarray(format="rgb24", **kwargs)
    if rotation:
        rgb = np.rot90(rgb, k=rotation // 90)
    return np.ascontiguousarray(rgb)


def _decode_from(container, stream, seek_sec: float | None) -> Iterator[av.VideoFrame]:
    """Decoded frames from the keyframe at or before ``seek_sec`` (or from the start when None).

    Decoding errors after the first frame end the iteration with a warning (a truncated tail); with no
    frame decoded they propagate.
    """
    if seek_sec is not None:
        offset = (stream.start_time or 0) + int(seek_sec / stream.time_base)
        container.seek(offset, stream=stream, backward=True, any_frame=False)
    decoded_any = False
    try:
        for frame in container.decode(stream):
            decoded_any = True
            yield frame
    except av.error.FFmpegError as exc:
        if not decoded_any:
            raise
        log.warning("decoding stopped early (truncated file?): %s", exc)


def _frames_at_sorted(
    path: Path,
    container,
    stream,
    sorted_times: np.ndarray,
    size: tuple[int, int] | None,
    seek_sec: float | None,
) -> list[np.ndarray] | None:
    """One RGB array per time of ``sorted_times`` (ascending), or None when the seek overshot them."""
    start_pts = stream.start_time or 0
    fallback_step_sec = 1.0 / float(stream.average_rate or 25)
    out: list[np.ndarray] = []
    prev = prev_rgb = rotation = None
    frame_time = -fallback_step_sec
    for frame in _decode_from(container, stream, seek_sec):
        pts_time = _frame_time_sec(frame, start_pts, stream.time_base)
        # A frame without timestamp (rare, old AVI) is assumed to follow the previous one at the average rate.
        frame_time = pts_time if pts_time is not None else frame_time + fallback_step_sec
        if rotation is None:
            rotation = _rotation_of(frame)
            if seek_sec is not None and frame_time > sorted_times[0] + _TIME_TOLERANCE_SEC:
                return None
        # Every requested time before this frame shows the previous frame (or this one, if it is the first).
        while len(out) < len(sorted_times) and sorted_times[len(out)] < frame_time - _TIME_TOLERANCE_SEC:
            if prev_rgb is None:
                prev_rgb = _to_rgb(prev if prev is not None else frame, rotation, size)
            out.append(prev_rgb)
        prev, prev_rgb = frame, None
        if len(out) == len(sorted_times):
            break
    if prev is None:
        raise UndecodableVideoError(f"{path}: no video frame could be decoded (truncated or corrupt?)")
    if len(out) < len(sorted_times):  # times past the last frame clamp to it
        last_rgb = _to_rgb(prev, rotation, size)
        out.extend([last_rgb] * (len(sorted_times) - len(out)))
    return out


def read_frames_at(
    path: str | os.PathLike, times_sec: Sequence[float] | np.ndarray, size: tuple[int, int] | None = None
) -> np.ndarray:
    """Frames displayed at the given times, as an (N, H, W, 3) uint8 RGB array in the caller's order.

    ``times_sec`` (N,) are seconds from the first frame; they are sorted internally, the file is seeked
    once (to the keyframe before the earliest time) and decoded forward. Times before the first frame
    give the first frame, times past the end give the last frame. ``size`` is the output
    (height, width) after rotation; None keeps the displayed size. The display rotation of the first
    decoded frame is applied to all frames. Raises ``VideoError`` kinds like ``probe``.
    """
    path = Path(path)
    times = np.asarray(times_sec, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(times)):
        raise ValueError(f"times_sec must be finite, got {times_sec!r}")
    if times.size == 0:
        return read_frames_at(path, [0.0], size)[:0]
    order = np.argsort(times, kind="stable")
    sorted_times = times[order]
    seek_sec = float(sorted_times[0]) if sorted_times[0] > _SEEK_MIN_SEC else None
    with _open_video(path) as (container, stream):
        try:
            frames = _frames_at_sorted(path, container, stream, sorted_times, size, seek_sec)
            if frames is None:
                log.debug("%s: seek to %.3f s landed after it; decoding from the start", path, seek_sec)
                container.seek(0, stream=stream, backward=True, any_frame=False)
                frames = _frames_at_sorted(path, container, stream, sorted_times, size, None)
        except av.error.FFmpegError as exc:
            raise UndecodableVideoError(f"{path}: video could not be decoded: {exc.strerror}") from exc
    result = np.empty((len(times), *frames[0].shape), dtype=np.uint8)
    result[order] = np.stack(frames)
    return result
