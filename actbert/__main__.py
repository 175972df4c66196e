"""Command line: ``python -m actbert {convert-paddle,demo,train,ship,evaluate,finetune,train-dual,evaluate-msrvtt,explain} ...``
(``--help`` on each)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import torch


def convert_paddle(args: argparse.Namespace) -> dict:
    from .model import ActBertForPretraining
    from .paddle import parse_heads

    model = ActBertForPretraining.from_paddle(args.src, heads=parse_heads(args.heads))
    model.save_pretrained(args.out_dir)
    return {"out_dir": args.out_dir, "config": model.config.name,
            "parameters": sum(p.numel() for p in model.parameters()),
            "text_layers": model.config.text.num_layers, "action_classes": model.config.action.num_classes,
            "region_classes": model.config.region.num_classes}


def demo(args: argparse.Namespace) -> dict:
    """Encode a sentence and a clip of RANDOM features and print their scores: a smoke test of the
    model, not a meaningful retrieval (the features are noise)."""
    from .embeddings import add_global_region
    from .model import ActBertForPretraining, build_model
    from .tokenizer import ActBertTokenizer

    torch.manual_seed(args.seed)
    if args.checkpoint:
        model = ActBertForPretraining.from_pretrained(args.checkpoint)
    else:
        model = build_model(args.preset)
    model.eval()
    cfg = model.config
    tok = ActBertTokenizer()
    enc = tok(args.text)
    action = torch.randn(1, 4, cfg.action.feature_size).abs()
    regions, locations, region_mask = add_global_region(
        torch.randn(1, 10, cfg.region.feature_size).abs(), torch.rand(1, 10, 5),
        torch.ones(1, 10, dtype=torch.long))
    with torch.no_grad():
        out = model(text_ids=enc.ids, text_mask=enc.mask, action_features=action,
                    action_mask=torch.ones(1, 4, dtype=torch.long), region_features=regions,
                    region_locations=locations, region_mask=region_mask)
        text_vec = model.encode_text(enc.ids, enc.mask)
        video_vec = model.encode_video(action, torch.ones(1, 4, dtype=torch.long), regions,
                                       locations, region_mask, cls_id=tok.cls_id, sep_id=tok.sep_id)
    return {"text": args.text, "tokens": enc.tokens[0], "preset": cfg.name,
            "features": "random (smoke test)",
            "match_score": round(float(out.match_score[0]), 6),
            "cosine": round(float((text_vec @ video_vec.t())[0, 0]), 6),
            "embed_size": int(text_vec.shape[-1])}


def train_config(args: argparse.Namespace):
    """``actbert train``'s ``TrainConfig``: the fields' defaults, overridden by the recipe file
    (``--config``), overridden by the flags given."""
    from dataclasses import fields

    from .pretraining.recipe import read_recipe
    from .pretraining.train import TrainConfig

    corpus = args.corpus or str(Path(args.library) / "corpus.jsonl")
    known = {f.name for f in fields(TrainConfig)}
    options = read_recipe(args.config) if args.config else {}
    options.update({k: v for k, v in vars(args).items() if k in known and v is not None})
    options.update(corpus=corpus, progress=not args.json and sys.stderr.isatty())
    return TrainConfig(**options)


def train_command(args: argparse.Namespace) -> dict:
    from .pretraining.train import train

    summary = train(train_config(args))
    summary.pop("history")
    return summary


def ship(args: argparse.Namespace) -> dict:
    """A trained ``mini`` checkpoint -> the compact copy shipped in assets/ (``save_delta``), with
    the run's training record (train.jsonl, train_config.json, loss_curve.png: found beside the
    checkpoint or in its run folder, ``curves.run_files``), so a shipped model carries its curves."""
    import hashlib
    import shutil

    from .checkpoint import save_delta
    from .model import ActBertForPretraining
    from .pretraining.curves import run_files

    model = ActBertForPretraining.from_pretrained(args.checkpoint)
    counts = save_delta(model, args.out_dir)
    out = Path(args.out_dir)
    copied = []
    for name, source in run_files(args.checkpoint).items():
        if source.resolve() != (out / name).resolve():
            shutil.copyfile(source, out / name)
        copied.append(name)
    weights = out / "model.safetensors"
    return {"out_dir": args.out_dir, **counts, "bytes": weights.stat().st_size,
            "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(), "run_files": copied}


EXAMPLES = {  # shown at the end of each command's --help
    "convert-paddle": "actbert convert-paddle ActBERT.pdparams checkpoints/actbert-paddle",
    "demo": 'actbert demo --text "cut the tomato"',
    "train": "actbert train --library lib --config configs/demo_stage1.json --out runs/mini --steps 500",
    "ship": "actbert ship runs/mini/last assets/demo/actbert",
    "evaluate": "actbert evaluate --library lib --split test --json",
    "explain": 'actbert explain --library lib --clip v001:3 "whisk the eggs" --json',
    "evaluate-msrvtt": "actbert evaluate-msrvtt --checkpoint ActBERT.pdparams --features msrvtt_test.lmdb "
                       "--captions MSRVTT_JSFUSION_test.csv --json",
}


def _add_convert_paddle(sub) -> None:
    p = sub.add_parser("convert-paddle", help="convert PaddleVideo's ActBERT .pdparams")
    p.add_argument("src", help="path to ActBERT.pdparams")
    p.add_argument("out_dir", help="output directory (config.json + model.safetensors)")
    p.add_argument("--heads", help="head counts if not the released ones, e.g. text=4,action=4,"
                                   "region=4,tangled=4")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=convert_paddle)


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="encode a sentence and a random clip; print the scores")
    p.add_argument("--text", default="cut the tomato on the cutting board")
    p.add_argument("--preset", default="mini", choices=["tiny", "mini", "base", "paddle"])
    p.add_argument("--checkpoint", help="a save_pretrained directory instead of a fresh preset")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=demo)


def read_stoplist_arg(spec: str) -> tuple[str, ...]:
    from .pretraining.verbs import read_stoplist

    try:
        return read_stoplist(spec)
    except OSError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _add_train(sub) -> None:
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
    p.add_argument("--action-video-weight", type=float,
                   help="weight of the video-only action term: the action head on the video with "
                        "no text, against the narration verbs (default 0: off)")
    p.add_argument("--ignore-verbs", type=read_stoplist_arg,
                   help="verbs that are not actions (a file, e.g. configs/verb_stoplist.txt, or "
                        "a comma list): no target, and no class in the action head")
    p.add_argument("--freeze-text-layers", type=int,
                   help="keep the word embeddings and the first N text layers fixed")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--checkpoint-every", type=int)
    p.add_argument("--keep-every", type=int,
                   help="also keep the model every N steps in OUT/step-N (to pick the step on val)")
    p.add_argument("--log-every", type=int)
    p.add_argument("--dropout", type=float, help="override every dropout probability")
    p.add_argument("--seed", type=int)
    p.add_argument("--no-regions", dest="use_regions", action="store_false", default=None,
                   help="the paper's ablation without region cues")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=train_command)


def _add_ship(sub) -> None:
    p = sub.add_parser("ship", help="write the compact float16 copy of a mini checkpoint that "
                                    "assets/ ships (only what differs from the packaged MiniLM)")
    p.add_argument("checkpoint", help="a save_pretrained directory (e.g. RUN/last)")
    p.add_argument("out_dir")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=ship)


def build_parser() -> argparse.ArgumentParser:
    """Every command's parser (evaluation's commands registered by their own modules), each
    ``--help`` ending with its ``EXAMPLES`` line."""
    parser = argparse.ArgumentParser(prog="actbert", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_convert_paddle(sub)
    _add_demo(sub)
    _add_train(sub)
    _add_ship(sub)

    from .evaluation.cli import add_cli as add_evaluate_cli
    from .evaluation.dual_training import add_cli as add_dual_cli
    from .evaluation.finetune import add_cli as add_finetune_cli
    from .evaluation.msrvtt import add_cli as add_msrvtt_cli
    from .explain import add_cli as add_explain_cli

    add_evaluate_cli(sub)
    add_finetune_cli(sub)
    add_dual_cli(sub)
    add_msrvtt_cli(sub)
    add_explain_cli(sub)
    for name, command in sub.choices.items():
        if name in EXAMPLES:
            command.epilog = f"example:\n  {EXAMPLES[name]}"
            command.formatter_class = argparse.RawDescriptionHelpFormatter
    return parser


def _print_result(result: dict, as_json: bool) -> None:
    """A command's result: one JSON line, or ``key: value`` lines."""
    if as_json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded by evaluate
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        result = args.run(args)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}".splitlines()[0], file=sys.stderr)
        return 1
    if isinstance(result, int):  # commands that print their own output
        return result
    _print_result(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
