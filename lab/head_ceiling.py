"""How far can a matching head on a checkpoint's frozen features go on same-task pairs? (#25)

The model's own head, the joint cosine, and linear heads (L2-regularised logistic regression,
fitted here) refitted on the frozen fused features of one forward pass, each fitted on one of:

- ``narrations``: train clips with their own narration (1), another clip's narration from the same
  video (0) and from another video (0): what pretraining sees;
- ``steps``: train clips with their step description against another step of the same task (the
  evaluation's pairs, on train): a bound, since pretraining never sees the descriptions.

Each is scored on the val split's same-task pairs (``matching_pairs(same_task=True)``, the
evaluation's). A head that fits its train pairs but stays near the model's val figure says the head
over-fits what it was given; one that reaches the target on ``steps`` only says the narrations are
the limit. Prints one JSON object.

    python lab/head_ceiling.py --corpus LIB/corpus.jsonl --checkpoint RUN/last
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


def narration_pairs(split, seed: int = 0) -> list[tuple[str, int, int]]:
    """(narration, clip, label): each narrated clip's own narration, one from its video, one from another."""
    rng = np.random.default_rng(seed)
    narrated = [i for i, c in enumerate(split.clips) if c.narration and getattr(c, "narrated", True)]
    by_video: dict[int, list[int]] = {}
    for i in narrated:
        by_video.setdefault(split.clips[i].video, []).append(i)
    pairs = []
    for i in narrated:
        clip = split.clips[i]
        pairs.append((clip.narration, i, 1))
        same = [j for j in by_video[clip.video] if split.clips[j].narration != clip.narration]
        if same:
            pairs.append((split.clips[int(rng.choice(same))].narration, i, 0))
        other = [j for j in narrated if split.clips[j].video != clip.video]
        pairs.append((split.clips[int(rng.choice(other))].narration, i, 0))
    return pairs


@torch.inference_mode()
def features(model, split, pairs) -> dict[str, np.ndarray]:
    """Per pair: the pooled text ([CLS]) vector, the product of the alignment embeddings, the
    model's head margin and the joint cosine."""
    scorer = ModelScorer(model, ActBertTokenizer(), split, True, 64, "cpu")
    rows = {}
    for text, group in scorer._by_text([t for t, _, _ in pairs], [c for _, c, _ in pairs]).items():
        enc = scorer.tok([text])
        out = model.match(model.text_state(enc.ids, enc.mask), **scorer.video_batch(group))
        pooled = out.pooled
        prod = model.align.embed_text(pooled["text"]) * model.align.embed_video(pooled["action"], pooled["region"])
        for k, clip in enumerate(group):
            rows[(text, clip)] = (pooled["text"][k].numpy(), prod[k].numpy(),
                                  float(out.match_logits[k, 0] - out.match_logits[k, 1]), float(prod[k].sum()))
    table = [rows[(t, c)] for t, c, _ in pairs]
    return {"cls": np.stack([r[0] for r in table]), "prod": np.stack([r[1] for r in table]),
            "head": np.array([r[2] for r in table]), "cosine": np.array([r[3] for r in table]),
            "y": np.array([y for *_, y in pairs])}


def fit_logistic(x: np.ndarray, y: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression by L-BFGS (weights, bias) on standardised ``x``."""
    xt, yt = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(xt @ w + b, yt) + \
            0.5 / (c * len(y)) * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy(), float(b.detach())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    corpus = read_corpus(args.corpus)
    model = ActBertForPretraining.from_pretrained(args.checkpoint).eval()
    train, val = load_split(corpus, "train"), load_split(corpus, "val")
    target = features(model, val, matching_pairs(val, 0, same_task=True))
    out = {"checkpoint": args.checkpoint, "val_pairs": len(target["y"]),
           "model_head_val": round(100 * roc_auc(target["head"], target["y"]), 1),
           "joint_cosine_val": round(100 * roc_auc(target["cosine"], target["y"]), 1), "refits": []}
    for fitted_on, pairs in (("narrations", narration_pairs(train)),
                             ("steps", matching_pairs(train, 0, same_task=True))):
        source = features(model, train, pairs)
        for name in ("cls", "prod"):
            mean, scale = source[name].mean(0), source[name].std(0) + 1e-6
            for c in (0.01, 0.1, 1.0):
                w, b = fit_logistic((source[name] - mean) / scale, source["y"], c)
                score = lambda x: ((x - mean) / scale) @ w + b  # noqa: E731
                out["refits"].append({"fitted_on": fitted_on, "features": name, "C": c,
                                      "train_pairs": len(source["y"]),
                                      "train": round(100 * roc_auc(score(source[name]), source["y"]), 1),
                                      "val_same_task": round(100 * roc_auc(score(target[name]), target["y"]), 1)})
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
