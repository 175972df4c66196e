"""Training for the downstream evaluations: ``finetune`` (the paper's fine-tuned protocols,
``actbert.finetuning.finetune``) and ``train-dual`` (the dual-encoder baseline,
``actbert.finetuning.dual_training``); ``evaluate`` reports both (``--finetuned``,
``--dual-encoder``)."""

from __future__ import annotations

import argparse

from ..device import checked_device
from ..evaluation.finetuned import TASKS
from ..finetuning.dual_training import DualTrainConfig, train_dual
from ..finetuning.finetune import FinetuneConfig, finetune
from .output import print_result
from .sources import add_source_args, corpus_from_args


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "finetune", help="fine-tune the model on a task's train split (paper 4.2), early stopping "
                         "on val; evaluate reports it with --finetuned")
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
    p.set_defaults(func=run_finetune)


def run_finetune(args: argparse.Namespace) -> int:
    corpus, label, checkpoint = corpus_from_args(args, ablation=args.no_regions)
    device = checked_device(args.device)
    config = FinetuneConfig(
        task=args.task, checkpoint=checkpoint, out=args.out, epochs=args.epochs, lr=args.lr,
        batch_size=args.batch_size, patience=args.patience, max_train_units=args.max_train_units,
        max_seconds=args.max_seconds, use_regions=not args.no_regions,
        freeze_text_layers=args.freeze_text_layers, seed=args.seed, device=device, threads=args.threads)
    record = finetune(config, corpus, label)
    print_result({k: record[k] for k in ("task", "protocol", "system", "best_epoch", "best_val",
                                         "val_metric", "train_units", "seconds")} | {
        "out": args.out, "val_by_epoch": [round(h["val"], 2) for h in record["history"]]}, args.json)
    return 0


def add_dual_cli(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("train-dual", help="train the dual-encoder baseline (MiniLM text, "
                                                 "a small video transformer, InfoNCE) on the "
                                                 "train split; evaluate shows it with --dual-encoder")
    p.add_argument("--corpus", required=True, help="a corpus.jsonl file (its train split)")
    p.add_argument("--out", required=True, help="output folder (config.json, model.safetensors, "
                                                "train.jsonl)")
    p.add_argument("--split", help="the split trained on (default train)")
    for name, kind in (("steps", int), ("batch-size", int), ("lr", float), ("text-lr", float),
                       ("warmup-steps", int), ("width", int), ("layers", int), ("embed-size", int),
                       ("max-regions", int), ("log-every", int), ("seed", int), ("threads", int)):
        p.add_argument(f"--{name}", type=kind)
    p.add_argument("--step-list-share", type=float,
                   help="distant supervision as `actbert train --step-list-share`: a pair whose "
                        "narration matches a step of its task's list reads the step (default 0)")
    p.add_argument("--step-list-threshold", type=float,
                   help="the MiniLM cosine a narration needs to match a step (default 0.4)")
    p.add_argument("--freeze-text", action="store_true", default=None,
                   help="keep MiniLM fixed (its outputs computed once per narration)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_train_dual)


def run_train_dual(args: argparse.Namespace) -> int:
    known = set(DualTrainConfig.__dataclass_fields__)
    summary = train_dual(DualTrainConfig(**{k: v for k, v in vars(args).items()
                                            if k in known and v is not None}))
    summary.pop("losses")
    print_result(summary, args.json)
    return 0
