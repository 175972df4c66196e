"""The quick val diagnostic of run after run in lab/model_tries.md (#25): do a checkpoint's scores
tell the steps of one recipe apart?

On the val split's same-task pairs (``matching_pairs(same_task=True)``, the evaluation's: each clip
with its step description and another step of its own task), prints the ROC-AUC of

- ``head``: the matching head's margin (logit matched - logit mismatched); the evaluation's
  ``auc_same_task`` ranks by the softmax of the same logits, so the two agree but where the
  softmax saturates into ties;
- ``embeddings``: the cosine of the text-only and video-only alignment embeddings (the index's);
- ``pairwise``: the share of clips whose true description outscores the other by embeddings;
- ``joint_cosine``: the cosine of the alignment projections of the joint forward's pooled text and
  video (the pair seen together; no refit), and ``joint_sum``: the head's margin plus ``w`` times it;
- ``albef_sum``: the head's margin plus ``w`` times the cosine, for each ``w`` of a grid (ALBEF's
  retrieval rule adds the two scores): whether the two signals add up. A diagnostic, not a score
  the product serves.

No interval (the evaluation's command gives those once a recipe is chosen). Seconds per checkpoint.

    python lab/same_task.py --corpus LIB/corpus.jsonl RUN/last [RUN/step-200 ...]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from actbert import ActBertForPretraining
from actbert.corpus import read_corpus
from actbert.evaluation.heads import matching_pairs, roc_auc
from actbert.evaluation.scorer import ModelScorer
from actbert.evaluation.tasks import load_split
from actbert.tokenizer import ActBertTokenizer

WEIGHTS = (1.0, 3.0, 10.0, 30.0, 100.0)


@torch.inference_mode()
def head_margins(model, scorer: ModelScorer, pairs) -> tuple[np.ndarray, np.ndarray]:
    """The head's margin and the joint cosine (the alignment projections applied to the joint
    forward's pooled text and video: ViLBERT's h_text x h_video, no refit) of every pair."""
    margins, joint = {}, {}
    for text, group in scorer._by_text([t for t, _, _ in pairs], [c for _, c, _ in pairs]).items():
        enc = scorer.tok([text])
        out = model.match(model.text_state(enc.ids, enc.mask), score=False, **scorer.video_batch(group))
        logits = out.match_logits.float()
        cos = (model.align.embed_text(out.pooled["text"])
               * model.align.embed_video(out.pooled["action"], out.pooled["region"])).sum(-1).float()
        margins.update({(text, c): float(logits[k, 0] - logits[k, 1]) for k, c in enumerate(group)})
        joint.update({(text, c): float(cos[k]) for k, c in enumerate(group)})
    return (np.array([margins[(t, c)] for t, c, _ in pairs]),
            np.array([joint[(t, c)] for t, c, _ in pairs]))


def diagnose(checkpoint: str, val) -> dict:
    model = ActBertForPretraining.from_pretrained(checkpoint).eval()
    scorer = ModelScorer(model, ActBertTokenizer(), val, True, 64, "cpu")
    pairs = matching_pairs(val, 0, same_task=True)
    y = np.array([label for *_, label in pairs])
    head, joint = head_margins(model, scorer, pairs)
    cosine = scorer.cosine([t for t, _, _ in pairs], [c for _, c, _ in pairs])
    pairwise = float(np.mean(cosine[0::2] > cosine[1::2]))  # pairs come as (true, other) per clip
    return {"checkpoint": checkpoint, "pairs": len(pairs),
            "head": round(100 * roc_auc(head, y), 1),
            "embeddings": round(100 * roc_auc(cosine, y), 1),
            "pairwise": round(100 * pairwise, 1),
            "joint_cosine": round(100 * roc_auc(joint, y), 1),
            "albef_sum": {str(w): round(100 * roc_auc(head + w * cosine, y), 1) for w in WEIGHTS},
            "joint_sum": {str(w): round(100 * roc_auc(head + w * joint, y), 1) for w in WEIGHTS}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", required=True)
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    val = load_split(read_corpus(args.corpus), "val")
    for checkpoint in args.checkpoints:
        print(json.dumps(diagnose(checkpoint, val)), flush=True)


if __name__ == "__main__":
    main()
