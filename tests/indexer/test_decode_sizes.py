"""Memory bounded by pixels (issue 29, item 4): frames are decoded at the size each stage takes
(the action CNN's short side, the detector's input size), scaled in the decoder, and a chunk of
clips holds a bounded number of decoded bytes. An 8K clip was decoded at full size for the detector
(100 MB a frame as uint8, 400 MB as the detector's float copy)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from indexer.features.sampling import fixed_windows
from indexer.features.video import VideoInfo, write_video
from indexer.library.ingest import CHUNK_BYTES, IngestSettings, build_extractors, decode_sizes

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = IngestSettings(action_weights="none", detector_weights="none")  # fast preset: 320 detector


def info(width: int, height: int) -> VideoInfo:
    return VideoInfo(Path("v.mp4"), 60.0, 25.0, width, height, 0, 1500, "h264", False, False)


@pytest.fixture(scope="module")
def extractors():
    return build_extractors(SETTINGS)


@pytest.mark.parametrize("width, height", [(7680, 4320), (16000, 16000), (16000, 200)])
def test_large_frames_are_decoded_at_the_stages_sizes_in_bounded_chunks(extractors, width, height):
    spans = fixed_windows(60.0, SETTINGS.max_clip_sec)
    action, region, per_chunk = decode_sizes(info(width, height), spans, extractors, SETTINGS)
    assert min(action) == extractors.actions.short_side
    transform = extractors.regions.model.transform  # the detector's own input size: 320 short, 640 long
    assert min(region) <= transform.min_size[-1] and max(region) <= transform.max_size
    frames = len(extractors.actions.sample_clip_times(0.0, 10.0))
    clip_bytes = 3 * (action[0] * action[1] * frames + region[0] * region[1] * 10)
    assert per_chunk == 1 or per_chunk * clip_bytes <= CHUNK_BYTES


def test_small_frames_keep_their_size_and_chunks(extractors):
    action, region, per_chunk = decode_sizes(info(96, 64), fixed_windows(60.0, 6.0), extractors, SETTINGS)
    assert region == (64, 96) and per_chunk == 8


CHILD = """
import json, resource, sys
from indexer.library.ingest import IngestSettings, ingest
from indexer.library.store import Library
settings = IngestSettings(action_weights="none", detector_weights="none", score_threshold=0.0)
library = Library.create(sys.argv[2])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
ingest(library, [sys.argv[1]], settings, progress=False, extractors=None)
row = library.catalog.videos()[0]
from actbert.data import VideoFeatures
features = VideoFeatures.load(library.root / row["feature_path"])
print(json.dumps({"status": row["status"], "error": row["error"], "boxes": features.region_boxes_xyxy.tolist(),
                  "growth_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024 - before}))
"""


def test_an_8k_clip_is_ingested_in_bounded_memory_with_boxes_in_its_pixels(tmp_path):
    height, width = 4320, 7680
    rows = ((np.arange(height) // 64)[:, None] + (np.arange(width) // 64)[None, :]) % 2
    pattern = (rows * 120 + 60).astype(np.uint8)

    def frames():
        for i in range(8):  # 2 s at 4 FPS, one frame (100 MB) at a time
            frame = np.empty((height, width, 3), np.uint8)
            frame[..., 0], frame[..., 1], frame[..., 2] = np.roll(pattern, 16 * i, 1), 90, 200
            yield frame

    (tmp_path / "videos").mkdir()
    write_video(tmp_path / "videos" / "eight_k.mp4", frames(), fps=4)
    done = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "videos"), str(tmp_path / "lib")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["status"] == "done", result["error"]
    boxes = np.array(result["boxes"]).reshape(-1, 4)
    assert len(boxes) and boxes.min() >= 0 and boxes[:, 2].max() <= width and boxes[:, 3].max() <= height
    assert boxes[:, 2].max() > 640, "boxes are in the detector's input pixels, not the video's"
    # ingest's own growth (models, two clips of frames). Measured by this child on 2026-12-06: 578d0c6,
    # which decoded the detector's frames at full size, grew 2,417 MB (this test fails there); today
    # 600-880 MB depending on threads and allocator, so the bound sits between the two
    assert result["growth_mb"] < 1500, f"peak grew by {result['growth_mb']} MB ingesting a 2 s 8K clip"
