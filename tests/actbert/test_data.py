"""The per-video feature file format and the clip-group inputs built from it."""

import numpy as np
import pytest
import torch

from actbert import ActBertConfig, ActBertForPretraining
from actbert.data import VideoFeatures, box_locations, clip_inputs, collate


def make_features(clips=3, regions_per_clip=4, seed=0):
    rng = np.random.default_rng(seed)
    n = clips * regions_per_clip
    return VideoFeatures(
        video_id="v1",
        clip_start_sec=np.arange(clips) * 4.0, clip_end_sec=np.arange(clips) * 4.0 + 4.0,
        action_features=rng.random((clips, 20), dtype=np.float32),
        action_scores=rng.random((clips, 400), dtype=np.float32),
        region_features=rng.random((n, 24), dtype=np.float32),
        region_boxes_xyxy=np.tile([[32.0, 24.0, 96.0, 72.0]], (n, 1)),
        region_classes=rng.dirichlet(np.ones(11), n).astype(np.float32),
        region_scores=rng.random(n, dtype=np.float32),
        region_clip=np.repeat(np.arange(clips), regions_per_clip),
        region_time_sec=np.repeat(np.arange(clips) * 4.0 + 1.0, regions_per_clip)
        + np.tile([0.0, 0.0, 1.0, 1.0], clips),
        frame_size=(128, 96), extractors={"action": "tiny-test"})


def test_box_locations_by_hand():
    loc = box_locations(np.array([[32.0, 24.0, 96.0, 72.0]]), 128, 96)
    np.testing.assert_allclose(loc, [[0.25, 0.25, 0.75, 0.75, 0.25]])


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_save_load_round_trip(tmp_path, dtype):
    features = make_features()
    features.save(tmp_path / "v1.safetensors", dtype=dtype)
    loaded = VideoFeatures.load(tmp_path / "v1.safetensors")
    assert loaded.video_id == "v1" and loaded.frame_size == (128, 96)
    assert loaded.extractors == {"action": "tiny-test"}
    atol = 1e-3 if dtype == "float16" else 0
    np.testing.assert_allclose(loaded.action_features, features.action_features, atol=atol)
    np.testing.assert_array_equal(loaded.region_clip, features.region_clip)
    assert loaded.action_features.dtype == np.float32
    assert not list(tmp_path.glob(".*tmp*"))


def test_inconsistent_arrays_are_rejected():
    features = make_features()
    with pytest.raises(ValueError, match="region_scores"):
        VideoFeatures(**{**features.__dict__, "region_scores": features.region_scores[:-1]})


def test_clip_inputs_layout():
    features = make_features()
    sample = clip_inputs(features, [1, 2], max_regions=4)
    assert sample.action_features.shape == (2, 20)
    assert sample.region_features.shape == (5, 24)  # global + 2 per clip
    # Global token: mean of the kept regions, whole-frame location, position 0, segment 0.
    torch.testing.assert_close(sample.region_features[0], sample.region_features[1:].mean(0))
    assert sample.region_locations[0].tolist() == [0, 0, 1, 1, 1]
    assert sample.region_segments.tolist()[0] == 0
    assert sorted(set(sample.region_segments.tolist()[1:])) == [0, 1]
    # All regions kept: the regions of one frame share a position (frame order within the group).
    full = clip_inputs(features, [1, 2], max_regions=8)
    assert full.region_positions.tolist() == [0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert full.region_segments.tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1]


def test_collate_pads_and_runs_the_model():
    features = make_features()
    batch = collate([clip_inputs(features, [0, 1, 2]), clip_inputs(features, [1])])
    assert batch["action_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["region_mask"].sum(1).tolist() == [13, 5]
    model = ActBertForPretraining(ActBertConfig.from_name("tiny")).eval()
    ids = torch.tensor([[101, 2000, 102], [101, 2001, 102]])
    video = {k: v for k, v in batch.items() if k != "region_classes"}
    with torch.no_grad():
        out = model(text_ids=ids, text_mask=torch.ones_like(ids), **video)
    assert out.region_logits.shape == (2, 13, 11)
