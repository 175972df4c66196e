"""The pretraining heads on held-out clips: does the matching head tell a clip's own step from
another step, and does the action head name the verb of a masked clip?

- ``matching_pairs``: for every clip that overlaps a ground-truth step, one matched pair (the
  description of the step overlapping it most) and one mismatched pair: the description of a step
  of the same split whose ground-truth verb or objects differ (objects: the step's ``objects``
  when the corpus has them, else its description), drawn with the seed. ``same_task=True`` draws
  the mismatched step from the clip's own task when one exists (the harder case: the same recipe,
  another step). ROC-AUC of any pair scorer over these pairs (``roc_auc``: Mann-Whitney, ties
  count one half).
- ``masked_action``: the action head's top-1 verb for each clip whose step verb is in the model's
  verb vocabulary, with the clip's action feature masked (zeroed, as pretraining masks it) and the
  clip's narration as the text: the paper's masked action classification on clips nobody trained
  on; ``top1_video_only`` is the same head with the feature visible and the text ``[CLS] [SEP]``
  (what the explorer's Clip page shows). The majority class is the most frequent true verb.
  The answer is the argmax over the task's label space: the verbs that are some labelled clip's
  step verb (closed-set classification). The head's vocabulary is the narrations' verbs, where
  words of the talk around a step ("add", "put", "make", "find") outnumber the step verbs, so
  its argmax over every verb would mostly name no step at all.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..data import collate, drop_regions
from .tasks import SplitClips


def roc_auc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """Area under the ROC curve (labels 1 = positive): the probability that a random positive
    scores above a random negative, ties counting one half (the Mann-Whitney U statistic)."""
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels, np.int64)
    pos, neg = scores[labels == 1], scores[labels == 0]
    if not len(pos) or not len(neg):
        raise ValueError("ROC-AUC needs at least one positive and one negative")
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores), np.float64)
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):  # average ranks over ties
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = 0.5 * (i + j) + 1
        i = j + 1
    u = ranks[labels == 1].sum() - len(pos) * (len(pos) + 1) / 2
    return float(u / (len(pos) * len(neg)))


def _identity(step: dict) -> tuple:
    """What makes two steps different for the matching test: verb and objects."""
    objects = step.get("objects")
    return (step.get("verb"), tuple(objects) if objects else str(step["description"]))


def matching_pairs(split: SplitClips, seed: int, same_task: bool = False) -> list[tuple[str, int, int]]:
    """[(text, clip, label)] with label 1 = matched, 0 = mismatched (module docstring)."""
    steps = [(vi, s) for vi, v in enumerate(split.corpus.videos) for s in v.steps]
    rng = np.random.default_rng([seed, 13, int(same_task)])
    pairs = []
    for clip in range(len(split.clips)):
        overlapping = split.clip_steps(clip)
        if not overlapping:
            continue
        true = overlapping[0]
        seen = {_identity(s) for s in overlapping}
        task = split.corpus.videos[split.clips[clip].video].task
        pool = [s for _, s in steps if _identity(s) not in seen
                and str(s["description"]) != str(true["description"])]
        if same_task:
            own = [s for vi, s in steps if split.corpus.videos[vi].task == task
                   and _identity(s) not in seen and str(s["description"]) != str(true["description"])]
            pool = own or pool
        if not pool:
            continue
        wrong = pool[int(rng.integers(len(pool)))]
        pairs += [(str(true["description"]), clip, 1), (str(wrong["description"]), clip, 0)]
    return pairs


def matching_auc(score_pairs, pairs: list[tuple[str, int, int]]) -> float:
    """ROC-AUC (percent) of a pair scorer over ``matching_pairs``."""
    scores = score_pairs([t for t, _, _ in pairs], [c for _, c, _ in pairs])
    return 100.0 * roc_auc(scores, [y for _, _, y in pairs])


def verb_clips(split: SplitClips, verbs: Sequence[str]) -> list[tuple[int, int]]:
    """[(clip, verb index)] for every clip whose most-overlapping step's verb is in ``verbs``."""
    index = {v: i for i, v in enumerate(verbs)}
    out = []
    for clip in range(len(split.clips)):
        steps = split.clip_steps(clip)
        if steps and steps[0].get("verb") in index:
            out.append((clip, index[steps[0]["verb"]]))
    return out


@torch.inference_mode()
def action_predictions(model, tokenizer, split: SplitClips, clips: Sequence[int], masked: bool,
                       use_regions: bool = True, batch_size: int = 64,
                       label_space: Sequence[int] | None = None) -> np.ndarray:
    """(N,) argmax of the action head at each clip's action slot (one clip per input, by the clip
    contract), over the verb indices ``label_space`` (default: every verb). ``masked``: the
    feature is zeroed and the text is the clip's narration; otherwise the feature is visible and
    the text is ``[CLS] [SEP]``."""
    space = None if label_space is None else torch.as_tensor(list(label_space), dtype=torch.long)
    out = []
    for start in range(0, len(clips), batch_size):
        chunk = list(clips[start:start + batch_size])
        video = collate([split.inputs(c, model.config.max_regions) for c in chunk])
        video.pop("region_classes")
        if not use_regions:
            video = drop_regions(video)
        if masked:
            video["action_features"] = torch.zeros_like(video["action_features"])
            enc = tokenizer([split.clips[c].narration or "" for c in chunk])
            text = {"text_ids": enc.ids, "text_mask": enc.mask}
        else:
            ids = torch.tensor([[tokenizer.cls_id, tokenizer.sep_id]]).expand(len(chunk), 2)
            text = {"text_ids": ids, "text_mask": torch.ones_like(ids)}
        logits = model(**text, **video, heads=("action",)).action_logits[:, 0].float().cpu()
        best = logits.argmax(-1) if space is None else space[logits[:, space].argmax(-1)]
        out.append(best.numpy())
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def masked_action_outcomes(model, tokenizer, split: SplitClips, verbs: Sequence[str],
                           use_regions: bool = True, batch_size: int = 64
                           ) -> tuple[np.ndarray, int, dict[str, np.ndarray]]:
    """Per labelled clip (``verb_clips``): the true verb index (N,), the majority verb index, and
    whether the head's top-1 is right, masked and video-only (``{"top1_masked": (N,) bool, ...}``)."""
    labelled = verb_clips(split, verbs)
    if not labelled:
        raise ValueError(f"split {split.name!r}: no clip's step verb is in the model's verb vocabulary")
    clips, truth = [c for c, _ in labelled], np.array([v for _, v in labelled])
    space = np.unique(truth)
    correct = {f"top1_{name}": action_predictions(model, tokenizer, split, clips, masked, use_regions,
                                                  batch_size, space) == truth
               for name, masked in (("masked", True), ("video_only", False))}
    return truth, int(np.bincount(truth).argmax()), correct


def masked_action(model, tokenizer, split: SplitClips, verbs: Sequence[str],
                  use_regions: bool = True) -> dict[str, float]:
    """Top-1 accuracy (percent) of the action head, masked and video-only, with the majority
    class beside it (module docstring)."""
    truth, majority, correct = masked_action_outcomes(model, tokenizer, split, verbs, use_regions)
    return {**{k: 100.0 * float(v.mean()) for k, v in correct.items()},
            "majority": 100.0 * float((truth == majority).mean()), "clips": len(truth)}
