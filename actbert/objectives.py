"""The pretraining objective: the paper's four masked/matching losses plus our alignment loss.

``pretraining_losses`` runs the model on a masked batch (one forward for the four paper heads, and
text-only / video-only encodings for the alignment loss) and returns each term and their sum.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import losses


@dataclass(frozen=True)
class PretrainingBatch:
    """Model inputs after masking, with the labels of every objective.

    inputs: keyword arguments of ``ActBertForPretraining.forward`` (masked text and features).
    text_labels (B, L_text): original ids at masked tokens, -1 elsewhere.
    action_targets: (B, L_action) class ids with -1, or (B, L_action, C) verb distributions.
    action_selected (B, L_action): 1 at masked actions (needed for distribution targets).
    region_targets (B, L_region - 1, C): detector class distributions (global token excluded).
    region_labels (B, L_region - 1): 1 at masked regions, -1 elsewhere.
    match_labels (B,): 0 when text and video belong together, 1 otherwise.
    clean: the unmasked inputs, for the text-only / video-only alignment encodings (optional).
    """

    inputs: dict[str, torch.Tensor]
    text_labels: torch.Tensor
    action_targets: torch.Tensor
    region_targets: torch.Tensor
    region_labels: torch.Tensor
    match_labels: torch.Tensor
    action_selected: torch.Tensor | None = None
    clean: dict[str, torch.Tensor] | None = None


VIDEO_KEYS = ("action_features", "action_mask", "region_features", "region_locations",
              "region_mask", "action_positions", "action_segments", "region_positions",
              "region_segments")


def pretraining_losses(model, batch: PretrainingBatch, use_alignment: bool = True,
                       cls_id: int = 101, sep_id: int = 102) -> dict[str, torch.Tensor]:
    """Each loss term (``text``, ``action``, ``region``, ``match``, ``align``) and ``total``."""
    out = model(**batch.inputs)
    terms = {
        "text": losses.masked_lm_loss(out.text_logits, batch.text_labels),
        "action": losses.masked_action_loss(out.action_logits, batch.action_targets,
                                            batch.action_selected),
        "region": losses.masked_region_loss(out.region_logits, batch.region_targets,
                                            batch.region_labels),
        "match": losses.match_loss(out.match_logits, batch.match_labels),
    }
    if use_alignment and batch.clean is not None:
        # Only matched pairs are positives of the contrastive loss.
        pairs = batch.match_labels == 0
        if pairs.sum() >= 2:
            clean = {k: v[pairs] for k, v in batch.clean.items() if v is not None}
            text = model.encode_text(clean["text_ids"], clean["text_mask"],
                                     clean.get("token_type_ids"))
            video = model.encode_video(**{k: clean[k] for k in VIDEO_KEYS if k in clean},
                                       cls_id=cls_id, sep_id=sep_id)
            terms["align"] = losses.alignment_loss(text, video, model.align.logit_scale)
    terms["total"] = sum(terms.values())
    return terms
