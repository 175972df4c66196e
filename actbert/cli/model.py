"""Commands on the model itself: ``demo`` (a smoke test of a preset or checkpoint) and ``ship``
(the compact copy of a trained model that ``assets/`` ships, ``checkpoint.save_delta``)."""

from __future__ import annotations

import argparse
import hashlib
import shutil
from pathlib import Path

import torch

from ..checkpoint import save_delta
from ..embeddings import add_global_region
from ..model import ActBertForPretraining, build_model
from ..pretraining.curves import run_files
from ..tokenizer import ActBertTokenizer
from .output import print_result


def add_demo_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="encode a sentence and a random clip; print the scores")
    p.add_argument("--text", default="cut the tomato on the cutting board")
    p.add_argument("--preset", default="mini", choices=["tiny", "mini", "base", "paddle"])
    p.add_argument("--checkpoint", help="a save_pretrained directory instead of a fresh preset")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_demo)


def add_ship_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ship", help="write the compact float16 copy of a mini checkpoint that "
                                    "assets/ ships (only what differs from the packaged MiniLM)")
    p.add_argument("checkpoint", help="a save_pretrained directory (e.g. RUN/last)")
    p.add_argument("out_dir")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_ship)


def run_demo(args: argparse.Namespace) -> int:
    """Encode a sentence and a clip of RANDOM features and print their scores: a smoke test of the
    model, not a meaningful retrieval (the features are noise)."""
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
    print_result({"text": args.text, "tokens": enc.tokens[0], "preset": cfg.name,
                  "features": "random (smoke test)",
                  "match_score": round(float(out.match_score[0]), 6),
                  "cosine": round(float((text_vec @ video_vec.t())[0, 0]), 6),
                  "embed_size": int(text_vec.shape[-1])}, args.json)
    return 0


def run_ship(args: argparse.Namespace) -> int:
    """A trained ``mini`` checkpoint -> the compact copy shipped in assets/ (``save_delta``), with
    the run's training record (train.jsonl, train_config.json, loss_curve.png: found beside the
    checkpoint or in its run folder, ``curves.run_files``), so a shipped model carries its curves."""
    model = ActBertForPretraining.from_pretrained(args.checkpoint)
    counts = save_delta(model, args.out_dir)
    out = Path(args.out_dir)
    copied = []
    for name, source in run_files(args.checkpoint).items():
        if source.resolve() != (out / name).resolve():
            shutil.copyfile(source, out / name)
        copied.append(name)
    weights = out / "model.safetensors"
    print_result({"out_dir": args.out_dir, **counts, "bytes": weights.stat().st_size,
                  "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(), "run_files": copied},
                 args.json)
    return 0
