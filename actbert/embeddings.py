"""Input embeddings of the three streams (paper section 3.2.1).

- text: BERT's word + position + segment embeddings.
- action: projected action feature + the [ACT] token embedding + clip position + segment.
- region: projected RoI feature + projected 5-d location + the [REGION] token embedding + position
  (regions of one frame share a position) + segment (one per clip). Slot 0 is the global region
  token (see ``add_global_region``); a [SEP] slot (token id 1) separates the regions of two clips.

The released PaddleVideo model has only the feature (and location) projections for action and
region; ``StreamConfig.use_*`` switches the paper's extra embeddings off for it.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import StreamConfig
from .dropout import Dropout

GLOBAL_REGION_LOCATION = (0.0, 0.0, 1.0, 1.0, 1.0)


def add_global_region(
    features: torch.Tensor, locations: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Prepend the global region token: the mean of the real region features, location
    (0, 0, 1, 1, 1), always real.

    features (B, L, F), locations (B, L, 5), mask (B, L) -> (B, L + 1, ...) each.
    """
    weights = mask.to(features.dtype)[..., None]
    mean = (features * weights).sum(1) / weights.sum(1).clamp(min=1.0)
    location = features.new_tensor(GLOBAL_REGION_LOCATION).expand(features.shape[0], 1, 5)
    return (
        torch.cat([mean[:, None], features], 1),
        torch.cat([location.to(locations.dtype), locations], 1),
        torch.cat([mask.new_ones(mask.shape[0], 1), mask], 1),
    )


def _positions(batch: int, length: int, device: torch.device) -> torch.Tensor:
    return torch.arange(length, device=device).expand(batch, length)


class TextEmbeddings(nn.Module):
    """BERT embeddings. Token id 0 ([PAD]) always embeds to zero (Paddle's ``padding_idx=0``);
    row 0 of the weight is kept because the tied MLM decoder uses it."""

    def __init__(self, config: StreamConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.num_classes, config.hidden_size)
        self.position_embeddings = nn.Embedding(config.max_positions, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)  # noqa: N815
        self.dropout = Dropout(config.hidden_dropout)

    def forward(self, ids: torch.Tensor, token_type_ids: torch.Tensor | None = None):
        """ids (B, L_text) -> (B, L_text, D_text)."""
        batch, length = ids.shape
        if length > self.position_embeddings.num_embeddings:
            raise ValueError(f"text of {length} tokens exceeds max_positions "
                             f"{self.position_embeddings.num_embeddings}")
        words = self.word_embeddings(ids) * (ids != 0)[..., None].to(self.word_embeddings.weight.dtype)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(ids)
        hidden = (words + self.position_embeddings(_positions(batch, length, ids.device))
                  + self.token_type_embeddings(token_type_ids))
        return self.dropout(self.LayerNorm(hidden))


class VisualEmbeddings(nn.Module):
    """Action or region embeddings: a feature projection plus the optional paper embeddings."""

    def __init__(self, config: StreamConfig) -> None:
        super().__init__()
        self.feature = nn.Linear(config.feature_size, config.hidden_size)
        if config.location_size:
            self.location = nn.Linear(config.location_size, config.hidden_size)
        if config.use_token_embedding:  # row 0: [ACT] / [REGION]; row 1: [SEP] between clips
            self.token_embedding = nn.Embedding(2, config.hidden_size)
        if config.use_position_embedding:
            self.position_embeddings = nn.Embedding(config.max_positions, config.hidden_size)
        if config.use_segment_embedding:
            self.segment_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)  # noqa: N815
        self.dropout = Dropout(config.hidden_dropout)

    def forward(
        self,
        features: torch.Tensor,
        locations: torch.Tensor | None = None,
        positions: torch.Tensor | None = None,
        segments: torch.Tensor | None = None,
        tokens: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """features (B, L, F), locations (B, L, 5) -> (B, L, D).

        ``positions`` default to the slot index, ``segments`` and ``tokens`` to zero.
        """
        batch, length, _ = features.shape
        hidden = self.feature(features)
        if hasattr(self, "location"):
            if locations is None:
                raise ValueError("this stream needs 5-d locations")
            hidden = hidden + self.location(locations)
        if hasattr(self, "token_embedding"):
            if tokens is None:
                tokens = torch.zeros(batch, length, dtype=torch.long, device=features.device)
            hidden = hidden + self.token_embedding(tokens)
        if hasattr(self, "position_embeddings"):
            if positions is None:
                positions = _positions(batch, length, features.device)
            hidden = hidden + self.position_embeddings(positions)
        if hasattr(self, "segment_embeddings"):
            if segments is None:
                segments = torch.zeros(batch, length, dtype=torch.long, device=features.device)
            hidden = hidden + self.segment_embeddings(segments)
        return self.dropout(self.LayerNorm(hidden))
