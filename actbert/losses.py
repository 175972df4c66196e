"""Pretraining losses (paper section 3.2.3) as pure functions, with PyTorch semantics.

Cross-entropies average over labelled positions only (label -1 = ignored). The region loss is
KL(target || softmax(logits)) summed over classes and masked positions, divided by the number of
masked positions, with the global region token (slot 0) excluded, as PaddleVideo.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE = -1


def masked_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """logits (B, L, V), labels (B, L) with -1 where not masked -> scalar."""
    return _cross_entropy(logits, labels)


def masked_action_loss(logits: torch.Tensor, targets: torch.Tensor,
                       selected: torch.Tensor | None = None) -> torch.Tensor:
    """Masked action classification.

    ``targets`` is either (B, L) class ids with -1 where not masked, or (B, L, C) verb
    distributions (the paper's l1-normalised multi-verb labels) with ``selected`` (B, L) marking
    the masked positions; the soft loss is -sum(target * log_softmax) averaged over them.
    """
    if targets.dim() == 2:
        return _cross_entropy(logits, targets)
    if selected is None:
        raise ValueError("soft action targets need the (B, L) mask of selected positions")
    keep = selected.bool() & (targets.sum(-1) > 0)  # clips without verbs carry no action target
    per_position = -(targets.float() * F.log_softmax(logits.float(), -1)).sum(-1)
    return (per_position * keep).sum() / keep.sum().clamp(min=1)


def masked_region_loss(logits: torch.Tensor, targets: torch.Tensor,
                       labels: torch.Tensor) -> torch.Tensor:
    """Masked object classification as KL to the detector's class distribution.

    logits (B, L_region, C) including the global token in slot 0; targets (B, L_region - 1, C);
    labels (B, L_region - 1) with 1 at masked regions.
    """
    log_probs = F.log_softmax(logits[:, 1:].float(), -1)
    kl = F.kl_div(log_probs, targets.float(), reduction="none")
    chosen = (labels == 1).float()
    return (kl * chosen[..., None]).sum() / chosen.sum().clamp(min=1e-6)


def match_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-modal matching: logits (B, 2), labels (B,) with 0 = matched, 1 = not matched."""
    return F.cross_entropy(logits.float(), labels)


def alignment_loss(text: torch.Tensor, video: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over in-batch negatives: text (B, E) and video (B, E) unit vectors, row i
    of each a matching pair."""
    logits = logit_scale.exp().clamp(max=100) * text.float() @ video.float().t()
    target = torch.arange(len(text), device=text.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2


def _cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    flat = labels.reshape(-1)
    if not (flat != IGNORE).any():
        return logits.sum() * 0.0  # nothing masked: a zero that keeps the graph
    return F.cross_entropy(logits.reshape(flat.numel(), -1).float(), flat, ignore_index=IGNORE)
