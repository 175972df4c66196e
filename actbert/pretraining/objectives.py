"""The pretraining objective: the paper's four masked/matching losses plus our alignment loss.

``PretrainingObjective`` wraps the model so that one ``forward`` runs everything a training step
needs (the joint forward for the four paper heads, text-only and video-only encodings for the
alignment loss); it is what DistributedDataParallel wraps. Under ``torch.distributed`` every loss
is normalised by its global count, and the alignment loss sees every rank's vectors, so N ranks
compute the same losses as one rank with the same global batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from . import losses
from .prefix_cache import PrefixCache, prefix_deterministic


@dataclass(frozen=True)
class PretrainingBatch:
    """Model inputs after masking, with the labels of every objective.

    inputs: keyword arguments of ``ActBertForPretraining.forward`` (masked text and features).
    text_labels (B, L_text): original ids at masked tokens, -1 elsewhere.
    action_targets: (B, L_action) class ids with -1, or (B, L_action, C) verb distributions.
    action_selected (B, L_action): True at masked actions (needed for distribution targets).
    region_targets (B, L_region - 1, C): detector class distributions (global token excluded).
    region_labels (B, L_region - 1): 1 at masked regions, -1 elsewhere.
    match_labels (B,): 0 when text and video belong together, 1 otherwise.
    clean: the unmasked inputs, for the text-only / video-only alignment encodings (optional).
    match_inputs: the unmasked pairs the matching head judges (optional; without them it judges
      ``inputs``, the paper's way).
    clean_action_targets (B, L_action, C): every clip's verb distribution for the ``clean`` video
      (its own), for the video-only action term (optional).
    """

    inputs: dict[str, torch.Tensor]
    text_labels: torch.Tensor
    action_targets: torch.Tensor
    region_targets: torch.Tensor
    region_labels: torch.Tensor
    match_labels: torch.Tensor
    action_selected: torch.Tensor | None = None
    clean: dict[str, torch.Tensor] | None = None
    match_inputs: dict[str, torch.Tensor] | None = None
    clean_action_targets: torch.Tensor | None = None


VIDEO_KEYS = ("action_features", "action_mask", "region_features", "region_locations",
              "region_mask", "action_positions", "action_segments", "region_positions",
              "region_segments", "region_tokens")


def read_positions(batch: PretrainingBatch) -> dict[str, torch.Tensor]:
    """(B, L_s) bool per stream: what the masked pass' losses and poolers read of the text and
    region streams: position 0 (the poolers), the masked words and the masked regions (the region
    labels leave out slot 0, the global token). The action stream is read everywhere."""
    text = batch.text_labels != losses.IGNORE
    region = torch.zeros_like(batch.inputs["region_mask"], dtype=torch.bool)
    region[:, 1:] = batch.region_labels == 1
    text[:, 0] = region[:, 0] = True
    return {"text": text, "region": region}


def _global_share(count: torch.Tensor, world_size: int) -> torch.Tensor | None:
    """The global count over ranks divided by the number of ranks (None when not distributed)."""
    if world_size == 1:
        return None
    total = count.detach().float().clone()
    dist.all_reduce(total)
    return (total / world_size).clamp(min=1e-6)


def _gather(x: torch.Tensor) -> torch.Tensor:
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x.contiguous()))


class PretrainingObjective(nn.Module):
    """``forward(batch) -> {"text", "action", "region", "match", ["align"], ["action_video"],
    "total"}``.

    ``action_video_weight`` > 0 adds the video-only action term: the action head on the alignment
    loss' own video forward (text ``[CLS] [SEP]``, every action feature visible) against each
    clip's narration verbs. Masked action alone lets the head copy the verb from the narration in
    the text stream (UNITER masks one modality at a time for this reason); this term makes the head
    read the video, which is what the explorer shows.
    """

    def __init__(self, model: nn.Module, use_alignment: bool = True, cls_id: int = 101,
                 sep_id: int = 102, world_size: int = 1, match_weight: float = 1.0,
                 action_video_weight: float = 0.0, mined_negatives: bool = False) -> None:
        super().__init__()
        if mined_negatives and not use_alignment:
            raise ValueError("mined negatives are drawn by the alignment's similarities: "
                             "they need the alignment loss")
        self.model = model
        self.use_alignment = use_alignment
        self.mined_negatives = mined_negatives
        self.cls_id, self.sep_id = cls_id, sep_id
        self.world_size = world_size
        self.match_weight = match_weight
        self.weights = {"match": match_weight, "action_video": action_video_weight}
        self.prefix_cache = PrefixCache()

    def forward(self, batch: PretrainingBatch) -> dict[str, torch.Tensor]:
        world = self.world_size
        out = self.model(**batch.inputs, heads=("action", "region", "match"), score=False,
                         wanted=read_positions(batch))
        # The text head only where a word was masked: the same loss as on every position's
        # logits (labels are -1 elsewhere) without the (B, L, vocab) product.
        labelled = batch.text_labels != losses.IGNORE
        action_count = ((batch.action_targets != losses.IGNORE).sum() if batch.action_targets.dim() == 2
                        else losses.action_positions(batch.action_targets, batch.action_selected).sum())
        terms = {
            "text": losses.masked_lm_loss(
                self.model.text_logits(out.hidden["text"][labelled]), batch.text_labels[labelled],
                _global_share((batch.text_labels != losses.IGNORE).sum(), world)),
            "action": losses.masked_action_loss(
                out.action_logits, batch.action_targets, batch.action_selected,
                _global_share(action_count, world)),
            "region": losses.masked_region_loss(
                out.region_logits, batch.region_targets, batch.region_labels,
                _global_share((batch.region_labels == 1).sum(), world)),
        }
        shared = self._clean_text_state(batch)
        wants_video_action = self.weights["action_video"] > 0 and batch.clean_action_targets is not None
        video_terms, embedded = {}, None
        if (self.use_alignment or wants_video_action) and batch.clean is not None:
            video_terms, embedded = self._video_only_terms(batch, wants_video_action, shared)
        if self.mined_negatives and batch.match_inputs is not None and embedded is not None:
            video = mined_videos(batch.clean, batch.match_labels, *embedded)
            judged = (self.model.match(shared, score=False, **video) if shared is not None else
                      self.model(**{k: v for k, v in batch.clean.items() if k not in VIDEO_KEYS},
                                 **video, heads=("match",), score=False))
        elif batch.match_inputs is None:
            judged = out
        elif shared is not None:
            judged = self.model.match(shared, score=False, **{k: batch.match_inputs[k] for k in VIDEO_KEYS
                                                              if k in batch.match_inputs})
        else:
            judged = self.model(**batch.match_inputs, heads=("match",), score=False)
        terms["match"] = losses.match_loss(judged.match_logits, batch.match_labels)
        terms.update(video_terms)
        terms["total"] = sum(v * self.weights.get(k, 1.0) for k, v in terms.items())
        return terms

    def _clean_text_state(self, batch: PretrainingBatch):
        """The unmasked text's state after the text-only layers, computed once for the matching
        pass and the alignment's text encoding (both read the same words) when those layers are
        frozen (``--freeze-text-layers``); None otherwise (each pass runs the whole model)."""
        if batch.match_inputs is None or batch.clean is None or not self.model.actbert.text_prefix_frozen():
            return None
        clean = batch.clean
        if prefix_deterministic(self.model.actbert):  # no dropout in it: kept per text (a run's texts)
            return self.prefix_cache.state(self.model.actbert, clean["text_ids"], clean["text_mask"],
                                           clean.get("token_type_ids"))
        return self.model.actbert.text_state(clean["text_ids"], clean["text_mask"],
                                             clean.get("token_type_ids"), fixed_prefix=True)

    def _video_only_terms(self, batch: PretrainingBatch, video_action: bool,
                          shared=None) -> tuple[dict[str, torch.Tensor], tuple | None]:
        """From one video-only forward of the clean inputs: the alignment loss (InfoNCE between
        text-only and video-only encodings; every sample's own text and video form a positive
        pair, whatever its matching label) and the video-only action term. ``shared``: the clean
        text's state (``_clean_text_state``), encoded without running its text-only layers again.
        Returns the terms and (text vectors, video vectors, logit scale), None without alignment."""
        clean, out = batch.clean, {}
        if not self.use_alignment:
            text = None
        elif shared is not None:
            text = self.model.encode_text_state(shared)
        else:
            text = self.model.encode_text(clean["text_ids"], clean["text_mask"], clean.get("token_type_ids"))
        pooled_regions = torch.zeros_like(clean["region_mask"], dtype=torch.bool)
        pooled_regions[:, 0] = True  # the regions are read by their pooler alone here
        video_out = self.model.video_only_forward(**{k: clean[k] for k in VIDEO_KEYS if k in clean},
                                                  cls_id=self.cls_id, sep_id=self.sep_id,
                                                  wanted={"region": pooled_regions})
        if video_action:
            targets = batch.clean_action_targets
            count = losses.action_positions(targets, clean["action_mask"]).sum()
            out["action_video"] = losses.masked_action_loss(
                self.model.heads["action"](video_out.hidden["action"]), targets,
                clean["action_mask"], _global_share(count, self.world_size))
        if text is None:
            return out, None
        video = self.model.align.embed_video(video_out.pooled["action"], video_out.pooled["region"])
        if self.world_size == 1:
            out["align"] = losses.alignment_loss(text, video, self.model.align.logit_scale)
        else:
            offset = dist.get_rank() * len(text)
            out["align"] = losses.alignment_loss(text, video, self.model.align.logit_scale,
                                                 _gather(text), _gather(video), offset)
        return out, (text, video, self.model.align.logit_scale)


def mined_negatives(text: torch.Tensor, video: torch.Tensor, scale: torch.Tensor,
                    text_ids: torch.Tensor, mismatched: torch.Tensor) -> torch.Tensor:
    """(B,) the video row each text is judged against: its own where ``mismatched`` is 0, else
    another row drawn with probability softmax(scale * cosine) over the batch (ALBEF's hard
    negatives, Li et al., 2021), never a row whose text is the same words (a false negative). A
    text with no other row keeps its own video, relabelled by the caller's ``mismatched``."""
    with torch.no_grad():
        logits = scale.exp().clamp(max=100) * (text.float() @ video.float().t())
        same = (text_ids[:, None, :] == text_ids[None, :, :]).all(-1)
        logits = logits.masked_fill(same, float("-inf"))
        usable = torch.isfinite(logits).any(-1)
        drawn = torch.multinomial(torch.softmax(logits[usable], -1), 1)[:, 0]
        rows = torch.arange(len(text), device=text.device)
        source = rows.clone()
        source[usable] = drawn
        return torch.where(mismatched.bool() & usable, source, rows)


def mined_videos(clean: dict[str, torch.Tensor], labels: torch.Tensor, text: torch.Tensor,
                 video: torch.Tensor, scale: torch.Tensor) -> dict[str, torch.Tensor]:
    """The matching pass' video inputs: the clean videos of the batch, each mismatched row's
    (``labels`` 1) replaced by a mined one (``mined_negatives``). A mismatched row with no other
    text to draw from keeps its own video and is relabelled matched, in place."""
    source = mined_negatives(text, video, scale, clean["text_ids"], labels)
    labels.copy_(torch.where(source == torch.arange(len(source), device=source.device),
                             torch.zeros_like(labels), labels))
    return {k: clean[k][source] for k in VIDEO_KEYS if k in clean}


def pretraining_losses(model: nn.Module, batch: PretrainingBatch, use_alignment: bool = True,
                       cls_id: int = 101, sep_id: int = 102) -> dict[str, torch.Tensor]:
    """Each loss term and ``total`` for one batch on one process."""
    return PretrainingObjective(model, use_alignment, cls_id, sep_id)(batch)
