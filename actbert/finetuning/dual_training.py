"""``python -m actbert train-dual``: train the dual-encoder baseline (``evaluation.dual_encoder``) on a
corpus's train split, as ``actbert train`` pretrains ActBERT on it: the same feature files, the
same clip contract, the same (narration, clip) pairs, so ``evaluate --dual-encoder DIR`` shows
what the tangled transformer adds over a plain contrastive text/video encoder.

Objective: symmetric InfoNCE (CLIP; Radford et al. 2021) over a batch of (narration, clip) pairs:
cross-entropy of each narration against the batch's clips and of each clip against the batch's
narrations, logits = cosine x a learned scale (at most 100). Pairs of the batch that share the same
narration text are not used as each other's negatives (masked out). Optimiser AdamW, linear
warm-up then cosine decay; the text tower (MiniLM) has its own, smaller learning rate, or is
frozen (``--freeze-text``: its pooled outputs are then computed once per distinct narration).

``--step-list-share P`` gives it the distant supervision ``actbert train`` can have
(``pretraining.step_list``): a pair whose narration matches a step of its task's list reads that
step's description with probability P at each draw.

Writes OUT/config.json + OUT/model.safetensors, OUT/train.jsonl (the loss every ``log_every``
steps) and OUT/train_config.json (these options, with the split trained on).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..corpus import read_corpus
from ..pretraining.step_list import corpus_step_texts
from ..data import VideoFeatures, clip_inputs, collate
from ..tokenizer import ActBertTokenizer
from ..evaluation.dual_encoder import DualEncoder, DualEncoderConfig

log = logging.getLogger(__name__)
MAX_LOGIT_SCALE = 100.0


@dataclass(frozen=True)
class DualTrainConfig:
    corpus: str
    out: str
    split: str = "train"
    steps: int = 300
    batch_size: int = 64
    lr: float = 1e-3          # video tower, projections, temperature
    text_lr: float = 2e-5     # the MiniLM text tower
    freeze_text: bool = False
    warmup_steps: int = 30
    weight_decay: float = 0.01
    width: int = 256
    layers: int = 2
    embed_size: int = 256
    max_regions: int = 36
    log_every: int = 10
    seed: int = 0
    threads: int | None = None
    step_list_share: float = 0.0      # as ``actbert train``'s (pretraining/step_list.py): a pair
    step_list_threshold: float = 0.4  # whose narration matches its task's step reads the step

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 2:
            raise ValueError(f"need steps >= 1 and batch size >= 2, got {self.steps}, {self.batch_size}")
        if not 0.0 <= self.step_list_share <= 1.0:
            raise ValueError(f"step_list_share is a share in [0, 1], got {self.step_list_share}")


def training_pairs(corpus_path: str, split: str, max_regions: int,
                   step_threshold: float | None = None) -> tuple[list[str], list, list[str | None]]:
    """Every clip of the split's videos with a non-empty narration: (narrations, clip inputs, step
    texts); a pair's step text is the step of its task's list that its narration matches
    (``step_list``; None: no match, or ``step_threshold`` None: no matching)."""
    part = read_corpus(corpus_path).split(split)
    if not part.videos:
        raise ValueError(f"{corpus_path}: no videos in split {split!r}")
    steps: dict[tuple[int, int], str] = {}
    if step_threshold is not None:
        steps = corpus_step_texts(part, step_threshold, corpus_path)[1]
    texts, inputs, step_of = [], [], []
    for vi, video in enumerate(part.videos):
        features = VideoFeatures.load(video.features)
        for clip, narration in enumerate(video.narrations):
            if narration and narration.strip():
                texts.append(narration)
                inputs.append(clip_inputs(features, [clip], max_regions))
                step_of.append(steps.get((vi, clip)))
    if len(texts) < 2:
        raise ValueError(f"split {split!r} has {len(texts)} narrated clips: too few to contrast")
    return texts, inputs, step_of


def info_nce(text: torch.Tensor, video: torch.Tensor, scale: torch.Tensor,
             same_text: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE of (B, D) unit vectors, pair i = (text i, video i); ``same_text`` (B, B)
    bool marks pairs with identical narrations, removed as negatives (the diagonal is kept)."""
    logits = scale * text @ video.T
    off = same_text & ~torch.eye(len(text), dtype=torch.bool, device=text.device)
    logits = logits.masked_fill(off, float("-inf"))
    target = torch.arange(len(text), device=text.device)
    return 0.5 * (nn.functional.cross_entropy(logits, target)
                  + nn.functional.cross_entropy(logits.T, target))


def _schedule(step: int, config: DualTrainConfig) -> float:
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def train_dual(config: DualTrainConfig) -> dict:
    """Train and save the dual encoder; returns a summary with the logged ``losses``."""
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    texts, inputs, step_of = training_pairs(config.corpus, config.split, config.max_regions,
                                            config.step_list_threshold if config.step_list_share else None)
    model = DualEncoder(DualEncoderConfig(
        action_size=inputs[0].action_features.shape[1], region_size=inputs[0].region_features.shape[1],
        max_regions=config.max_regions, width=config.width, layers=config.layers,
        embed_size=config.embed_size))
    tok = ActBertTokenizer(max_length=model.config.max_text_tokens)
    text_params = list(model.text.parameters())
    for p in text_params:
        p.requires_grad_(not config.freeze_text)
    others = [p for n, p in model.named_parameters() if not n.startswith("text.")]
    groups = [{"params": others, "lr": config.lr}]
    if not config.freeze_text:
        groups.append({"params": text_params, "lr": config.text_lr})
    optimizer = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
    base = [g["lr"] for g in optimizer.param_groups]
    distinct = list(dict.fromkeys(texts + [t for t in step_of if t is not None]))
    index = {t: i for i, t in enumerate(distinct)}
    text_id = np.array([index[t] for t in texts])
    step_id = np.array([-1 if t is None else index[t] for t in step_of])
    pooled = None
    if config.freeze_text:  # the frozen tower's outputs, once per distinct narration
        model.text.eval()
        with torch.no_grad():
            pooled = torch.cat([model.text(e.ids, e.mask) for e in
                                (tok(distinct[i:i + 256]) for i in range(0, len(distinct), 256))])
    rng = np.random.default_rng([config.seed, 31])
    order, cursor, losses = rng.permutation(len(texts)), 0, []
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    log_file = (out / "train.jsonl").open("w")
    started = time.perf_counter()
    model.train()
    if config.freeze_text:
        model.text.eval()
    for step in range(config.steps):
        if cursor + config.batch_size > len(order):
            order, cursor = rng.permutation(len(texts)), 0
        batch = order[cursor:cursor + config.batch_size]
        cursor += config.batch_size
        for group, lr in zip(optimizer.param_groups, base):
            group["lr"] = lr * _schedule(step, config)
        chosen = text_id[batch]
        if config.step_list_share:  # the pairs that read their step text this time
            reads = (step_id[batch] >= 0) & (rng.random(len(batch)) < config.step_list_share)
            chosen = np.where(reads, step_id[batch], chosen)
        ids = torch.as_tensor(chosen)
        if pooled is not None:
            text_vec = nn.functional.normalize(model.text_projection(pooled[ids]), dim=-1)
        else:
            enc = tok([distinct[i] for i in chosen])
            text_vec = model.encode_text(enc.ids, enc.mask)
        video = collate([inputs[i] for i in batch])
        video.pop("region_classes")
        scale = model.logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)
        loss = info_nce(text_vec, model.encode_video(**video), scale, ids[:, None] == ids[None, :])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        if (step + 1) % config.log_every == 0 or step + 1 == config.steps:
            record = {"step": step + 1, "loss": float(np.mean(losses[-config.log_every:])),
                      "logit_scale": float(scale.detach()), "lr": optimizer.param_groups[0]["lr"],
                      "seconds": round(time.perf_counter() - started, 2)}
            log_file.write(json.dumps(record) + "\n")
            log_file.flush()
    log_file.close()
    model.eval().save_pretrained(out)
    (out / "train_config.json").write_text(json.dumps(asdict(config), indent=1) + "\n")
    return {"out": str(out), "steps": config.steps, "pairs": len(texts),
            "pairs_with_a_step_text": int((step_id >= 0).sum()),
            "distinct_narrations": len(distinct), "first_loss": round(losses[0], 4),
            "last_loss": round(float(np.mean(losses[-config.log_every:])), 4),
            "seconds": round(time.perf_counter() - started, 1), "losses": losses}
