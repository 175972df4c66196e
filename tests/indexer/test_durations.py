"""Durations come from the packets, not the header (issue 29 item 5): a 30 s file whose header
declares 600 s or 10 h is 30 s long, becomes clips of its own 30 s, and a per-video duration limit
refuses longer videos with one line. Files are written by the project's writer (Matroska), then
their Segment Duration element is rewritten."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from indexer.features.video import VideoError, probe, write_video
from indexer.library.ingest import IngestSettings, analyse_video

FPS = 24


def _declare_duration(path: Path, seconds: float) -> None:
    """Rewrite a Matroska file's Segment Info Duration (element 0x4489, in milliseconds)."""
    data = bytearray(path.read_bytes())
    at = data.find(b"\x44\x89")
    size = data[at + 2] & 0x7F  # a one-byte EBML size: 4 (float32) or 8 (float64)
    struct.pack_into(">f" if size == 4 else ">d", data, at + 3, seconds * 1000.0)
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def thirty_seconds(tmp_path_factory) -> Path:
    frames = (np.full((48, 64, 3), (i * 7) % 255, np.uint8) for i in range(30 * FPS))
    return write_video(tmp_path_factory.mktemp("durations") / "thirty.mkv", frames, FPS)


@pytest.mark.parametrize("declared", [600.0, 36_000.0], ids=["600 s", "10 h"])
def test_a_header_declaring_more_than_the_packets_hold_is_not_believed(thirty_seconds, tmp_path, declared):
    path = tmp_path / "lying.mkv"
    path.write_bytes(thirty_seconds.read_bytes())
    _declare_duration(path, declared)
    info = probe(path)
    assert info.declared_duration_sec == pytest.approx(declared)
    assert info.duration_sec == pytest.approx(30.0, abs=0.1)
    assert info.frame_count == pytest.approx(30 * FPS, abs=2)
    assert info.truncated_sec == pytest.approx(declared - 30.0, abs=0.1)  # reported as a warning


def test_a_truthful_header_is_unchanged(thirty_seconds):
    info = probe(thirty_seconds)
    assert info.duration_sec == pytest.approx(30.0, abs=0.1) and info.truncated_sec == 0.0


def test_videos_over_the_duration_limit_are_refused_in_one_line(thirty_seconds):
    settings = IngestSettings(action_weights="none", regions=False, max_duration_sec=20.0)
    with pytest.raises(VideoError, match=r"30 s long, over the per-video limit of 20 s \(--max-duration-sec\)"):
        analyse_video(thirty_seconds, "thirty", settings, None, None)
