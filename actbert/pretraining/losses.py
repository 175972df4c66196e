"""Pretraining losses (paper section 3.2.3) as pure functions, with PyTorch semantics.

Cross-entropies average over labelled positions only (label -1 = ignored). The region loss is
KL(target || softmax(logits)) summed over classes and masked positions, divided by the number of
masked positions, with the global region token (slot 0) excluded, as PaddleVideo.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE = -1


def masked_lm_loss(logits: torch.Tensor, labels: torch.Tensor,
                   denominator: torch.Tensor | None = None) -> torch.Tensor:
    """logits (B, L, V), labels (B, L) with -1 where not masked -> scalar.

    ``denominator`` (every loss here takes one) replaces the local count of labelled positions:
    distributed training passes the global count / world size so every rank's loss is a share of
    the global mean."""
    return _cross_entropy(logits, labels, denominator)


def masked_action_loss(logits: torch.Tensor, targets: torch.Tensor,
                       selected: torch.Tensor | None = None,
                       denominator: torch.Tensor | None = None) -> torch.Tensor:
    """Masked action classification.

    ``targets`` is either (B, L) class ids with -1 where not masked, or (B, L, C) verb
    distributions (the paper's l1-normalised multi-verb labels) with ``selected`` (B, L) marking
    the masked positions; the soft loss is -sum(target * log_softmax) averaged over them.
    """
    if targets.dim() == 2:
        return _cross_entropy(logits, targets, denominator)
    if selected is None:
        raise ValueError("soft action targets need the (B, L) mask of selected positions")
    keep = action_positions(targets, selected)
    per_position = -(targets.float() * F.log_softmax(logits.float(), -1)).sum(-1)
    count = keep.sum().clamp(min=1) if denominator is None else denominator
    return (per_position * keep).sum() / count


def action_positions(targets: torch.Tensor, selected: torch.Tensor) -> torch.Tensor:
    """Masked actions that carry a target (clips without verbs have none, as in the paper)."""
    return selected.bool() & (targets.sum(-1) > 0)


def masked_region_loss(logits: torch.Tensor, targets: torch.Tensor, labels: torch.Tensor,
                       denominator: torch.Tensor | None = None) -> torch.Tensor:
    """Masked object classification as KL to the detector's class distribution.

    logits (B, L_region, C) including the global token in slot 0; targets (B, L_region - 1, C);
    labels (B, L_region - 1) with 1 at masked regions.
    """
    log_probs = F.log_softmax(logits[:, 1:].float(), -1)
    kl = F.kl_div(log_probs, targets.float(), reduction="none")
    chosen = (labels == 1).float()
    count = chosen.sum().clamp(min=1e-6) if denominator is None else denominator
    return (kl * chosen[..., None]).sum() / count


def match_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-modal matching: logits (B, 2), labels (B,) with 0 = matched, 1 = not matched."""
    return F.cross_entropy(logits.float(), labels)


def alignment_loss(text: torch.Tensor, video: torch.Tensor, logit_scale: torch.Tensor,
                   all_text: torch.Tensor | None = None, all_video: torch.Tensor | None = None,
                   offset: int = 0) -> torch.Tensor:
    """Symmetric InfoNCE over in-batch negatives: text (B, E) and video (B, E) unit vectors, row i
    of each a matching pair. In distributed training ``all_text``/``all_video`` are the gathered
    vectors of every rank and ``offset`` is the index of this rank's first row among them."""
    all_text = text if all_text is None else all_text
    all_video = video if all_video is None else all_video
    scale = logit_scale.exp().clamp(max=100)
    target = torch.arange(len(text), device=text.device) + offset
    text_to_video = scale * text.float() @ all_video.float().t()
    video_to_text = scale * video.float() @ all_text.float().t()
    return (F.cross_entropy(text_to_video, target) + F.cross_entropy(video_to_text, target)) / 2


def _cross_entropy(logits: torch.Tensor, labels: torch.Tensor,
                   denominator: torch.Tensor | None = None) -> torch.Tensor:
    flat = labels.reshape(-1)
    flat_logits = logits.reshape(flat.numel(), logits.shape[-1])  # also when nothing is labelled
    total = F.cross_entropy(flat_logits.float(), flat, ignore_index=IGNORE, reduction="sum")
    count = (flat != IGNORE).sum().clamp(min=1) if denominator is None else denominator
    return total / count
