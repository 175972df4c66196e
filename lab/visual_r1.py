"""Where visual-only R@1 is lost (#25's one missed line): what each system ranks first.

The visual-only queries are step descriptions whose step no aligned narration line describes.
SynthKitchen's descriptions repeat across videos of a task ("toss the salad" in every salad video),
so the queries sharing a text share one ranking and its first clip is the target of at most one of
them: the R@1 ceiling is the number of distinct texts whose first clip *can* be a target. For each
system this prints, over the visual-only queries, what the first clip is:

- ``hit``: the query's own target;
- ``same_video``: another clip of the query's video;
- ``same_step``: a clip of another video that overlaps a step with the query's description (the
  step recognised, the instance not: a narrated instance's clip, or another query's target);
- ``other_step``: a clip of another video that overlaps no step with that description;

plus ``ceiling`` (distinct texts among the visual-only queries), ``step_perfect_expected_hits``
(what a ranker that always puts a clip of the right step first, in random order among the clips
overlapping a step with that text, scores in expectation: the sum over the visual-only queries of
1 / those clips), ``target_coverage`` (the mean share of a target clip's time its step covers,
visual-only vs narrated queries: the gallery is the narrated clips, so an unnarrated step's
target is a clip narrated about a neighbouring step), ``target_action_frames_in_step`` (of the
frames the action CNN reads for a target clip, with ``--preset``'s sampling (``--action-sampling``), the mean share inside
the query's step and the share of targets with none inside it) and, per system, how many first
clips are the target of *some* query with the same text (narrated or not): what the ranking would
score were the texts unique per step.

    python lab/visual_r1.py --corpus LIB/corpus.jsonl --split val CHECKPOINT [CHECKPOINT ...]
    python lab/visual_r1.py --corpus LIB/corpus.jsonl --no-regions ABLATION [...]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter

import numpy as np
import torch

from actbert import ActBertForPretraining
from actbert.corpus import read_corpus
from actbert.evaluation.baselines import Bm25Scorer
from actbert.evaluation.scorer import ModelScorer
from actbert.evaluation.tasks import load_split, retrieval_outcomes, retrieval_queries, score_grid
from actbert.tokenizer import ActBertTokenizer
from indexer.features.actions import PRESETS
from indexer.features.sampling import SAMPLINGS, action_times


def recalls(grid: np.ndarray, queries, rows: list[int]) -> dict:
    """R@1 over all queries, R@1 and R@5 over ``rows`` (percent)."""
    ranks = retrieval_outcomes(grid, [q.target for q in queries])
    return {"r1_all": round(100 * float((ranks < 1).mean()), 1),
            "r1_visual": round(100 * float((ranks[rows] < 1).mean()), 1),
            "r5_visual": round(100 * float((ranks[rows] < 5).mean()), 1)}


def overlapping_clips(split) -> Counter:
    """How many clips of the split overlap a step with each description."""
    overlapping: Counter = Counter()
    for clip in range(len(split.clips)):
        for text in {s["description"] for s in split.clip_steps(clip)}:
            overlapping[text] += 1
    return overlapping


def first_clip_kinds(grid: np.ndarray, split, queries, rows: list[int], overlapping: Counter) -> dict:
    """What the first clip of each row's ranking is (see the module docstring), the recalls, and
    ``lottery_expected_hits``: the hits expected were the first clip of each row whose first clip
    is of the right step drawn uniformly among the clips of that step (set beside ``hit``, it says
    whether the system's choice of instance is better or worse than a draw). ``overlapping``:
    ``overlapping_clips(split)``."""
    expected = 0.0
    targets_of: dict[str, set[int]] = {}
    for q in queries:
        targets_of.setdefault(q.description, set()).add(q.target)
    kinds: Counter = Counter()
    for i in rows:
        q = queries[i]
        first = int(np.argmax(grid[i]))
        right_step = any(s["description"] == q.description for s in split.clip_steps(first))
        if right_step:
            expected += 1.0 / overlapping[q.description]
        if first == q.target:
            kinds["hit"] += 1
        elif split.clips[first].video == q.video:
            kinds["same_video"] += 1
        elif right_step:
            kinds["same_step"] += 1
        else:
            kinds["other_step"] += 1
        kinds["first_is_a_target_of_its_text"] += first in targets_of[q.description]
    return {**recalls(grid, queries, rows),
            **{k: kinds[k] for k in ("hit", "same_video", "same_step", "other_step",
                                     "first_is_a_target_of_its_text")},
            "lottery_expected_hits": round(expected, 1)}


def step_perfect_expected_hits(queries, rows: list[int], overlapping: Counter) -> float:
    """Expected visual-only R@1 hits of a ranker that always ranks first a clip overlapping a step
    with the query's text, drawn uniformly among those clips (the module docstring)."""
    return sum(1.0 / max(1, overlapping[queries[i].description]) for i in rows)


def target_coverage(split, queries, rows: list[int]) -> float:
    """Mean share of the target clip's time that its query's step covers."""
    def covered(q) -> float:
        clip = split.clips[q.target]
        inside = min(clip.end_sec, q.end_sec) - max(clip.start_sec, q.start_sec)
        return max(0.0, inside) / (clip.end_sec - clip.start_sec)
    return float(np.mean([covered(queries[i]) for i in rows])) if rows else float("nan")


def action_frames_in_step(split, queries, rows: list[int], preset: str, sampling: str = "centre") -> dict:
    """Of the frames the action CNN reads for each target clip (the ingest preset's frames, taken
    as ``sampling`` says), the mean share inside the query's step, and the share of targets with
    none inside it."""
    frames, fps = PRESETS[preset]["frames"], PRESETS[preset]["fps"]
    shares = []
    for i in rows:
        q, clip = queries[i], split.clips[queries[i].target]
        times = action_times(clip.start_sec, clip.end_sec, frames, fps, sampling)
        shares.append(float(np.mean((times >= q.start_sec) & (times <= q.end_sec))))
    shares_arr = np.array(shares)
    return {"mean": round(float(shares_arr.mean()), 2), "none": round(float((shares_arr == 0).mean()), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--split", default="val")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="fast",
                        help="the ingest preset of the library (its action frame sampling)")
    parser.add_argument("--action-sampling", choices=SAMPLINGS, default="centre",
                        help="the library's ingest --action-sampling")
    parser.add_argument("--no-regions", action="store_true",
                        help="the checkpoints are no-region ablations: score them without regions")
    parser.add_argument("checkpoints", nargs="*")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    split = load_split(read_corpus(args.corpus), args.split)
    queries = retrieval_queries(split)
    texts = [q.description for q in queries]
    clips = list(range(len(split.clips)))
    visual = [i for i, q in enumerate(queries) if q.narrated is False]
    narrated = [i for i, q in enumerate(queries) if q.narrated]
    overlapping = overlapping_clips(split)
    out = {"split": args.split, "queries": len(queries), "visual_only": len(visual),
           "ceiling_distinct_texts": len({texts[i] for i in visual}),
           "step_perfect_expected_hits": round(step_perfect_expected_hits(queries, visual, overlapping), 1),
           "target_coverage": {
               "visual_only": round(target_coverage(split, queries, visual), 2),
               "narrated": round(target_coverage(split, queries, narrated), 2)},
           "target_action_frames_in_step": {
               "visual_only": action_frames_in_step(split, queries, visual, args.preset, args.action_sampling),
               "narrated": action_frames_in_step(split, queries, narrated, args.preset, args.action_sampling)},
           "systems": {"bm25": first_clip_kinds(score_grid(Bm25Scorer(split.narrations), texts, clips),
                                                split, queries, visual, overlapping)}}
    for path in args.checkpoints:
        model = ActBertForPretraining.from_pretrained(path).eval()
        scorer = ModelScorer(model, ActBertTokenizer(), split, not args.no_regions, 64, "cpu")
        with torch.inference_mode():
            grid = score_grid(scorer.cosine, texts, clips)
        out["systems"][path] = first_clip_kinds(grid, split, queries, visual, overlapping)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
