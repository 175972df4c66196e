"""Do the matching head and the action head learn? Train a recipe, score it on held-out clips.

Runs ``actbert train`` (the real model, collator, objective and loop) with the recipe given on the
command line for ``--steps`` steps on the corpus' train split, then scores the checkpoint on the
``--split`` clips (val by default: recipes are chosen there, the test split only reports):

- matching ROC-AUC (percent; chance 50) on pairs of a clip with its own step description vs the
  description of a step whose verb or objects differ (``actbert.evaluation.heads.matching_pairs``),
  also with the mismatched step drawn from the same task (``auc_same_task``);
- masked action top-1 (percent) beside the majority class
  (``actbert.evaluation.heads.masked_action``);
- the matching loss' running mean over training (chance: ln 2 = 0.693) from train.jsonl;
- how much of the video reaches the text [CLS]: the relative change of the [CLS] state after each
  tangled block when the clip is swapped for another (``cls_sensitivity``), trained vs initial.

Prints one JSON object. ``--clean-narrations`` replaces each clip's narration by the ground-truth
step descriptions overlapping it (a noise-free control; needs steps in the corpus).

Usage: python lab/matching.py CORPUS.jsonl --out DIR [--steps 300] [--match-on clean|masked]
       [--match-weight 1] [--hard-negatives 0.5] [--freeze-text-layers 0] [--lr 1e-4] [--batch 16]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from actbert.corpus import ClipGroups, Corpus, read_corpus, write_corpus
from actbert.data import VideoFeatures
from actbert.evaluation.heads import matching_auc, matching_pairs, masked_action
from actbert.evaluation.scorer import ModelScorer
from actbert.evaluation.tasks import load_split
from actbert.model import ActBertForPretraining
from actbert.pretraining.train import TrainConfig, model_for_corpus, train
from actbert.tokenizer import ActBertTokenizer


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


@torch.inference_mode()
def cls_sensitivity(model: ActBertForPretraining, tok: ActBertTokenizer, clips, use_regions: bool,
                    seed: int, count: int = 48) -> dict[str, float]:
    """How much of the video reaches the text [CLS]: the relative change ||h - h'|| / ||h|| of the
    text [CLS] hidden state after each tangled block (and at the pooled output) when the clip is
    replaced by another clip of the split, for ``count`` (step description, clip) pairs."""
    from actbert.layers import mask_to_bias

    pairs = [(t, c) for t, c, y in matching_pairs(clips, seed) if y == 1][:count]
    other = torch.randperm(len(clips.clips), generator=torch.Generator().manual_seed(seed)).tolist()
    scorer = ModelScorer(model, tok, clips, use_regions)
    act, order = model.actbert, model.actbert.encoder.order
    changes: dict[str, list[float]] = {}
    for n, (text, clip) in enumerate(pairs):
        enc = tok([text])
        states = []
        for c in (clip, other[n] if other[n] != clip else other[n - 1]):
            v = scorer.video_batch([c])
            hidden = {"text": act.embeddings["text"](enc.ids),
                      "action": act.embeddings["action"](v["action_features"], None, v["action_positions"],
                                                         v["action_segments"]),
                      "region": act.embeddings["region"](v["region_features"], v["region_locations"],
                                                         v["region_positions"], v["region_segments"],
                                                         v["region_tokens"])}
            bias = {"text": mask_to_bias(enc.mask), "action": mask_to_bias(v["action_mask"]),
                    "region": mask_to_bias(v["region_mask"])}
            seen = {}
            for kind, index in order:
                if kind == "tangled":
                    hidden, _ = act.encoder.tangled[index](hidden, bias)
                    seen[f"tangled.{index}"] = hidden["text"][0, 0]
                else:
                    hidden[kind], _ = act.encoder.layers[kind][index](hidden[kind], bias[kind])
            seen["pooled"] = act.pooler["text"](hidden["text"])[0]
            states.append(seen)
        for key, h in states[0].items():
            change = float((h - states[1][key]).norm() / h.norm().clamp(min=1e-9))
            changes.setdefault(key, []).append(change)
    return {k: round(sum(v) / len(v), 4) for k, v in changes.items()}


def held_out(checkpoint: Path, corpus: Corpus, split: str, seed: int, use_regions: bool) -> dict:
    model = ActBertForPretraining.from_pretrained(checkpoint).eval()
    tok = ActBertTokenizer(max_length=64)
    clips = load_split(corpus, split)
    scorer = ModelScorer(model, tok, clips, use_regions)
    return {"auc": round(matching_auc(scorer.match, matching_pairs(clips, seed)), 2),
            "auc_same_task": round(matching_auc(scorer.match, matching_pairs(clips, seed, True)), 2),
            "auc_embedding": round(matching_auc(scorer.cosine, matching_pairs(clips, seed)), 2),
            **{k: round(v, 2) for k, v in masked_action(model, tok, clips,
                                                         model.config.extra.get("verbs") or corpus.verbs,
                                                         use_regions).items()},
            "cls_change_when_video_swapped": cls_sensitivity(model, tok, clips, use_regions, seed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus")
    parser.add_argument("--out", required=True, help="training folder (resumed when it exists)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--match-on", default="clean", choices=["clean", "masked"])
    parser.add_argument("--match-weight", type=float, default=1.0)
    parser.add_argument("--match-input", choices=["cls", "fused"], default=None)
    parser.add_argument("--hard-negatives", type=float, default=0.5)
    parser.add_argument("--freeze-text-layers", type=int, default=0)
    parser.add_argument("--clips-per-sample", type=int, default=2)
    parser.add_argument("--no-regions", action="store_true")
    parser.add_argument("--clean-narrations", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-only", action="store_true",
                        help="score the checkpoint already in OUT/last (no training)")
    args = parser.parse_args()
    corpus_path = Path(args.corpus)
    corpus = read_corpus(corpus_path)
    if args.clean_narrations:
        corpus = clean_narrations(corpus)
        corpus_path = Path(args.out) / "corpus_clean.jsonl"
        corpus_path.parent.mkdir(parents=True, exist_ok=True)
        write_corpus(corpus_path, list(corpus.videos), list(corpus.verbs), list(corpus.region_classes))
    config = TrainConfig(
        corpus=str(corpus_path), out=args.out, preset="mini", steps=args.steps, batch_size=args.batch,
        lr=args.lr, warmup_steps=min(100, args.steps // 10), clips_per_sample=args.clips_per_sample,
        match_on=args.match_on, match_weight=args.match_weight, hard_negatives=args.hard_negatives,
        match_input=args.match_input,
        freeze_text_layers=args.freeze_text_layers, use_regions=not args.no_regions, seed=args.seed,
        checkpoint_every=100, log_every=10, progress=False)
    torch.manual_seed(args.seed)  # the initial weights train() draws, for the [CLS] comparison
    train_part = corpus.split("train")
    initial = model_for_corpus(config, train_part, ClipGroups(train_part, args.clips_per_sample).sample(0)).eval()
    at_init = cls_sensitivity(initial, ActBertTokenizer(max_length=64), load_split(corpus, args.split),
                              not args.no_regions, args.seed)
    del initial
    started = time.perf_counter()
    summary = ({"steps": None, "samples_per_s": None, "final": {}, "checkpoint": str(Path(args.out) / "last")}
               if args.eval_only else train(config))
    seconds = time.perf_counter() - started
    log = [json.loads(line) for line in (Path(args.out) / "train.jsonl").read_text().splitlines()]
    curve = {r["step"]: r["match"] for r in log if r["step"] % 50 == 0 or r["step"] == log[-1]["step"]}
    print(json.dumps({
        "corpus": args.corpus, "recipe": {k: v for k, v in vars(args).items() if k not in ("corpus", "out")},
        "steps": summary["steps"], "train_seconds": round(seconds, 1),
        "samples_per_s": summary["samples_per_s"], "match_loss_by_step": curve, "chance_loss": 0.6931,
        "final_losses": {k: summary["final"].get(k) for k in ("text", "action", "region", "match", "align")},
        args.split: held_out(Path(summary["checkpoint"]), corpus, args.split, args.seed,
                             not args.no_regions),
        "cls_change_at_init": at_init,
        "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
