"""The ``python -m actbert explain`` command: why one clip (or clip group) matches a query.

The clip is named as the corpus names it, ``VIDEO_ID:INDEX`` (``VIDEO_ID:I,J,K`` for a group of
clips), because ``actbert`` reads a library through its ``corpus.jsonl`` and ``library.json`` and
never through the indexer's catalog (catalog clip ids are the indexer's; ``indexer explain`` takes
those). Prints the occlusion effects and integrated gradients of every element
(``actbert.attribution``), the one-line "why", and the per layer x head faithfulness of the
attention (``actbert.faithfulness``); ``--curves`` adds the deletion and insertion curves.
``--compare [CHECKPOINT]`` explains the same pair with a second model too (default: the library's
``model_no_regions``; a model pretrained without regions is fed the clip without them, as search
feeds it) under ``"compare"``, and joins both models' effects element by element under ``"both"``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..attribution import Attribution, PairText, attribute, both_effects, region_names
from ..checkpoint import manifest_checkpoint, uses_regions
from ..corpus import read_corpus
from ..data import VideoFeatures, clip_inputs, remove_all_regions
from ..faithfulness import curves as deletion_curves
from ..faithfulness import faithfulness, mean_attention, pair_attentions, rollout_attention
from ..model import ActBertForPretraining
from ..tokenizer import ActBertTokenizer
from .output import print_result


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
                 class_names: list[str], curves: bool = False, steps: int = 16,
                 use_regions: bool = True) -> dict:
    """Attribution, faithfulness (and curves) of ``query`` against ``clips`` of ``features``, as
    one JSON-ready dict; the inputs are the clip contract's, with the model's region limit
    (``use_regions`` False: every region removed, ``remove_all_regions``)."""
    if not query.strip():
        raise ValueError("empty query: type what happens in the clip")
    if max(clips) >= features.num_clips:
        raise ValueError(f"{features.video_id} has {features.num_clips} clips, no clip {max(clips)}")
    inputs = clip_inputs(features, clips, model.config.max_regions)
    if not use_regions:
        inputs = remove_all_regions(inputs)
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


def run_explain(args: argparse.Namespace) -> int:
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
    second = None
    if args.compare is not None:
        second = args.compare or manifest_checkpoint(library, manifest, "model_no_regions")
        if not second:
            raise ValueError(f"{library / 'library.json'} names no 'model_no_regions': pass "
                             "--compare CHECKPOINT")
    features, tokenizer = VideoFeatures.load(found[0].features), ActBertTokenizer()

    def explained(folder) -> dict:
        model = ActBertForPretraining.from_pretrained(folder).eval()
        return {"checkpoint": str(folder), "uses_regions": uses_regions(folder),
                **explain_pair(model, tokenizer, features, clips, args.query,
                               list(corpus.region_classes), curves=args.curves, steps=args.steps,
                               use_regions=uses_regions(folder))}

    out = explained(checkpoint)
    if second is not None:
        other = explained(second)
        out["compare"] = {k: v for k, v in other.items() if k not in ("query", "video_id", "clips")}
        out["both"] = [row.to_json() for row in both_effects(Attribution.from_json(out),
                                                             Attribution.from_json(other))]
    print_result(out, args.json)
    return 0


def add_cli(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="why a clip matches a query: each element's effect on the "
                                       "matching score and the embedding similarity")
    p.add_argument("query")
    p.add_argument("--library", required=True, help="library folder (reads corpus.jsonl, library.json)")
    p.add_argument("--clip", required=True, help="VIDEO_ID:INDEX (a group: VIDEO_ID:I,J,K)")
    p.add_argument("--checkpoint", help="model directory (default: the library's model)")
    p.add_argument("--compare", nargs="?", const="", metavar="CHECKPOINT",
                   help="explain the pair with a second model too (default: the library's "
                        "model_no_regions) and join both models' effects")
    p.add_argument("--steps", type=int, default=16, help="integrated-gradients steps")
    p.add_argument("--curves", action="store_true", help="add deletion and insertion curves")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_explain)
