"""``python -m actbert finetune --task segmentation|videoqa|retrieval``: the paper's fine-tuned
protocols (section 4.2; what each trains and validates on: ``protocols``).

Training: the TRAIN split of the corpus (at most ``--max-train-units`` clips, questions or pairs, a
seeded sample), Adam (the paper's VideoQA recipe: lr 1e-4) over the model and the task's head,
``--epochs`` passes; the VAL split is scored before the first epoch (the starting point: the
zero-shot head, or for segmentation the frozen-feature probe) and after each one, and the state
with the best val figure is kept (early stopping: ``--patience`` epochs without improvement end the
run). The test split is never read.

Output folder (``--out``): the fine-tuned model, segmentation's head and ``finetune.json``, in the
format that ``actbert evaluate --finetuned OUT`` reads (``actbert.evaluation.finetuned``), which
reports the model on the evaluated split beside the zero-shot and probe rows.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..corpus import Corpus
from ..evaluation.finetuned import FORMAT, TASKS, save
from ..evaluation.probe import L2_GRID
from ..evaluation.scorer import load_checkpoint
from ..evaluation.tasks import SplitClips, check_disjoint, load_split, segmentation_labels
from ..pretraining.train import freeze_text
from ..tokenizer import ActBertTokenizer
from .protocols import PROTOCOLS

log = logging.getLogger(__name__)

BATCH = {"segmentation": 16, "videoqa": 4, "retrieval": 32}  # clips, questions (x5), pairs


@dataclass(frozen=True)
class FinetuneConfig:
    task: str
    checkpoint: str
    out: str
    epochs: int = 8
    lr: float = 1e-4
    batch_size: int | None = None       # default: BATCH[task]
    patience: int = 2
    max_train_units: int = 800
    max_seconds: float | None = None    # stop the epoch in progress after this much training
    use_regions: bool = True
    freeze_text_layers: int = 0
    max_text_tokens: int = 64
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None
    probe_grid: tuple[float, ...] = L2_GRID  # segmentation's starting probe: its l2 candidates

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; choose from {', '.join(TASKS)}")
        if self.epochs < 0 or self.patience < 1 or self.max_train_units < 1:
            raise ValueError("--epochs must be >= 0, --patience and --max-train-units >= 1")

    @property
    def system(self) -> str:
        return "actbert_finetuned" if self.use_regions else "actbert_no_regions_finetuned"


def _protocol(config: FinetuneConfig, train: SplitClips, val: SplitClips, model, tok):
    extra = {}
    if config.task == "segmentation":
        extra = {"labels": segmentation_labels(train.corpus, val.corpus), "model": model,
                 "grid": config.probe_grid}
    return PROTOCOLS[config.task](train, val, tok, use_regions=config.use_regions, batch_size=64,
                                  device=config.device, seed=config.seed, **extra)


def _epoch(protocol, model, optimizer, units: list, batch: int, rng, deadline: float | None) -> float:
    """One pass over ``units`` in a seeded order; returns the mean loss."""
    model.train()
    if protocol.head is not None:
        protocol.head.train()
    losses = []
    order = rng.permutation(len(units))
    for start in range(0, len(order), batch):
        loss = protocol.loss(model, [units[i] for i in order[start:start + batch]])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        if deadline is not None and time.perf_counter() > deadline:
            break
    model.eval()
    if protocol.head is not None:
        protocol.head.eval()
    return float(np.mean(losses))


def _state(model, head) -> dict:
    keep = {f"model.{k}": v.detach().clone() for k, v in model.state_dict().items()}
    if head is not None:
        keep.update({f"head.{k}": v.detach().clone() for k, v in head.state_dict().items()})
    return keep


def _restore(state: dict, model, head) -> None:
    model.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("model.")})
    if head is not None:
        head.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("head.")})


def finetune(config: FinetuneConfig, corpus: Corpus, corpus_label: str = "") -> dict:
    """Fine-tune, keep the best val state, write the output folder; returns its record."""
    started = time.perf_counter()
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    train, val = load_split(corpus, "train"), load_split(corpus, "val")
    check_disjoint(train.corpus, val.corpus)
    model = load_checkpoint(config.checkpoint, train, config.device)
    freeze_text(model, config.freeze_text_layers)
    tok = ActBertTokenizer(max_length=config.max_text_tokens)
    protocol = _protocol(config, train, val, model, tok)
    rng = np.random.default_rng([config.seed, 41])
    units = protocol.units
    if len(units) > config.max_train_units:
        units = [units[i] for i in np.sort(rng.choice(len(units), config.max_train_units, replace=False))]
    params = [p for p in model.parameters() if p.requires_grad]
    if protocol.head is not None:
        params += list(protocol.head.parameters())
    optimizer = torch.optim.Adam(params, lr=config.lr)
    batch = config.batch_size or BATCH[config.task]
    deadline = None if config.max_seconds is None else time.perf_counter() + config.max_seconds
    history = [{"epoch": 0, "val": protocol.validate(model.eval()), "seconds": 0.0}]
    best, best_state = history[0], _state(model, protocol.head)
    log.info("finetune %s: %d train units, val %.2f before training", config.task, len(units),
             best["val"])
    for epoch in range(1, config.epochs + 1):
        t0 = time.perf_counter()
        loss = _epoch(protocol, model, optimizer, units, batch, rng, deadline)
        history.append({"epoch": epoch, "train_loss": loss, "val": protocol.validate(model),
                        "seconds": round(time.perf_counter() - t0, 2)})
        log.info("finetune %s: epoch %d loss %.4f val %.2f", config.task, epoch, loss, history[-1]["val"])
        if history[-1]["val"] > best["val"]:
            best, best_state = history[-1], _state(model, protocol.head)
        elif epoch - best["epoch"] >= config.patience:
            break
        if deadline is not None and time.perf_counter() > deadline:
            break
    _restore(best_state, model, protocol.head)
    record = {
        "format": FORMAT, "task": config.task, "protocol": "finetuned", "system": config.system,
        "checkpoint": config.checkpoint, "corpus": corpus_label, "use_regions": config.use_regions,
        "labels": getattr(protocol, "labels", None),
        "val_metric": {"segmentation": "frame_accuracy", "videoqa": "accuracy",
                       "retrieval": "mean of r1, r5, r10 (embedding)"}[config.task],
        "best_epoch": best["epoch"], "best_val": best["val"], "history": history,
        "train_units": len(units), "batch_size": batch,
        "train_video_ids": sorted(v.video_id for v in train.corpus.videos),
        "val_video_ids": sorted(v.video_id for v in val.corpus.videos),
        "seconds": round(time.perf_counter() - started, 2), "config": asdict(config)}
    save(config.out, model, protocol.head, record)
    return record
