"""The dual-encoder baseline: what a contrastive text/video encoder gets WITHOUT the tangled
transformer, on the same features and data, so the tables show what the cross-modal transformer
adds (CLIP-style; Miech et al.'s HowTo100M / MIL-NCE baselines are of this kind).

- text side: the packaged all-MiniLM-L6-v2 (the same BERT that initialises ActBERT's text stream,
  ``checkpoint.minilm_dir``), mean-pooled over real tokens, then a linear projection;
- video side: the clip contract's inputs (``data.clip_inputs``: the clip's action feature and its
  regions with their 5-d locations, the global region token first), each projected to ``width``
  with a learned type embedding (action / region), a small pre-norm transformer over them, mean
  pooling over the real tokens, a linear projection;
- both L2-normalised; score = cosine. Trained with symmetric InfoNCE (``actbert.finetuning.dual_training``).

Saved as ``config.json`` (``DualEncoderConfig``) + ``model.safetensors`` (never pickle).
``DualEncoderScorer`` scores (text, clip) pairs of an evaluated split and gives each clip's video
vector (the features of its segmentation and verb probes).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..atomic import atomic_write
from ..data import collate
from ..layers import mask_to_bias
from ..tokenizer import ActBertTokenizer
from .baselines import gather_cosine

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


@dataclass(frozen=True)
class DualEncoderConfig:
    action_size: int
    region_size: int
    max_regions: int = 36     # the clip contract's region limit (ActBERT's default)
    width: int = 256          # video transformer width
    layers: int = 2
    heads: int = 4
    embed_size: int = 256     # the shared space
    dropout: float = 0.1
    max_text_tokens: int = 64

    def __post_init__(self) -> None:
        if self.width % self.heads:
            raise ValueError(f"width {self.width} is not divisible by heads {self.heads}")

    def to_json(self) -> str:
        return json.dumps({"kind": "dual_encoder", **asdict(self)}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "DualEncoderConfig":
        data = json.loads(text)
        if data.pop("kind", None) != "dual_encoder":
            raise ValueError("not a dual-encoder config (kind != 'dual_encoder')")
        return cls(**data)


class TextTower(nn.Module):
    """all-MiniLM-L6-v2's embeddings and 6 layers (our BERT modules), mean pooling."""

    def __init__(self) -> None:
        super().__init__()
        from ..checkpoint import minilm_dir
        from ..model import build_model

        with torch.random.fork_rng(devices=[]):  # the unused streams' random init draws
            model = build_model("mini", text_init=minilm_dir())
        self.embeddings = model.actbert.embeddings["text"]
        self.layers = model.actbert.encoder.layers["text"]
        self.size = model.config.text.hidden_size

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, L) token ids and mask -> (B, hidden) mean of the real tokens' outputs."""
        hidden = self.embeddings(ids)
        bias = mask_to_bias(mask, hidden.dtype)
        for layer in self.layers:
            hidden, _ = layer(hidden, bias)
        weights = mask[..., None].to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


class VideoTower(nn.Module):
    """The clip contract's action slot and regions -> one vector (mean of a small transformer's
    outputs over the real tokens)."""

    def __init__(self, config: DualEncoderConfig) -> None:
        super().__init__()
        self.action = nn.Sequential(nn.LayerNorm(config.action_size),
                                    nn.Linear(config.action_size, config.width))
        self.region = nn.Sequential(nn.LayerNorm(config.region_size + 5),
                                    nn.Linear(config.region_size + 5, config.width))
        self.kind = nn.Embedding(2, config.width)  # 0: action, 1: region
        layer = nn.TransformerEncoderLayer(config.width, config.heads, 4 * config.width,
                                           config.dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.width)

    def forward(self, action_features, action_mask, region_features, region_locations,
                region_mask, **_) -> torch.Tensor:
        """Collated clip inputs (``data.collate``) -> (B, width)."""
        tokens = torch.cat([
            self.action(action_features) + self.kind.weight[0],
            self.region(torch.cat([region_features, region_locations], -1)) + self.kind.weight[1]], 1)
        mask = torch.cat([action_mask, region_mask], 1).bool()
        hidden = self.norm(self.encoder(tokens, src_key_padding_mask=~mask))
        weights = mask[..., None].to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


class DualEncoder(nn.Module):
    """Text and video towers with projections into one normalised space and a learned
    temperature (CLIP's ``logit_scale``, initialised to 1/0.07)."""

    def __init__(self, config: DualEncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.text = TextTower()
        self.video = VideoTower(config)
        self.text_projection = nn.Linear(self.text.size, config.embed_size)
        self.video_projection = nn.Linear(config.width, config.embed_size)
        self.logit_scale = nn.Parameter(torch.tensor(float(np.log(1 / 0.07))))

    def encode_text(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.text_projection(self.text(ids, mask)), dim=-1)

    def encode_video(self, **video: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.video_projection(self.video(**video)), dim=-1)

    def save_pretrained(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        atomic_write(directory / WEIGHTS_NAME,
                     lambda p: save_file(state, str(p), metadata={"format": "pt"}))
        atomic_write(directory / CONFIG_NAME, lambda p: p.write_text(self.config.to_json()))

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str = "cpu") -> "DualEncoder":
        directory = Path(directory)
        try:
            config = DualEncoderConfig.from_json((directory / CONFIG_NAME).read_text())
        except (OSError, ValueError, TypeError) as exc:
            raise ValueError(f"{directory}: not a dual-encoder checkpoint ({exc})") from exc
        model = cls(config)
        state = load_file(str(directory / WEIGHTS_NAME))
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(f"{directory}: weights do not fit the config (missing "
                             f"{missing[:3]}, unexpected {unexpected[:3]})")
        return model.to(device).eval()


class DualEncoderScorer:
    """The dual encoder on one evaluated split (``tasks.SplitClips``): ``cosine(texts, clips)``
    and ``visual_features(clips)`` (the video vectors), cached."""

    def __init__(self, model: DualEncoder, split, batch_size: int = 64, device: str = "cpu") -> None:
        self.model, self.split, self.batch_size, self.device = model, split, batch_size, device
        self.tok = ActBertTokenizer(max_length=model.config.max_text_tokens)
        self._text: dict[str, np.ndarray] = {}
        self._video: dict[int, np.ndarray] = {}

    @torch.inference_mode()
    def text_embeddings(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._text))
        for start in range(0, len(missing), self.batch_size):
            chunk = missing[start:start + self.batch_size]
            enc = self.tok(chunk)
            vecs = self.model.encode_text(enc.ids.to(self.device), enc.mask.to(self.device))
            self._text.update(zip(chunk, vecs.float().cpu().numpy()))
        return np.stack([self._text[t] for t in texts])

    @torch.inference_mode()
    def visual_features(self, clips: Sequence[int]) -> np.ndarray:
        """(C, embed_size) video vectors of the clips."""
        missing = list(dict.fromkeys(int(c) for c in clips if int(c) not in self._video))
        for start in range(0, len(missing), self.batch_size):
            chunk = missing[start:start + self.batch_size]
            video = collate([self.split.inputs(c, self.model.config.max_regions) for c in chunk])
            video = {k: v.to(self.device) for k, v in video.items() if k != "region_classes"}
            self._video.update(zip(chunk, self.model.encode_video(**video).float().cpu().numpy()))
        return np.stack([self._video[int(c)] for c in clips])

    def cosine(self, texts: Sequence[str], clips: Sequence[int]) -> np.ndarray:
        """(P,) cosine of text i and clip i."""
        unique = list(dict.fromkeys(int(c) for c in clips))
        column = {c: i for i, c in enumerate(unique)}
        return gather_cosine(self.text_embeddings, self.visual_features(unique), texts,
                             [column[int(c)] for c in clips])

    __call__ = cosine
