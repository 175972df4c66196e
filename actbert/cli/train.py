"""``actbert train``: pretrain on a library's corpus (``actbert.pretraining.train``), its options
being the ``TrainConfig`` fields, from a recipe file (``--config``) and the flags given."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

from ..pretraining.recipe import read_recipe
from ..pretraining.train import TrainConfig, train
from ..pretraining.verbs import read_stoplist
from .output import print_result


def read_stoplist_arg(spec: str) -> tuple[str, ...]:
    try:
        return read_stoplist(spec)
    except OSError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def add_cli(sub: argparse._SubParsersAction) -> None:
    """``train``'s options: the ``TrainConfig`` fields (None: the config's default)."""
    p = sub.add_parser("train", help="pretrain on a library's corpus (torchrun for several processes)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--library", help="library folder (reads LIBRARY/corpus.jsonl)")
    source.add_argument("--corpus", help="a corpus.jsonl file")
    p.add_argument("--out", required=True, help="output folder (checkpoint in OUT/last, log)")
    p.add_argument("--config", help="a training recipe (JSON of TrainConfig fields, e.g. "
                                    "configs/demo_stage1.json); the flags given override it")
    p.add_argument("--preset", choices=["tiny", "mini", "base", "paddle"], help="default mini")
    p.add_argument("--init", help="start from a save_pretrained directory (its action head keeps "
                   "its verb classes; narration verbs outside them get no target)")
    p.add_argument("--text-init", help="an HF-format BERT directory (config.json + model.safetensors "
                                       "or pytorch_model.bin) for the text stream, e.g. "
                                       "bert-base-uncased for --preset base (paper 4.1)")
    p.add_argument("--steps", type=int)
    p.add_argument("--max-seconds", type=float,
                   help="stop (and checkpoint) after this much training time")
    p.add_argument("--batch-size", type=int, help="global batch size")
    p.add_argument("--accumulate", type=int, help="gradient accumulation steps")
    p.add_argument("--lr", type=float, help="peak learning rate (paper: 1e-5)")
    p.add_argument("--warmup-steps", type=int)
    p.add_argument("--schedule", choices=["linear", "cosine", "constant"])
    p.add_argument("--clips-per-sample", type=int, help="K adjacent clips per sample (paper: 10)")
    p.add_argument("--hard-negatives", type=float,
                   help="share of matching negatives from the same task (default 0.5; 0: all random)")
    p.add_argument("--video-negatives", type=float,
                   help="share of matching negatives from the same video: its other steps "
                        "(default 0)")
    p.add_argument("--mined-negatives", action="store_true", default=None,
                   help="the matching head's negatives drawn from the batch by the alignment's "
                        "similarity (ALBEF's hard negatives) instead of the collator's")
    p.add_argument("--groups-per-video", type=int,
                   help="batches hold runs of N samples of one video, so the alignment loss "
                        "contrasts the steps of one recipe (default 1: a plain shuffle)")
    p.add_argument("--max-regions", type=int,
                   help="region limit per input, stored in the model's config (default 36)")
    p.add_argument("--max-text-tokens", type=int)
    p.add_argument("--match-on", choices=["clean", "masked"],
                   help="clean (default): the matching head judges unmasked pairs; masked: the "
                        "paper's masked pairs")
    p.add_argument("--match-weight", type=float, help="weight of the matching loss (default 1)")
    p.add_argument("--match-input", choices=["cls", "fused"],
                   help="what the matching head reads: cls (the paper, default for mini/base) or "
                        "fused (PaddleVideo's text * region + action); with --init it switches "
                        "the loaded model's input (the head keeps its weights)")
    p.add_argument("--match-alignment-weight", type=float,
                   help="the model's matching score: sigmoid(head margin + W x the cosine of the "
                        "pair's alignment embeddings), ALBEF's sum (default: the model's own, 0 "
                        "for a fresh one: the head alone); training reads the head's logits only")
    p.add_argument("--action-video-weight", type=float,
                   help="weight of the video-only action term: the action head on the video with "
                        "no text, against the narration verbs (default 0: off)")
    p.add_argument("--ignore-verbs", type=read_stoplist_arg,
                   help="verbs that are not actions (a file, e.g. configs/verb_stoplist.txt, or "
                        "a comma list): no target, and no class in the action head")
    p.add_argument("--step-list-share", type=float,
                   help="distant supervision (Lin et al. 2022): a row whose narration matches a "
                        "step of its task's list (the training videos' step descriptions, no "
                        "times) reads that description instead with this probability (default 0)")
    p.add_argument("--step-list-threshold", type=float,
                   help="the MiniLM cosine a narration needs to match a step (default 0.4)")
    p.add_argument("--freeze-text-layers", type=int,
                   help="keep the word embeddings and the first N text layers fixed")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"],
                   help="autocast dtype; auto: bf16 on GPUs and on CPUs with AMX-BF16, else fp32")
    p.add_argument("--checkpoint-every", type=int)
    p.add_argument("--keep-every", type=int,
                   help="also keep the model every N steps in OUT/step-N (to pick the step on val)")
    p.add_argument("--log-every", type=int)
    p.add_argument("--dropout", type=float, help="override every dropout probability")
    p.add_argument("--seed", type=int)
    p.add_argument("--no-regions", dest="use_regions", action="store_false", default=None,
                   help="the paper's ablation without region cues")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_train)


def train_config(args: argparse.Namespace) -> TrainConfig:
    """``actbert train``'s ``TrainConfig``: the fields' defaults, overridden by the recipe file
    (``--config``), overridden by the flags given."""
    corpus = args.corpus or str(Path(args.library) / "corpus.jsonl")
    known = {f.name for f in fields(TrainConfig)}
    options = read_recipe(args.config) if args.config else {}
    options.update({k: v for k, v in vars(args).items() if k in known and v is not None})
    options.update(corpus=corpus, progress=not args.json and sys.stderr.isatty())
    return TrainConfig(**options)


def run_train(args: argparse.Namespace) -> int:
    summary = train(train_config(args))
    summary.pop("history")
    print_result(summary, args.json)
    return 0
