"""Browser-playable previews of library videos.

Browsers play H.264, VP8, VP9 and AV1 video in MP4 or WebM containers with 4:2:0 chroma. Any other
source (MPEG-4 Part 2 in AVI, MJPEG, H.264 4:4:4, Matroska...) is transcoded once with PyAV into
``LIB/previews/<video_id>.mp4`` (libx264, yuv420p, ``+faststart``, a keyframe every 2 s: what
``indexer.features.video.write_video`` writes). Audio is not kept; a variable-frame-rate source is written at
its average rate. A preview older than its source is rebuilt. Every path returned lies inside the
library's folders (``Library.resolve_inside``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from actbert.atomic import atomic_path
from indexer.features.video import VideoError, probe, read_frames_at, write_video
from indexer.library.store import Library

log = logging.getLogger(__name__)

BROWSER_CODECS = frozenset({"h264", "vp8", "vp9", "av1"})
BROWSER_SUFFIXES = frozenset({".mp4", ".m4v", ".webm"})
BROWSER_PIXEL_FORMATS = frozenset({"yuv420p", "yuvj420p"})


def browser_playable(path: str | Path) -> bool:
    """True when browsers play the file as it is: container, codec and pixel format all fit."""
    path = Path(path)
    if path.suffix.lower() not in BROWSER_SUFFIXES:
        return False
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return False
            ctx = container.streams.video[0].codec_context
            return ctx.name in BROWSER_CODECS and (ctx.pix_fmt or "yuv420p") in BROWSER_PIXEL_FORMATS
    except av.error.FFmpegError:
        return False


def _frames(path: Path) -> Iterator[np.ndarray]:
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


def transcode_preview(source: str | Path, destination: str | Path) -> Path:
    """Write an H.264/yuv420p/faststart MP4 of ``source`` at ``destination`` (atomically)."""
    source, destination = Path(source), Path(destination)
    info = probe(source)
    try:
        with atomic_path(destination, suffix=".mp4") as tmp:
            write_video(tmp, _frames(source), info.fps or 25.0, "h264", quality_crf=23,
                        rotation_deg=info.rotation_deg)
    except av.error.FFmpegError as exc:
        raise VideoError(f"{source}: preview could not be transcoded: {exc}") from exc
    log.info("preview of %s written to %s", source, destination)
    return destination


def playable_path(library: Library, video_path: str | Path, video_id: str) -> Path:
    """A file the browser can play for this video: the source itself when playable, else its
    preview in ``LIB/previews`` (transcoded on first use). Raises ``LibraryError`` when the source
    lies outside the library's folders, ``VideoError`` when it cannot be decoded."""
    source = library.resolve_inside(video_path)
    if browser_playable(source):
        return source
    preview = library.preview_path(video_id)
    if not preview.is_file() or preview.stat().st_mtime < source.stat().st_mtime:
        preview.parent.mkdir(parents=True, exist_ok=True)
        transcode_preview(source, preview)
    return library.resolve_inside(preview)


SPAN_CHUNK_SEC = 2.0  # frames decoded at a time while cutting a span (bounds the memory held)


def cut_span(library: Library, video_path: str | Path, start_sec: float, end_sec: float,
             destination: str | Path) -> Path:
    """Write ``[start_sec, end_sec)`` of a library video as a browser-playable H.264 MP4 at
    ``destination`` (``write_video``; the source's frame rate and displayed orientation, no audio).
    Frames are read at ``start_sec + i / fps`` (``read_frames_at``, a chunk at a time), so the file
    lasts ``round((end_sec - start_sec) * fps)`` frames. Raises ``LibraryError`` for a source outside
    the library's folders and ``VideoError`` when it cannot be decoded."""
    source = library.resolve_inside(video_path)
    info = probe(source)
    fps = info.fps or 25.0
    start_sec = max(0.0, float(start_sec))
    end_sec = min(float(end_sec), info.duration_sec or float(end_sec))
    count = max(1, int(round((end_sec - start_sec) * fps)))
    times = start_sec + np.arange(count) / fps
    chunk = max(1, int(SPAN_CHUNK_SEC * fps))

    def frames() -> Iterator[np.ndarray]:
        for first in range(0, count, chunk):
            yield from read_frames_at(source, times[first:first + chunk])

    destination = Path(destination)
    with atomic_path(destination, suffix=".mp4") as tmp:
        write_video(tmp, frames(), fps, "h264", quality_crf=23)
    return destination
