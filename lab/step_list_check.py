"""How good are the distant labels of ``--step-list-share`` (actbert/pretraining/step_list.py)?

For each threshold, over the narrated clips of a split: the share that gets a step text, and of
those the share whose step text is the description of a ground-truth step overlapping the clip
(``overlap``) or of the step overlapping it most (``best``). The ground truth is read here only to
measure the labels; training never reads it beyond the tasks' step lists.

    python lab/step_list_check.py --corpus LIB/corpus.jsonl [--split train]
"""

from __future__ import annotations

import argparse
import json

from actbert.corpus import read_corpus
from actbert.sentence_encoder import MiniLMEncoder
from actbert.evaluation.tasks import load_split
from actbert.pretraining.step_list import step_texts, task_step_lists


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--split", default="train")
    parser.add_argument("--thresholds", default="0.3,0.4,0.5,0.6")
    args = parser.parse_args()
    split = load_split(read_corpus(args.corpus), args.split)
    corpus = split.corpus
    lists = task_step_lists(corpus)
    encoder = MiniLMEncoder()
    by_clip = {(c.video, c.index): k for k, c in enumerate(split.clips)}
    rows = []
    for threshold in map(float, args.thresholds.split(",")):
        texts = step_texts(corpus, lists, encoder.encode, threshold)
        overlap = best = 0
        for key, text in texts.items():
            steps = [s["description"] for s in split.clip_steps(by_clip[key])]
            overlap += text in steps
            best += bool(steps) and steps[0] == text
        n = len(texts)
        rows.append({"threshold": threshold, "clips": len(split.clips), "labelled": n,
                     "labelled_share": round(100 * n / len(split.clips), 1),
                     "overlap": round(100 * overlap / max(n, 1), 1), "best": round(100 * best / max(n, 1), 1)})
    print(json.dumps({"tasks": len(lists), "steps": sum(map(len, lists.values())), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
