"""The three fine-tuned protocols of the paper (section 4.2): what each trains on, its loss, its
validation figure, and how the fine-tuned model scores the evaluated split.

Every protocol fine-tunes the whole model (the parameters ``requires_grad`` leaves on) together with
its head, on the TRAIN split of the corpus, and is judged on the VAL split (``validate``: a percent,
higher is better) for early stopping (``finetune``):

- ``segmentation`` (4.2.3, COIN): no text (the video-only forward, text = [CLS] [SEP]); a linear
  classifier on the output feature of each clip (the action hidden state of its [ACT] slot ++ the
  pooled region output, the probe's feature) over ``segmentation_labels``. Labels are the
  1-FPS frame labels of ``tasks.segmentation_frames``; a clip is one feature (the action
  feature rate), so its loss is the mean cross-entropy over its frames (the clip's label histogram).
  The classifier starts from the frozen-feature probe (``probe.LinearProbe``, its standardisation
  folded into the weights), so epoch 0 IS the probe and early stopping can only keep or improve it
  on val. Validation: frame accuracy of the val split.
- ``videoqa`` (4.2.6, MSR-VTT multiple choice): each train clip's question (``tasks.questions``:
  its step description among 5) through the joint forward; the candidate's score is
  the matching head's log-odds (a linear classifier on the output feature), trained with
  cross-entropy over the 5 candidates; the answer is the highest-scoring candidate. Starts from the
  pretrained matching head (epoch 0 = zero-shot). Validation: accuracy on val questions.
- ``retrieval`` (4.2.5, TVJE+FT): (step description, its target clip) train pairs; the text-only and
  video-only embeddings are fine-tuned with a symmetric InfoNCE over the batch (pairs sharing a
  description are all positives). Validation: mean of R@1, R@5, R@10 of val step queries against
  every val clip by cosine.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..evaluation.metrics import accuracy_from_counts, percent_correct
from ..evaluation.probe import L2_GRID, LinearProbe
from ..evaluation.scorer import ModelScorer
from ..evaluation.tasks import (SplitClips, choice_outcomes, figures_from_ranks, questions,
                                retrieval_outcomes, retrieval_queries, score_grid, segmentation_frames,
                                segmentation_outcomes)
from ..model import ActBertForPretraining
from ..tokenizer import ActBertTokenizer


def visual_output(model: ActBertForPretraining, tok: ActBertTokenizer,
                  video: dict[str, torch.Tensor]) -> torch.Tensor:
    """(B, D_action + D_tangled): [ACT] hidden state ++ pooled region output of the video-only
    forward (as ``ModelScorer.visual_features``), with gradients."""
    ids = torch.tensor([[tok.cls_id, tok.sep_id]], device=video["action_features"].device)
    out = model.actbert(text_ids=ids, text_mask=torch.ones_like(ids), **video)
    return torch.cat([out.hidden["action"][:, 0], out.pooled["region"]], -1)


class Protocol:
    """A fine-tuned protocol over a train and a val split. ``units``: the training items;
    ``loss(model, items)``: a scalar; ``validate(model)``: percent on val; ``head``: the extra
    trained module (None when the model's own head is used)."""

    name = ""
    head: nn.Module | None = None

    def __init__(self, train: SplitClips, val: SplitClips, tok: ActBertTokenizer,
                 use_regions: bool, batch_size: int, device: str, seed: int) -> None:
        self.train, self.val, self.tok = train, val, tok
        self.use_regions, self.batch_size, self.device, self.seed = use_regions, batch_size, device, seed
        self.units: list = []

    def scorer(self, model: ActBertForPretraining, split: SplitClips) -> ModelScorer:
        return ModelScorer(model, self.tok, split, self.use_regions, self.batch_size, self.device)

    def video(self, model: ActBertForPretraining, split: SplitClips, clips: Sequence[int]) -> dict:
        return self.scorer(model, split).video_batch(list(clips))


class Segmentation(Protocol):
    name = "segmentation"

    def __init__(self, *args, labels: Sequence[str], model: ActBertForPretraining,
                 grid: Sequence[float] = L2_GRID, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.labels = list(labels)
        histogram: dict[int, np.ndarray] = {}
        for clips, y in segmentation_frames(self.train, self.labels):
            for clip, label in zip(clips.tolist(), y.tolist()):
                histogram.setdefault(clip, np.zeros(len(self.labels)))[label] += 1
        if not histogram:
            raise ValueError(f"segmentation: the {self.train.name!r} split has no frames")
        self.units = sorted(histogram)
        self.histogram = histogram
        self.val_frames = [(c, y) for c, y in segmentation_frames(self.val, self.labels) if len(y)]
        self.head = self._probe_head(model, grid)

    def _probe_head(self, model: ActBertForPretraining, grid: Sequence[float]) -> nn.Linear:
        """The frozen-feature probe (l2 cross-validated over train videos) as a linear layer."""
        clips = self.units
        x = self.scorer(model, self.train).visual_features(clips)
        rows = [(i, label, n) for i, c in enumerate(clips)
                for label, n in enumerate(self.histogram[c]) if n]
        groups = [self.train.clips[clips[i]].video for i, _, _ in rows]
        probe = LinearProbe.cross_validated(x[[i for i, _, _ in rows]], np.array([y for _, y, _ in rows]),
                                            len(self.labels), groups, grid=grid,
                                            weights=np.array([n for _, _, n in rows]))
        head = nn.Linear(x.shape[1], len(self.labels))
        with torch.no_grad():
            weight = probe.weight / probe.std
            head.weight.copy_(weight.float())
            head.bias.copy_((probe.bias - weight @ probe.mean).float())
        return head.to(self.device)

    def loss(self, model, items) -> torch.Tensor:
        logits = self.head(visual_output(model, self.tok, self.video(model, self.train, items)))
        target = torch.tensor(np.stack([self.histogram[c] for c in items]), dtype=torch.float32,
                              device=logits.device)
        target = target / target.sum(1, keepdim=True)
        return F.cross_entropy(logits, target)

    @torch.no_grad()
    def predict(self, model, split: SplitClips, clips: Sequence[int]) -> np.ndarray:
        """Label index per clip."""
        out = []
        for start in range(0, len(clips), self.batch_size):
            chunk = list(clips[start:start + self.batch_size])
            out.append(self.head(visual_output(model, self.tok, self.video(model, split, chunk))).argmax(1))
        return torch.cat(out).cpu().numpy() if out else np.zeros(0, np.int64)

    def validate(self, model) -> float:
        clips = sorted({int(i) for c, _ in self.val_frames for i in c})
        label_of = dict(zip(clips, self.predict(model, self.val, clips)))
        counts = segmentation_outcomes(lambda c: np.array([label_of[int(i)] for i in c]), self.val_frames)
        return accuracy_from_counts(counts)


def match_log_odds(model: ActBertForPretraining, tok: ActBertTokenizer, texts: Sequence[str],
                   video: dict[str, torch.Tensor]) -> torch.Tensor:
    """(P,) matching-head log-odds (matched minus mismatched logit) of text i with video row i."""
    enc = tok(list(texts))
    device = video["action_features"].device
    out = model.actbert(text_ids=enc.ids.to(device), text_mask=enc.mask.to(device), **video)
    logits = model.heads["match"](model.actbert.pair(out.pooled)).float()
    return logits[:, 0] - logits[:, 1]


class VideoQA(Protocol):
    name = "videoqa"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.units = questions(self.train, self.seed)
        self.val_questions = questions(self.val, self.seed)

    def loss(self, model, items) -> torch.Tensor:
        texts = [c for q in items for c in q.candidates]
        video = self.video(model, self.train, [q.clip for q in items for _ in q.candidates])
        scores = match_log_odds(model, self.tok, texts, video).reshape(len(items), -1)
        return F.cross_entropy(scores, torch.tensor([q.answer for q in items], device=scores.device))

    def validate(self, model) -> float:
        return percent_correct(choice_outcomes(self.val_questions, self.scorer(model, self.val).match))


class Retrieval(Protocol):
    name = "retrieval"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.units = [(q.description, q.target) for q in retrieval_queries(self.train)]
        self.val_queries = retrieval_queries(self.val)
        if not self.units or not self.val_queries:
            raise ValueError("retrieval: the train and val splits need steps that overlap a clip")

    def loss(self, model, items) -> torch.Tensor:
        texts = [t for t, _ in items]
        enc = self.tok(texts)
        video = self.video(model, self.train, [c for _, c in items])
        text_vec = model.encode_text(enc.ids.to(self.device), enc.mask.to(self.device))
        ids = torch.tensor([[self.tok.cls_id, self.tok.sep_id]], device=self.device)
        out = model.actbert(text_ids=ids, text_mask=torch.ones_like(ids), **video)
        video_vec = model.align.embed_video(out.pooled["action"], out.pooled["region"])
        logits = model.align.logit_scale.exp().clamp(max=100) * text_vec @ video_vec.T
        same = torch.tensor([[a == b for b in texts] for a in texts], dtype=torch.float32,
                            device=logits.device)  # a shared description: every such pair matches
        target = same / same.sum(1, keepdim=True)
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))

    def validate(self, model) -> float:
        clips = list(range(len(self.val.clips)))
        grid = score_grid(self.scorer(model, self.val).cosine,
                          [q.description for q in self.val_queries], clips)
        figures = figures_from_ranks(retrieval_outcomes(grid, [q.target for q in self.val_queries]))
        return float(np.mean([figures["r1"], figures["r5"], figures["r10"]]))


PROTOCOLS = {"segmentation": Segmentation, "videoqa": VideoQA, "retrieval": Retrieval}
