"""Prediction heads (paper section 3.2.3) and the retrieval projections we add for indexing.

- text: masked language modelling, decoder tied to the word embeddings, own bias.
- action: masked action classification over the verb vocabulary.
- region: masked object classification over the detector's classes.
- match: cross-modal matching on the fused pooled outputs; index 0 means "matched" (PaddleVideo).
- align: projections of text-only and video-only encodings into one space (unit vectors).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import ActBertConfig, StreamConfig


class Transform(nn.Module):
    """dense + GELU + LayerNorm, as BERT's ``predictions.transform``."""

    def __init__(self, config: StreamConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)  # noqa: N815

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(F.gelu(self.dense(hidden)))


class TiedMaskedLMHead(nn.Module):
    """MLM head whose decoder weight is the word-embedding matrix passed at call time."""

    def __init__(self, config: StreamConfig) -> None:
        super().__init__()
        self.transform = Transform(config)
        self.bias = nn.Parameter(torch.zeros(config.num_classes))

    def forward(self, hidden: torch.Tensor, word_embeddings: torch.Tensor) -> torch.Tensor:
        """(B, L, D) -> (B, L, vocab)."""
        return F.linear(self.transform(hidden), word_embeddings, self.bias)


class ClassifierHead(nn.Module):
    """Transform + linear decoder over a stream's classes (verbs or region classes)."""

    def __init__(self, config: StreamConfig) -> None:
        super().__init__()
        self.transform = Transform(config)
        self.decoder = nn.Linear(config.hidden_size, config.num_classes)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.transform(hidden))


class Pooler(nn.Module):
    """ReLU(Linear(first token)) into the tangled width, as PaddleVideo's poolers."""

    def __init__(self, in_size: int, out_size: int) -> None:
        super().__init__()
        self.dense = nn.Linear(in_size, out_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.dense(hidden[:, 0]))


class AlignmentHead(nn.Module):
    """Projects pooled text and pooled video (action ++ region) into one ``embed_size`` space."""

    def __init__(self, config: ActBertConfig) -> None:
        super().__init__()
        width = config.tangled.hidden_size
        self.text = nn.Linear(width, config.embed_size)
        self.video = nn.Linear(2 * width, config.embed_size)
        # CLIP's learnable temperature, initialised to 1/0.07.
        self.logit_scale = nn.Parameter(torch.tensor(2.6592600369))

    def embed_text(self, pooled_text: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text(pooled_text), dim=-1)

    def embed_video(self, pooled_action: torch.Tensor, pooled_region: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.video(torch.cat([pooled_action, pooled_region], -1)), dim=-1)
