"""indexer.features.video against videos these tests encode with PyAV: which frame is shown when, rotation, errors.

Ground truth: every frame i of the test videos is a solid colour PALETTE[i], so the colour of a
decoded frame names the frame that was decoded, whatever the codec's losses.
"""

from fractions import Fraction

import av
import numpy as np
import pytest

from indexer.features.video import (
    EmptyVideoFileError,
    NotAVideoError,
    NoVideoStreamError,
    TruncatedVideoError,
    UndecodableVideoError,
    VideoError,
    VideoNotFoundError,
    probe,
    read_frames_at,
    write_video,
)

PALETTE = np.array(
    [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255],
     [255, 0, 255], [255, 255, 255], [0, 0, 0], [128, 128, 128], [255, 128, 0]],
    dtype=np.uint8,
)
HEIGHT, WIDTH, FPS = 48, 64, 10


def solid_frames(n=10, height=HEIGHT, width=WIDTH):
    return np.broadcast_to(PALETTE[:n, None, None, :], (n, height, width, 3)).copy()


def frame_ids(frames):
    """Index of the palette colour nearest to each frame's mean colour."""
    means = frames.reshape(len(frames), -1, 3).mean(axis=1)
    dist = ((means[:, None, :] - PALETTE[None].astype(float)) ** 2).sum(-1)
    return dist.argmin(axis=1).tolist()


FORMATS = [("clip.mp4", "h264", "h264"), ("clip.webm", "vp9", "vp9"), ("clip.mkv", "h264", "h264"),
           ("clip.avi", "mpeg4", "mpeg4"), ("clip_mjpeg.avi", "mjpeg", "mjpeg")]


@pytest.mark.parametrize("name,codec,decoder", FORMATS)
def test_round_trip_probe_and_frames_at_times(tmp_path, name, codec, decoder):
    path = write_video(tmp_path / name, solid_frames(), FPS, codec=codec)
    info = probe(path)
    assert (info.width, info.height, info.rotation_deg) == (WIDTH, HEIGHT, 0)
    assert info.fps == pytest.approx(FPS)
    assert info.duration_sec == pytest.approx(1.0, abs=0.01)
    assert info.frame_count == 10 and info.codec == decoder
    assert not info.variable_frame_rate and not info.has_audio

    # frame i is displayed during [i/10, (i+1)/10); output keeps the caller's (unsorted) order
    times = [0.95, 0.0, 0.05, 0.1, 0.29, 0.3, 5.0, 0.5, 0.0]
    frames = read_frames_at(path, times)
    assert frames.shape == (9, HEIGHT, WIDTH, 3) and frames.dtype == np.uint8
    assert frame_ids(frames) == [9, 0, 0, 1, 2, 3, 9, 5, 0]
    # lossy codecs stay close to the encoded colour
    assert np.abs(frames[1].astype(int) - PALETTE[0]).max() <= 12


def test_seek_into_a_longer_video(tmp_path):
    # 60 frames at 10 fps with keyframes every 2 s: times after 1 s make read_frames_at seek
    frames = np.concatenate([solid_frames()] * 6)
    path = write_video(tmp_path / "long.mp4", frames, FPS)
    times = np.array([5.55, 3.0, 4.04, 5.99, 2.5])
    expected = [int(t * FPS) % 10 for t in times]
    assert frame_ids(read_frames_at(path, times)) == expected


def test_resize_and_empty_request(tmp_path):
    path = write_video(tmp_path / "clip.mp4", solid_frames(), FPS)
    small = read_frames_at(path, [0.2, 0.7], size=(24, 32))
    assert small.shape == (2, 24, 32, 3)
    assert frame_ids(small) == [2, 7]
    assert read_frames_at(path, []).shape == (0, HEIGHT, WIDTH, 3)
    with pytest.raises(ValueError):
        read_frames_at(path, [float("nan")])


def test_one_frame_video(tmp_path):
    path = write_video(tmp_path / "one.mp4", solid_frames(1), FPS)
    info = probe(path)
    assert info.frame_count == 1 and info.duration_sec == pytest.approx(0.1, abs=0.01)
    assert frame_ids(read_frames_at(path, [0.0, 0.5, 3.0])) == [0, 0, 0]


def test_odd_dimensions_are_padded_to_even(tmp_path):
    frames = solid_frames(3, height=31, width=45)
    path = write_video(tmp_path / "odd.mp4", frames, FPS)
    info = probe(path)
    assert (info.width, info.height) == (46, 32)
    assert frame_ids(read_frames_at(path, [0.15])) == [1]


def test_variable_frame_rate(tmp_path):
    times = [0.0, 0.1, 0.2, 0.5, 0.6, 1.0, 1.05, 1.1, 1.5, 2.0]
    for name in ("vfr.mp4", "vfr.mkv"):
        path = write_video(tmp_path / name, solid_frames(), FPS, frame_times_sec=times)
        info = probe(path)
        assert info.variable_frame_rate, name
        assert info.frame_count == 10
        assert 2.0 <= info.duration_sec <= 2.2
        got = frame_ids(read_frames_at(path, [0.45, 0.55, 1.04, 1.06, 1.4, 1.6, 2.5]))
        assert got == [2, 3, 5, 6, 7, 8, 9], name


@pytest.mark.parametrize("rotation_deg", [90, 270])
def test_display_rotation_is_applied(tmp_path, rotation_deg):
    # landscape coded pixels (40 wide, 24 high) with a white block in the top-left corner
    coded = np.zeros((3, 24, 40, 3), dtype=np.uint8)
    coded[:, :6, :6] = 255
    path = write_video(tmp_path / "phone.mp4", coded, FPS, rotation_deg=rotation_deg)
    info = probe(path)
    assert (info.width, info.height, info.rotation_deg) == (24, 40, rotation_deg)
    frame = read_frames_at(path, [0.0])[0]
    assert frame.shape == (40, 24, 3)
    # counter-clockwise 90: the top-left corner goes to the bottom-left; 270 (phones): to the top-right
    corner = frame[-6:, :6] if rotation_deg == 90 else frame[:6, -6:]
    assert corner.mean() > 200 and frame.mean() < 60
    assert read_frames_at(path, [0.0], size=(20, 12)).shape == (1, 20, 12, 3)


def test_has_audio(tmp_path):
    path = tmp_path / "with_audio.mp4"
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        audio = container.add_stream("aac", rate=16000, layout="mono")
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(solid_frames(5)[i], format="rgb24")
            frame.pts = i
            container.mux(video.encode(frame))
        samples = (np.sin(np.arange(8000) / 10.0) * 0.1).astype(np.float32)[None]
        sound = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
        sound.sample_rate, sound.pts, sound.time_base = 16000, 0, Fraction(1, 16000)
        container.mux(audio.encode(sound))
        container.mux(audio.encode())
        container.mux(video.encode())
    info = probe(path)
    assert info.has_audio and info.frame_count == 5


def test_missing_empty_and_text_files(tmp_path):
    with pytest.raises(VideoNotFoundError, match="no such video file"):
        probe(tmp_path / "absent.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(EmptyVideoFileError, match="empty"):
        probe(tmp_path / "empty.mp4")
    (tmp_path / "notes.mp4").write_text("these are my cooking notes, not a video\n" * 20)
    with pytest.raises(NotAVideoError, match="not a video"):
        read_frames_at(tmp_path / "notes.mp4", [0.0])
    assert issubclass(NotAVideoError, VideoError)


def test_audio_only_file_has_no_video_stream(tmp_path):
    path = tmp_path / "speech.m4a"
    with av.open(str(path), "w", format="mp4") as container:
        audio = container.add_stream("aac", rate=16000, layout="mono")
        sound = av.AudioFrame.from_ndarray(np.zeros((1, 4000), np.float32), format="flt", layout="mono")
        sound.sample_rate, sound.pts, sound.time_base = 16000, 0, Fraction(1, 16000)
        container.mux(audio.encode(sound))
        container.mux(audio.encode())
    with pytest.raises(NoVideoStreamError, match="no video stream .*audio"):
        probe(path)


def test_truncated_files(tmp_path):
    path = write_video(tmp_path / "clip.mp4", solid_frames(), FPS)
    data = path.read_bytes()
    # +faststart puts the index (moov) first; cut inside it: the container cannot be opened at all
    moov_at = data.index(b"moov") - 4
    (tmp_path / "cut_header.mp4").write_bytes(data[: moov_at + 40])
    with pytest.raises(TruncatedVideoError, match="MP4/MOV .*truncated"):
        probe(tmp_path / "cut_header.mp4")
    # keep the whole index but no media data: it opens, but no frame decodes
    mdat_at = data.index(b"mdat") - 4
    (tmp_path / "cut_data.mp4").write_bytes(data[: mdat_at + 8])
    with pytest.raises(UndecodableVideoError, match="no video frame could be decoded"):
        probe(tmp_path / "cut_data.mp4")
    with pytest.raises(UndecodableVideoError):
        read_frames_at(tmp_path / "cut_data.mp4", [0.0])


def test_write_video_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="at least one frame"):
        write_video(tmp_path / "none.mp4", [], FPS)
    with pytest.raises(ValueError, match="needs a file ending"):
        write_video(tmp_path / "clip.webm", solid_frames(2), FPS, codec="h264")
    mixed = [solid_frames(1)[0], solid_frames(1, height=20, width=20)[0]]
    with pytest.raises(ValueError, match="differs"):
        write_video(tmp_path / "mixed.mp4", mixed, FPS)
    assert not (tmp_path / "mixed.mp4").exists()  # no half-written file is left behind
    with pytest.raises(ValueError, match="increasing by >= 1 ms"):
        write_video(tmp_path / "vfr.mp4", solid_frames(2), FPS, frame_times_sec=[0.0, 0.0004])


def test_truncated_tail_keeps_the_frames_before_the_cut(tmp_path):
    path = write_video(tmp_path / "clip.mkv", solid_frames(), FPS)
    data = path.read_bytes()
    cut = tmp_path / "cut_tail.mkv"
    cut.write_bytes(data[: int(len(data) * 0.9)])
    info = probe(cut)
    assert 1 <= info.frame_count < 10
    # a time past the cut shows the last frame that survived
    assert frame_ids(read_frames_at(cut, [0.0, 0.95])) == [0, info.frame_count - 1]


def test_h264_mp4_is_browser_playable(tmp_path):
    path = write_video(tmp_path / "web.mp4", solid_frames(), FPS)
    data = path.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # +faststart: playback starts before the download ends
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert stream.codec_context.profile == "High"
        assert container.format.name.startswith("mov,mp4")
