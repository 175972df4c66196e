"""The per-video feature file format and the clip-group inputs built from it."""

import numpy as np
import pytest
import torch

from actbert import ActBertConfig, ActBertForPretraining
from actbert.data import (NO_ROW, REGION_TOKEN, SEP_TOKEN, VideoFeatures, box_locations, clip_batch,
                          clip_inputs, collate)


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
        + np.tile(np.arange(regions_per_clip) // 2, clips).astype(float),
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
    # global + 2 regions of clip 1 + [SEP] + 2 regions of clip 2
    assert sample.region_features.shape == (6, 24)
    assert sample.region_tokens.tolist() == [REGION_TOKEN, 0, 0, SEP_TOKEN, 0, 0]
    real = sample.region_tokens == REGION_TOKEN
    real[0] = False
    # Global token: mean of the kept regions (not the [SEP]), whole-frame location, position 0.
    torch.testing.assert_close(sample.region_features[0], sample.region_features[real].mean(0))
    assert sample.region_locations[0].tolist() == [0, 0, 1, 1, 1]
    assert sample.region_features[3].abs().sum() == 0 and sample.region_locations[3].abs().sum() == 0
    assert sample.region_segments.tolist() == [0, 0, 0, 0, 1, 1]
    assert sample.region_classes.shape == (5, 11) and sample.region_classes[2].abs().sum() == 0
    # All regions kept: the regions of one frame share a position (frame order within the group);
    # the [SEP] takes its clip's last frame and segment.
    full = clip_inputs(features, [1, 2], max_regions=8)
    assert full.region_positions.tolist() == [0, 1, 1, 2, 2, 2, 3, 3, 4, 4]
    assert full.region_segments.tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 1, 1]
    one = clip_inputs(features, [2], max_regions=8)
    assert SEP_TOKEN not in one.region_tokens.tolist()  # a single clip has no separator


def naive_rows(features, clips, max_regions):
    """The rows a clip group should show, written out directly: per clip its top-scoring
    max_regions // K regions, in file order, clips in order."""
    out = []
    for clip in clips:
        rows = [r for r in range(len(features.region_clip)) if features.region_clip[r] == clip]
        rows = sorted(rows, key=lambda r: -features.region_scores[r])[:max(1, max_regions // len(clips))]
        out += sorted(rows)
    return out[:max_regions]


@pytest.mark.parametrize("clips,limit", [([0], 2), ([0], 36), ([1, 2], 3), ([0, 1, 2], 6), ([2, 0], 8)])
def test_clip_contract_provenance_names_what_the_model_sees(clips, limit):
    features = make_features(regions_per_clip=5, seed=3)
    inputs = clip_inputs(features, clips, limit)
    rows = naive_rows(features, clips, limit)
    assert inputs.clips == tuple(clips)
    assert inputs.real_region_rows().tolist() == rows
    slots = [i for i, r in enumerate(inputs.region_rows.tolist()) if r != NO_ROW]
    assert inputs.region_tokens[slots].tolist() == [REGION_TOKEN] * len(rows)
    np.testing.assert_allclose(inputs.region_features[slots].numpy(), features.region_features[rows])
    np.testing.assert_allclose(inputs.region_locations[slots].numpy(), features.region_locations()[rows])
    np.testing.assert_allclose(inputs.region_classes[[s - 1 for s in slots]].numpy(),
                               features.region_classes[rows])
    batch, (again,) = clip_batch(features, [clips[0]], limit)
    assert again.real_region_rows().tolist() == naive_rows(features, clips[:1], limit)
    assert "region_classes" not in batch and batch["region_mask"].sum() == len(again.region_rows)


def test_collate_pads_and_runs_the_model():
    features = make_features()
    batch = collate([clip_inputs(features, [0, 1, 2]), clip_inputs(features, [1])])
    assert batch["action_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["region_mask"].sum(1).tolist() == [15, 5]  # 3 x 4 regions, global, 2 [SEP]
    model = ActBertForPretraining(ActBertConfig.from_name("tiny")).eval()
    ids = torch.tensor([[101, 2000, 102], [101, 2001, 102]])
    video = {k: v for k, v in batch.items() if k != "region_classes"}
    with torch.no_grad():
        out = model(text_ids=ids, text_mask=torch.ones_like(ids), **video)
    assert out.region_logits.shape == (2, 15, 11)
