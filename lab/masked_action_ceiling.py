"""How far can masked action classification go on a corpus whose action labels are narration verbs?
Prints one JSON object (percent top-1 over the evaluated clips, as ``actbert evaluate`` scores it).

``actbert evaluate``'s masked action task zeroes a held-out clip's action feature and asks the action
head for the clip's ground-truth *step* verb, given the clip's narration and regions. The head is
pretrained on the *narration's* verbs (the paper's labels), and SynthKitchen's narrations name the
step verb of only some clips. This script measures simple systems built from the same evidence,
fitted on the train split, scored on ``--split`` with the same closed label space:

- ``narration_names_step_verb``: share of clips whose narration contains their step verb.
- ``read_narration``: the first step verb the narration names, else the majority verb (no learning).
- probes on pooled region features (mean region feature, mean and max detector class scores):
  ``regions_supervised`` fitted on the train clips' step verbs (how much the regions tell: not
  available to self-supervised pretraining), ``regions_self_supervised`` fitted on the narration
  verbs (what pretraining can learn from regions), and ``regions_and_words_self_supervised`` with
  a bag of the narration's other words (the verb words removed) beside the regions;
- ``read_narration_else_*``: the narration's step verb when it names one, else the probe's answer:
  a strong self-supervised system, to compare with the model's ``top1_masked`` and with the target.

Usage: python lab/masked_action_ceiling.py --corpus LIB/corpus.jsonl --checkpoint assets/demo/actbert
       [--split val] [--hidden 256] [--epochs 300] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from actbert.corpus import read_corpus
from actbert.data import SEP_TOKEN
from actbert.evaluation.heads import verb_clips
from actbert.evaluation.tasks import SplitClips, load_split


def region_summary(split: SplitClips, clips: list[int], max_regions: int) -> torch.Tensor:
    """(N, F_r + 2 C) per clip: mean region feature, mean and max detector class scores."""
    rows = []
    for c in clips:
        x = split.inputs(c, max_regions)
        real = (x.region_tokens != SEP_TOKEN)[1:]  # slot 0 is the global token
        feats = x.region_features[1:][real]
        classes = x.region_classes[x.region_classes.sum(1) > 0]
        f_size, c_size = x.region_features.shape[1], x.region_classes.shape[1]
        rows.append(torch.cat([
            feats.mean(0) if len(feats) else torch.zeros(f_size),
            classes.mean(0) if len(classes) else torch.zeros(c_size),
            classes.max(0).values if len(classes) else torch.zeros(c_size)]))
    return torch.stack(rows).float()


def words(text: str | None) -> list[str]:
    return re.findall(r"[a-z]+", (text or "").lower())


def fit(x: torch.Tensor, y: torch.Tensor, hidden: int, epochs: int, seed: int):
    """A soft-target softmax classifier (linear, or one hidden layer), full batch, Adam."""
    torch.manual_seed(seed)
    mu, sd = x.mean(0), x.std(0) + 1e-4
    net = (torch.nn.Sequential(torch.nn.Linear(x.shape[1], hidden), torch.nn.GELU(),
                               torch.nn.Dropout(0.3), torch.nn.Linear(hidden, y.shape[1]))
           if hidden else torch.nn.Linear(x.shape[1], y.shape[1]))
    opt = torch.optim.Adam(net.parameters(), 1e-2, weight_decay=1e-3)
    for _ in range(epochs):
        opt.zero_grad()
        loss = -(y * torch.log_softmax(net((x - mu) / sd), -1)).sum(-1).mean()
        loss.backward()
        opt.step()
    net.eval()
    return lambda z: net((z - mu) / sd).detach()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--checkpoint", required=True, help="a model folder: its verb classes")
    ap.add_argument("--split", default="val")
    ap.add_argument("--hidden", type=int, default=256, help="0: linear probes")
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-regions", type=int, default=36)
    args = ap.parse_args()

    config = json.loads((Path(args.checkpoint) / "config.json").read_text())
    verbs = list(config["extra"]["verbs"])
    index = {v: i for i, v in enumerate(verbs)}
    corpus = read_corpus(args.corpus)
    train, held = load_split(corpus, "train"), load_split(corpus, args.split)

    labelled = verb_clips(held, verbs)
    clips, truth = [c for c, _ in labelled], np.array([v for _, v in labelled])
    space = sorted(set(truth.tolist()))
    names = [verbs[v] for v in space]
    majority = int(np.bincount(truth).argmax())

    def named_step_verb(text: str | None) -> int | None:
        found = [(m.start(), s) for s in names for m in [re.search(r"\b" + s, (text or "").lower())] if m]
        return index[min(found)[1]] if found else None

    def top1(logits: torch.Tensor) -> np.ndarray:
        return np.array(space)[logits[:, space].argmax(-1).numpy()]

    named = [named_step_verb(held.clips[c].narration) for c in clips]
    out = {"split": args.split, "clips": len(clips), "label_space": names,
           "majority": 100 * float((truth == majority).mean()),
           "narration_names_step_verb": 100 * float(np.mean([n == t for n, t in zip(named, truth)])),
           "read_narration": 100 * float(np.mean([(majority if n is None else n) == t
                                                  for n, t in zip(named, truth)]))}

    def else_probe(pred: np.ndarray) -> float:
        return 100 * float(np.mean([(p if n is None else n) == t for n, p, t in zip(named, pred, truth)]))

    held_regions = region_summary(held, clips, args.max_regions)
    # supervised by the step verbs of the train clips (an upper bound on what regions tell)
    step_train = verb_clips(train, verbs)
    y = torch.zeros(len(step_train), len(verbs))
    y[torch.arange(len(step_train)), torch.tensor([v for _, v in step_train])] = 1
    probe = fit(region_summary(train, [c for c, _ in step_train], args.max_regions), y,
                args.hidden, args.epochs, args.seed)
    out["regions_supervised"] = 100 * float((top1(probe(held_regions)) == truth).mean())

    # self-supervised: the narration verbs of every train clip that has one (l1-normalised)
    rows, targets = [], []
    for c, clip in enumerate(train.clips):
        found = [index[v] for v in train.corpus.videos[clip.video].verbs[clip.index] if v in index]
        if found:
            t = torch.zeros(len(verbs))
            t[found] = 1
            rows.append(c)
            targets.append(t / t.sum())
    y = torch.stack(targets)
    train_regions = region_summary(train, rows, args.max_regions)
    probe = fit(train_regions, y, args.hidden, args.epochs, args.seed)
    pred = top1(probe(held_regions))
    out["regions_self_supervised"] = 100 * float((pred == truth).mean())
    out["read_narration_else_regions"] = else_probe(pred)

    def is_verb(w: str) -> bool:
        return any(w.startswith(v) for v in verbs)
    counts = Counter(w for c in rows for w in set(words(train.clips[c].narration)) if not is_verb(w))
    vocab = {w: i for i, w in enumerate(sorted(w for w, n in counts.items() if n >= 5))}

    def bag(split: SplitClips, ids: list[int]) -> torch.Tensor:
        x = torch.zeros(len(ids), len(vocab))
        for k, c in enumerate(ids):
            for w in words(split.clips[c].narration):
                if w in vocab:
                    x[k, vocab[w]] = 1
        return x

    probe = fit(torch.cat([train_regions, bag(train, rows)], 1), y, args.hidden, args.epochs, args.seed)
    pred = top1(probe(torch.cat([held_regions, bag(held, clips)], 1)))
    out["regions_and_words_self_supervised"] = 100 * float((pred == truth).mean())
    out["read_narration_else_regions_and_words"] = else_probe(pred)
    out["settings"] = {"hidden": args.hidden, "epochs": args.epochs, "seed": args.seed,
                       "train_clips_with_narration_verbs": len(rows), "word_vocabulary": len(vocab)}
    print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in out.items()}, indent=1))


if __name__ == "__main__":
    main()
