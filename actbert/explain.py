"""The ``python -m actbert explain`` command: why one clip (or clip group) matches a query.

The clip is named as the corpus names it, ``VIDEO_ID:INDEX`` (``VIDEO_ID:I,J,K`` for a group of
clips), because ``actbert`` reads a library through its ``corpus.jsonl`` and ``library.json`` and
never through the indexer's catalog (catalog clip ids are the indexer's; ``indexer explain`` takes
those). Prints the occlusion effects and integrated gradients of every element
(``actbert.attribution``), the one-line "why", and the per layer x head faithfulness of the
attention (``actbert.faithfulness``); ``--curves`` adds the deletion and insertion curves.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def parse_clip(text: str) -> tuple[str, list[int]]:
    """``"v1:3"`` -> ("v1", [3]); ``"v1:3,4"`` -> ("v1", [3, 4])."""
    video, sep, indices = text.rpartition(":")
    try:
        clips = [int(i) for i in indices.split(",")]
    except ValueError:
        clips = []
    if not sep or not video or not clips or min(clips) < 0:
        raise ValueError(f"--clip must be VIDEO_ID:INDEX or VIDEO_ID:I,J,... , got {text!r}")
    return video, clips


def explain_pair(model, tokenizer, features, clips: list[int], query: str,
                 class_names: list[str], curves: bool = False, steps: int = 16) -> dict:
    """Attribution, faithfulness (and curves) of ``query`` against ``clips`` of ``features``, as
    one JSON-ready dict; the inputs are the clip contract's, with the model's region limit."""
    from .attribution import PairText, attribute, region_names
    from .data import clip_inputs
    from .faithfulness import curves as deletion_curves, faithfulness, mean_attention, \
        pair_attentions, rollout_attention

    if not query.strip():
        raise ValueError("empty query: type what happens in the clip")
    if max(clips) >= features.num_clips:
        raise ValueError(f"{features.video_id} has {features.num_clips} clips, no clip {max(clips)}")
    inputs = clip_inputs(features, clips, model.config.max_regions)
    text = PairText.encode(tokenizer, query)
    result = attribute(model, text, inputs, region_names(features, inputs, class_names), steps=steps)
    maps = pair_attentions(model, text, inputs)
    drop = -result.match_effect
    out = {"query": query, "video_id": features.video_id, "clips": clips, **result.to_json(),
           "faithfulness": faithfulness(maps, result.elements, drop, model.config.match_input).to_json()}
    if curves:
        rankings = {"attention": mean_attention(maps, result.elements), "rollout": rollout_attention(maps, result.elements,
                                                                   model.config.match_input),
                    "gradient": -result.match_gradient, "occlusion": drop}
        out["curves"] = {name: c.to_json() for name, c in deletion_curves(
            model, text, inputs, list(result.elements), rankings).items()}
    return out


def run(args: argparse.Namespace) -> dict:
    from .checkpoint import manifest_checkpoint
    from .corpus import read_corpus
    from .data import VideoFeatures
    from .model import ActBertForPretraining
    from .tokenizer import ActBertTokenizer

    library = Path(args.library)
    manifest = json.loads((library / "library.json").read_text())
    checkpoint = args.checkpoint or manifest_checkpoint(library, manifest, "model")
    if not checkpoint:
        raise ValueError(f"{library / 'library.json'} names no model; pass --checkpoint")
    corpus = read_corpus(library / "corpus.jsonl")
    video_id, clips = parse_clip(args.clip)
    found = [v for v in corpus.videos if v.video_id == video_id]
    if not found:
        raise ValueError(f"no video {video_id!r} in {library / 'corpus.jsonl'}")
    model = ActBertForPretraining.from_pretrained(checkpoint).eval()
    out = explain_pair(model, ActBertTokenizer(), VideoFeatures.load(found[0].features), clips,
                       args.query, list(corpus.region_classes), curves=args.curves, steps=args.steps)
    return {"checkpoint": str(checkpoint), **out}


def add_cli(sub) -> None:
    p = sub.add_parser("explain", help="why a clip matches a query: each element's effect on the "
                                       "matching score and the embedding similarity")
    p.add_argument("query")
    p.add_argument("--library", required=True, help="library folder (reads corpus.jsonl, library.json)")
    p.add_argument("--clip", required=True, help="VIDEO_ID:INDEX (a group: VIDEO_ID:I,J,K)")
    p.add_argument("--checkpoint", help="model directory (default: the library's model)")
    p.add_argument("--steps", type=int, default=16, help="integrated-gradients steps")
    p.add_argument("--curves", action="store_true", help="add deletion and insertion curves")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run)
