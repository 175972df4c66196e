"""Commands on the released PaddleVideo checkpoint (``actbert.paddle``): ``convert-paddle`` (its
``.pdparams`` -> a ``save_pretrained`` folder) and ``evaluate-msrvtt`` (zero-shot MSR-VTT 1k-A
retrieval as PaddleVideo runs it, ``actbert.paddle.parity``)."""

from __future__ import annotations

import argparse

import numpy as np
import torch

from ..benchmarks.msrvtt import load_msrvtt_test
from ..benchmarks.paper import RELEASED_CHECKPOINT_MSRVTT
from ..model import ActBertForPretraining
from ..paddle import parity
from ..paddle.convert import parse_heads
from ..tokenizer import ActBertTokenizer
from .output import print_result


def add_convert_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert-paddle", help="convert PaddleVideo's ActBERT .pdparams")
    p.add_argument("src", help="path to ActBERT.pdparams")
    p.add_argument("out_dir", help="output directory (config.json + model.safetensors)")
    p.add_argument("--heads", help="head counts if not the released ones, e.g. text=4,action=4,"
                                   "region=4,tangled=4")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_convert)


def run_convert(args: argparse.Namespace) -> int:
    model = ActBertForPretraining.from_paddle(args.src, heads=parse_heads(args.heads))
    model.save_pretrained(args.out_dir)
    print_result({"out_dir": args.out_dir, "config": model.config.name,
                  "parameters": sum(p.numel() for p in model.parameters()),
                  "text_layers": model.config.text.num_layers,
                  "action_classes": model.config.action.num_classes,
                  "region_classes": model.config.region.num_classes}, args.json)
    return 0


def _heads(text: str) -> dict[str, int]:
    try:
        return parse_heads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def add_msrvtt_cli(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate-msrvtt", help="zero-shot MSR-VTT 1k-A text-to-video retrieval (PaddleVideo protocol)",
        description=parity.__doc__)
    p.add_argument("--checkpoint", required=True, help="ActBERT.pdparams or a converted directory")
    p.add_argument("--features", required=True, help="PaddleVideo's msrvtt_test.lmdb")
    p.add_argument("--captions", required=True, help="MSRVTT_JSFUSION_test.csv")
    p.add_argument("--heads", type=_heads, default=None,
                   help="head counts of a non-released .pdparams, e.g. text=4,action=4,region=4,tangled=4")
    p.add_argument("--vocab", help="WordPiece vocab.txt (default: bert-base-uncased's, packaged)")
    p.add_argument("--batch-size", type=int, default=128, help="videos per forward pass")
    p.add_argument("--limit", type=int, help="only the first N captions, against their N videos")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--scores-out", help="save the (captions, videos) score matrix as .npy")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_evaluate_msrvtt)


def run_evaluate_msrvtt(args: argparse.Namespace) -> int:
    """Run the evaluation; print the figures (one JSON object with ``--json``)."""
    captions = load_msrvtt_test(args.captions)
    if args.limit is not None:
        if args.limit < 1:
            raise ValueError("--limit must be at least 1")
        captions = captions[:args.limit]
    model = parity.load_checkpoint(args.checkpoint, args.heads)
    tokenizer = ActBertTokenizer(args.vocab, max_length=parity.TEXT_LENGTH)
    with parity.PaddleFeatureStore(args.features) as store:
        result = parity.evaluate_msrvtt(model, tokenizer, captions, store, args.batch_size, args.device,
                                        progress=not args.no_progress)
    if args.scores_out:
        np.save(args.scores_out, result.scores)
    print_result({**result.metrics.as_dict(), "num_videos": len(result.video_ids),
                  "seconds": round(result.seconds, 3), "device": str(args.device),
                  "checkpoint": str(args.checkpoint), "reported_by_paper": RELEASED_CHECKPOINT_MSRVTT},
                 args.json)
    return 0
