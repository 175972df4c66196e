"""Command line: ``python -m actbert {convert-paddle,demo,train,ship,evaluate,finetune,train-dual,evaluate-msrvtt,explain} ...``
(``--help`` on each).

Every command exits non-zero with a one-line reason on stderr when it fails, and its ``--help``
ends with an example. The commands live in this package, one module per subject:
``actbert.cli.model`` (demo, ship), ``actbert.cli.train`` (train), ``actbert.cli.evaluate``
(evaluate, evaluate-summary), ``actbert.cli.finetune`` (finetune, train-dual),
``actbert.cli.paddle`` (convert-paddle, evaluate-msrvtt) and ``actbert.cli.explain`` (explain);
``actbert.cli.sources`` holds the corpus and checkpoint options evaluate and finetune share.
"""

from __future__ import annotations

import argparse
import logging
import sys

from actbert.cli import evaluate, explain, finetune, model, paddle, train

EXAMPLES = {
    "convert-paddle": "actbert convert-paddle ActBERT.pdparams checkpoints/actbert-paddle",
    "demo": 'actbert demo --text "cut the tomato"',
    "train": "actbert train --library lib --config configs/demo_stage1.json --out runs/mini --steps 500",
    "ship": "actbert ship runs/mini/last assets/demo/actbert",
    "evaluate": "actbert evaluate --library lib --split test --json",
    "evaluate-summary": "actbert evaluate-summary assets/demo/eval_test.json",
    "finetune": "actbert finetune --library lib --task segmentation --out runs/ft/segmentation\n"
                "  actbert evaluate --library lib --split test --finetuned runs/ft/segmentation --json",
    "train-dual": "actbert train-dual --corpus lib/corpus.jsonl --out runs/dual --steps 400",
    "evaluate-msrvtt": "actbert evaluate-msrvtt --checkpoint ActBERT.pdparams --features msrvtt_test.lmdb "
                       "--captions MSRVTT_JSFUSION_test.csv --json",
    "explain": 'actbert explain --library lib --clip v001:3 "whisk the eggs" --json',
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="actbert", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true")
    subparsers = parser.add_subparsers(dest="command", required=True)
    paddle.add_convert_cli(subparsers)
    model.add_demo_cli(subparsers)
    train.add_cli(subparsers)
    model.add_ship_cli(subparsers)
    evaluate.add_cli(subparsers)
    evaluate.add_summary_cli(subparsers)
    finetune.add_cli(subparsers)
    finetune.add_dual_cli(subparsers)
    paddle.add_msrvtt_cli(subparsers)
    explain.add_cli(subparsers)
    for name, command in subparsers.choices.items():
        command.epilog = f"example:\n  {EXAMPLES[name]}"
        command.formatter_class = argparse.RawDescriptionHelpFormatter
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded by evaluate
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except (OSError, ValueError) as exc:  # bad input: a one-line reason
        print(f"error: {exc}".splitlines()[0], file=sys.stderr)
        return 1
