"""Can the cross-modal matching head leave chance on a corpus? Prints one JSON object.

Trains a fresh model (``actbert train``'s model, collator and objective) for ``--steps`` steps on
the corpus' train split and reports the running mean of the matching loss (chance: ln 2 = 0.693)
every 20 steps. Three knobs isolate why matching does or does not learn:

- ``--losses``: which terms are optimised (default all five: text,action,region,match,align);
- ``--hard-negatives``: share of negatives from the same task (0: random other videos);
- ``--match-weight``: the matching term's weight in the optimised sum (others 1);
- ``--clean-narrations``: replace each clip's narration by the ground-truth step descriptions
  overlapping it (the noise-free control; needs steps in the corpus).

Usage: python bench/matching.py CORPUS.jsonl [--steps 120] [--losses match] [--hard-negatives 0]
       [--clean-narrations] [--match-weight 1] [--batch 16] [--lr 1e-4]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actbert.corpus import ClipGroups, Corpus, read_corpus  # noqa: E402
from actbert.data import VideoFeatures  # noqa: E402
from actbert.objectives import PretrainingObjective  # noqa: E402
from actbert.tokenizer import ActBertTokenizer  # noqa: E402
from actbert.train import Collator, TrainConfig, model_for_corpus  # noqa: E402

TERMS = ("text", "action", "region", "match", "align")


def clean_narrations(corpus: Corpus) -> Corpus:
    """Each clip's narration := the descriptions of the ground-truth steps overlapping it."""
    videos = []
    for v in corpus.videos:
        f = VideoFeatures.load(v.features)
        lines = tuple(" ".join(str(s["description"]) for s in v.steps
                               if min(e, float(s["end_sec"])) - max(b, float(s["start_sec"])) > 0)
                      for b, e in zip(f.clip_start_sec, f.clip_end_sec))
        videos.append(dataclasses.replace(v, narrations=lines))
    return dataclasses.replace(corpus, videos=tuple(videos))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("corpus")
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--losses", default=",".join(TERMS))
    parser.add_argument("--hard-negatives", type=float, default=0.5)
    parser.add_argument("--match-weight", type=float, default=1.0)
    parser.add_argument("--clean-narrations", action="store_true")
    parser.add_argument("--clips-per-sample", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    losses = args.losses.split(",")
    if not losses or not set(losses) <= set(TERMS):
        parser.error(f"--losses takes terms of {TERMS}")
    corpus = read_corpus(args.corpus).split("train")
    if args.clean_narrations:
        corpus = clean_narrations(corpus)
    torch.manual_seed(args.seed)
    data = ClipGroups(corpus, args.clips_per_sample, 36, args.seed, hard_negatives=args.hard_negatives)
    model = model_for_corpus(TrainConfig(corpus=args.corpus, out="", preset="mini"), corpus,
                             data.sample(0)).train()
    tok = ActBertTokenizer(max_length=64)
    objective = PretrainingObjective(model, "align" in losses, tok.cls_id, tok.sep_id)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    collator = Collator(tok, args.seed)
    match, curve, step, epoch, started = [], {}, 0, 0, time.perf_counter()
    while step < args.steps:
        data.set_epoch(epoch)
        collator.epoch = epoch
        order = torch.randperm(len(data), generator=torch.Generator().manual_seed(epoch)).tolist()
        for first in range(0, len(order) - args.batch + 1, args.batch):
            terms = objective(collator([data[i] for i in order[first:first + args.batch]]))
            optimizer.zero_grad()
            sum(terms[k] * (args.match_weight if k == "match" else 1.0) for k in losses).backward()
            optimizer.step()
            step += 1
            match.append(float(terms["match"].detach()))
            if step % 20 == 0:
                curve[step] = round(sum(match[-20:]) / 20, 4)
            if step == args.steps:
                break
        epoch += 1
    print(json.dumps({"corpus": args.corpus, "train_samples": len(data), "losses": losses,
                      "hard_negatives": args.hard_negatives, "clean_narrations": args.clean_narrations,
                      "match_weight": args.match_weight,
                      "batch": args.batch, "lr": args.lr, "steps": step, "chance": 0.6931,
                      "match_loss_by_step": curve,
                      "seconds": round(time.perf_counter() - started, 1)}))


if __name__ == "__main__":
    main()
