"""The held-out checks of the pretraining heads: ROC-AUC against a naive pairwise count, the
mismatched pairs' ground truth, and the masked action top-1 against a direct forward."""

import dataclasses
import itertools

import numpy as np
import pytest
import torch

from actbert.corpus import ClipGroups, read_corpus
from actbert.data import collate
from actbert.evaluation.heads import matching_pairs, masked_action, roc_auc, verb_clips
from actbert.evaluation.tasks import load_split
from actbert.pretraining.train import TrainConfig, model_for_corpus
from actbert.tokenizer import ActBertTokenizer
from tests.actbert.corpus_helpers import make_eval_corpus


def naive_auc(scores, labels):
    pos = [s for s, y in zip(scores, labels) if y == 1]
    neg = [s for s, y in zip(scores, labels) if y == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_roc_auc_against_a_naive_pairwise_count():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(2, 30))
        scores = rng.integers(0, 5, n).astype(float)  # many ties
        labels = rng.integers(0, 2, n)
        labels[:2] = [0, 1]
        assert roc_auc(scores, labels) == pytest.approx(naive_auc(scores, labels))
    assert roc_auc([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0]) == 1.0
    assert roc_auc([0.1, 0.2, 0.9], [1, 1, 0]) == 0.0
    with pytest.raises(ValueError):
        roc_auc([0.5, 0.4], [1, 1])


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    corpus = read_corpus(make_eval_corpus(tmp_path_factory.mktemp("heads")))
    return load_split(corpus, "test")


def test_mismatched_pairs_describe_another_step(split):
    pairs = matching_pairs(split, seed=0)
    assert pairs and len(pairs) % 2 == 0
    for (true, clip, y1), (wrong, clip2, y0) in zip(pairs[::2], pairs[1::2]):
        assert (y1, y0) == (1, 0) and clip == clip2
        own = [str(s["description"]) for s in split.clip_steps(clip)]
        assert true == own[0] and wrong not in own
        verbs = {s["verb"] for s in split.clip_steps(clip)}
        food = true.split()[-1]
        assert wrong.split()[0] not in verbs or not wrong.endswith(food)
    assert matching_pairs(split, seed=0) == pairs  # deterministic


def test_masked_action_top1_is_the_heads_argmax(split):
    torch.manual_seed(0)
    # The head's vocabulary also holds narration-only verbs (as a real corpus's does), which the
    # task's label space (the clips' step verbs) leaves out.
    corpus = dataclasses.replace(split.corpus, verbs=split.corpus.verbs + ("welcome", "subscribe"))
    model = model_for_corpus(TrainConfig(corpus="", out="", preset="tiny"), corpus,
                             ClipGroups(corpus, 2).sample(0)).eval()
    tok = ActBertTokenizer()
    result = masked_action(model, tok, split, corpus.verbs)
    labelled = verb_clips(split, corpus.verbs)
    assert result["clips"] == len(labelled) > 0
    space = sorted({v for _, v in labelled})  # the task's label space: the clips' step verbs
    assert len(space) < len(corpus.verbs)  # so restricting the argmax is visible
    hits = 0
    for clip, verb in labelled:  # one clip at a time, the action feature zeroed by hand
        video = collate([split.inputs(clip, model.config.max_regions)])
        video.pop("region_classes")
        video["action_features"] = torch.zeros_like(video["action_features"])
        enc = tok([split.clips[clip].narration])
        with torch.no_grad():
            out = model(text_ids=enc.ids, text_mask=enc.mask, **video)
        logits = out.action_logits[0, 0]
        hits += max(space, key=lambda v: float(logits[v])) == verb
    assert result["top1_masked"] == pytest.approx(100.0 * hits / len(labelled))
    counts = np.bincount([v for _, v in labelled])
    assert result["majority"] == pytest.approx(100.0 * counts.max() / len(labelled))
