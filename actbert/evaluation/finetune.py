"""``python -m actbert finetune --task segmentation|videoqa|retrieval``: the paper's fine-tuned
protocols (section 4.2; what each trains and validates on: ``finetune_tasks``).

Training: the TRAIN split of the corpus (at most ``--max-train-units`` clips, questions or pairs, a
seeded sample), Adam (the paper's VideoQA recipe: lr 1e-4) over the model and the task's head,
``--epochs`` passes; the VAL split is scored before the first epoch (the starting point: the
zero-shot head, or for segmentation the frozen-feature probe) and after each one, and the state
with the best val figure is kept (early stopping: ``--patience`` epochs without improvement end the
run). The test split is never read.

Output folder (``--out``): the fine-tuned model (``config.json`` + ``model.safetensors``, as
``save_pretrained``), ``head.safetensors`` for segmentation's linear classifier, and
``finetune.json``: the task, ``"protocol": "finetuned"``, the base checkpoint, the system name the
evaluation reports (``actbert_finetuned``; ``actbert_no_regions_finetuned`` with ``--no-regions``),
the label names (segmentation), the train and val video ids, the val figure of every epoch and the
chosen one. ``actbert evaluate --finetuned OUT`` reports the model on the evaluated split beside the
zero-shot and probe rows (``load_finetuned``, ``FinetunedModel``). Nothing is pickled.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from ..corpus import Corpus
from ..device import checked_device
from ..model import ActBertForPretraining
from ..pretraining.train import freeze_text
from ..tokenizer import ActBertTokenizer
from .finetune_tasks import PROTOCOLS, TASKS
from .probe import L2_GRID
from .scorer import ModelScorer, load_checkpoint
from .tasks import SplitClips, check_disjoint, load_split

log = logging.getLogger(__name__)

FORMAT = "actbert-finetuned-1"
RECORD = "finetune.json"
HEAD = "head.safetensors"
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
        from .tasks import segmentation_labels

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


def save(directory: str | Path, model: ActBertForPretraining, head, record: dict) -> None:
    """The output folder: model (safetensors), head (safetensors) and the record (JSON)."""
    directory = Path(directory)
    model.save_pretrained(directory)
    if head is not None:
        save_file({k: v.detach().contiguous().cpu() for k, v in head.state_dict().items()},
                  str(directory / HEAD))
    (directory / RECORD).write_text(json.dumps(record, indent=1))


# ---- the evaluation side -----------------------------------------------------------------------

@dataclass
class FinetunedModel:
    """A fine-tuned output folder, loaded for scoring an evaluated split."""

    directory: str
    record: dict
    model: ActBertForPretraining
    head: torch.nn.Linear | None

    @property
    def task(self) -> str:
        return self.record["task"]

    @property
    def system(self) -> str:
        return self.record["system"]

    def scorer(self, tok: ActBertTokenizer, split: SplitClips, batch_size: int = 64,
               device: str = "cpu") -> ModelScorer:
        return ModelScorer(self.model, tok, split, self.record["use_regions"], batch_size, device)

    @torch.no_grad()
    def segment(self, tok: ActBertTokenizer, split: SplitClips, clips, labels: list[str]) -> np.ndarray:
        """Label index (in ``labels``, the evaluation's list) per clip; a label the fine-tuning never
        had maps to background (index 0)."""
        features = self.scorer(tok, split).visual_features(list(clips))
        own = self.head(torch.as_tensor(features, dtype=torch.float32)).argmax(1).numpy()
        index = {name: i for i, name in enumerate(labels)}
        return np.array([index.get(self.record["labels"][i], 0) for i in own], np.int64)


def load_finetuned(directory: str | Path, held: SplitClips, device: str = "cpu") -> FinetunedModel:
    """A ``finetune`` output folder; an error when it trained or validated on an evaluated video."""
    directory = Path(directory)
    path = directory / RECORD
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no fine-tuning record (write it with `actbert finetune`)")
    record = json.loads(path.read_text())
    if record.get("format") != FORMAT or record.get("task") not in TASKS:
        raise ValueError(f"{path}: not an {FORMAT} record")
    seen = set(record["train_video_ids"]) | set(record["val_video_ids"])
    leaked = sorted(seen & {v.video_id for v in held.corpus.videos})
    if leaked:
        raise ValueError(f"{directory}: fine-tuned on videos of the evaluated split {held.name!r}: "
                         f"{leaked[:5]}")
    head = None
    if record["task"] == "segmentation":
        weights = load_file(str(directory / HEAD))
        head = torch.nn.Linear(weights["weight"].shape[1], weights["weight"].shape[0])
        head.load_state_dict(weights)
        head.eval()
    return FinetunedModel(str(directory), record, load_checkpoint(directory, held, device), head)


# ---- command line ------------------------------------------------------------------------------

EXAMPLE = """example:
  actbert finetune --library lib --task segmentation --out runs/ft/segmentation
  actbert evaluate --library lib --split test --finetuned runs/ft/segmentation --json"""


def run_finetune(args: argparse.Namespace) -> dict:
    from .benchmark_corpus import corpus_from_args

    corpus, label, checkpoint = corpus_from_args(args, ablation=args.no_regions)
    device = checked_device(args.device)
    config = FinetuneConfig(
        task=args.task, checkpoint=checkpoint, out=args.out, epochs=args.epochs, lr=args.lr,
        batch_size=args.batch_size, patience=args.patience, max_train_units=args.max_train_units,
        max_seconds=args.max_seconds, use_regions=not args.no_regions,
        freeze_text_layers=args.freeze_text_layers, seed=args.seed, device=device, threads=args.threads)
    record = finetune(config, corpus, label)
    return {k: record[k] for k in ("task", "protocol", "system", "best_epoch", "best_val",
                                   "val_metric", "train_units", "seconds")} | {
        "out": args.out, "val_by_epoch": [round(h["val"], 2) for h in record["history"]]}


def add_cli(subparsers) -> None:
    from .benchmark_corpus import add_source_args

    p = subparsers.add_parser(
        "finetune", help="fine-tune the model on a task's train split (paper 4.2), early stopping "
                         "on val; evaluate reports it with --finetuned",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_source_args(p)
    p.add_argument("--task", required=True, choices=TASKS)
    p.add_argument("--out", required=True, help="output folder (model, head, finetune.json)")
    p.add_argument("--no-regions", action="store_true",
                   help="fine-tune the no-regions model (--ablation-checkpoint or library.json "
                        "'model_no_regions') without region inputs")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (paper: 1e-4)")
    p.add_argument("--batch-size", type=int, help="clips (segmentation: 16, retrieval: 32) or "
                                                  "questions of 5 candidates (videoqa: 4) per step")
    p.add_argument("--patience", type=int, default=2, help="epochs without a better val figure "
                                                           "before stopping")
    p.add_argument("--max-train-units", type=int, default=800,
                   help="train clips / questions / pairs used (a seeded sample)")
    p.add_argument("--max-seconds", type=float, help="stop training after this many seconds")
    p.add_argument("--freeze-text-layers", type=int, default=0,
                   help="keep the word embeddings and the first N text layers fixed")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run_finetune)
