"""Masking for pretraining, as the paper and PaddleVideo: pure functions with an explicit generator.

Text: 15% of the real, non-special tokens are selected; of those 80% become [MASK], 10% a random
token, 10% stay. Actions and regions: 15% of the real elements are selected and 90% of those have
their feature zeroed (the rest keep it); the global region token is never selected.
"""

from __future__ import annotations

import torch

from .losses import IGNORE


def mask_tokens(
    ids: torch.Tensor,
    mask: torch.Tensor,
    generator: torch.Generator,
    *,
    mask_id: int,
    vocab_size: int,
    special_ids: tuple[int, ...],
    prob: float = 0.15,
) -> tuple[torch.Tensor, torch.Tensor]:
    """ids, mask (B, L) -> (masked ids, labels) with labels = original id where selected, else -1."""
    candidates = mask.bool() & ~torch.isin(ids, torch.tensor(special_ids, device=ids.device))
    draw = torch.rand(ids.shape, generator=generator, device=ids.device)
    selected = candidates & (draw < prob)
    # A second draw splits the selection 80 / 10 / 10.
    how = torch.rand(ids.shape, generator=generator, device=ids.device)
    random_ids = torch.randint(vocab_size, ids.shape, generator=generator, device=ids.device)
    out = ids.clone()
    out[selected & (how < 0.8)] = mask_id
    swap = selected & (how >= 0.8) & (how < 0.9)
    out[swap] = random_ids[swap]
    labels = torch.where(selected, ids, torch.full_like(ids, IGNORE))
    return out, labels


def mask_features(
    features: torch.Tensor,
    mask: torch.Tensor,
    generator: torch.Generator,
    *,
    prob: float = 0.15,
    zero_prob: float = 0.9,
    skip_first: bool = False,
    exclude: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """features (B, L, F), mask (B, L) -> (features with selected rows zeroed at ``zero_prob``,
    labels (B, L) with 1 where selected and -1 elsewhere). ``skip_first`` protects slot 0 (the
    global region token); ``exclude`` (B, L) bool protects other slots (the [SEP] between clips)."""
    candidates = mask.bool().clone()
    if skip_first:
        candidates[:, 0] = False
    if exclude is not None:
        candidates &= ~exclude.bool()
    draw = torch.rand(mask.shape, generator=generator, device=mask.device)
    selected = candidates & (draw < prob)
    zero = selected & (torch.rand(mask.shape, generator=generator, device=mask.device) < zero_prob)
    out = features.masked_fill(zero[..., None], 0.0)
    labels = torch.where(selected, 1, IGNORE).to(torch.long)
    return out, labels
