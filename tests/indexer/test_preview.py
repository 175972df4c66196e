"""Browser-playable previews: real encodes and decodes with PyAV."""

from __future__ import annotations

import av
import numpy as np
import pytest

from indexer.features.video import probe, read_frames_at, write_video
from indexer.library.preview import browser_playable, playable_path
from indexer.library.store import Library, LibraryError


def _frames(n=24, h=48, w=64):
    """A moving gradient: smooth enough for lossy codecs to keep it close."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([np.stack([(x * 4 + i * 5) % 256, (y * 5) % 256, np.full_like(x, 128)], -1)
                     for i in range(n)]).astype(np.uint8)


@pytest.fixture
def library(tmp_path):
    lib = Library.create(tmp_path / "lib")
    yield lib
    lib.close()


def test_h264_mp4_is_served_as_is(library):
    source = write_video(library.root / "videos" / "a.mp4", _frames(), 12)
    assert browser_playable(source)
    assert playable_path(library, source, "a") == source.resolve()
    assert not any((library.root / "previews").iterdir())


def test_mpeg4_avi_gets_an_h264_preview(library):
    source = write_video(library.root / "videos" / "b.avi", _frames(), 12, codec="mpeg4")
    assert not browser_playable(source)
    preview = playable_path(library, source, "b")
    assert preview == (library.root / "previews" / "b.mp4").resolve()
    with av.open(str(preview)) as container:
        ctx = container.streams.video[0].codec_context
        assert (ctx.name, ctx.pix_fmt) == ("h264", "yuv420p")
    data = preview.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat"), "not faststart"
    info = probe(preview)
    assert info.frame_count == 24 and abs(info.fps - 12) < 0.01
    a, b = read_frames_at(source, [0.5, 1.5]), read_frames_at(preview, [0.5, 1.5])
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    assert 10 * np.log10(255 ** 2 / max(mse, 1e-9)) > 28
    mtime = preview.stat().st_mtime_ns
    assert playable_path(library, source, "b").stat().st_mtime_ns == mtime  # reused, not redone


def test_outside_files_are_refused(library, tmp_path):
    outside = write_video(tmp_path / "outside.mp4", _frames(4), 12)
    with pytest.raises(LibraryError, match="outside the library"):
        playable_path(library, outside, "x")
    with pytest.raises(LibraryError, match="outside the library"):
        playable_path(library, library.root / ".." / "outside.mp4", "x")
