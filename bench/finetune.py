"""How long does each fine-tuned protocol take? Runs ``actbert finetune`` (the real model, protocols
and early stopping, ``actbert.finetuning.finetune``) for each task on a corpus and prints one JSON
object: per task the wall time (seconds, loading included) and the process CPU time (all threads:
on a machine shared with other work the wall time overstates the cost), the epochs run, the val
figure of each epoch (epoch 0 = the starting point: zero-shot head, or the frozen-feature probe for
segmentation), the train units and the threads; plus the target (each <= 15 minutes on 2 CPU
cores).

The corpus is read, never written; the fine-tuned models go to ``--out`` (default: a temporary
folder, removed afterwards).

Usage: python bench/finetune.py --corpus LIB/corpus.jsonl --checkpoint MODEL [--threads 2]
       [--tasks segmentation,videoqa,retrieval] [--epochs 8] [--max-train-units 800]
       [--max-seconds S] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import torch

from actbert.corpus import read_corpus
from actbert.evaluation.finetuned import TASKS
from actbert.finetuning.finetune import FinetuneConfig, finetune

TARGET_S = 15 * 60


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", required=True)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--max-train-units", type=int, default=800)
    p.add_argument("--max-seconds", type=float)
    p.add_argument("--out")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")  # per epoch
    torch.set_num_threads(args.threads)
    corpus = read_corpus(args.corpus)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench-finetune-"))
    result = {"corpus": args.corpus, "checkpoint": args.checkpoint, "threads": args.threads,
              "cpu_count": os.cpu_count(), "load_average": os.getloadavg()[0],
              "target_s": TARGET_S, "tasks": {}}
    for task in args.tasks.split(","):
        started, cpu = time.perf_counter(), time.process_time()
        record = finetune(FinetuneConfig(
            task=task, checkpoint=args.checkpoint, out=str(out / task), epochs=args.epochs,
            max_train_units=args.max_train_units, max_seconds=args.max_seconds,
            threads=args.threads), corpus, args.corpus)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        result["tasks"][task] = {
            "seconds": round(seconds, 1), "within_target": seconds <= TARGET_S,
            "cpu_seconds": round(cpu, 1),  # all threads; on a shared machine wall >> cpu / threads
            "epochs_run": len(record["history"]) - 1, "best_epoch": record["best_epoch"],
            "val_metric": record["val_metric"],
            "val_by_epoch": [round(h["val"], 2) for h in record["history"]],
            "seconds_by_epoch": [h["seconds"] for h in record["history"]],
            "train_units": record["train_units"]}
    if not args.out:
        import shutil

        shutil.rmtree(out, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
