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
from indexer.features.video import VideoError, probe, write_video
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
