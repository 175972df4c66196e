"""The matching score that reads the alignment embeddings (``config.match_alignment_weight`` w):
sigmoid(head margin + w * cosine of the pair's text-only and video-only embeddings), ALBEF's sum
of its matching head and its contrastive similarity. Checked against the head's logits and the
embeddings computed on their own (``encode_text``, ``encode_video``) and the formula by hand."""

from __future__ import annotations

import math

import pytest
import torch

from actbert import ActBertConfig, ActBertForPretraining
from actbert.states import VideoState
from tests.actbert.helpers import random_inputs, variant_config

VARIANTS = [("stack", False), ("paddle", False), ("stack", True)]


def _model(kv_fusion: str, layered: bool, weight: float) -> ActBertForPretraining:
    torch.manual_seed(0)
    model = ActBertForPretraining(variant_config(kv_fusion, layered, match_alignment_weight=weight)).eval()
    with torch.no_grad():  # a sharper head: scores that differ between pairs
        for p in model.heads["match"].parameters():
            p.mul_(30.0)
    return model


def _by_hand(model, text, video, weight):
    """The head's margin and the two embeddings, each computed on its own, and the formula."""
    with torch.no_grad():
        logits = model(**text, **video, heads=("match",), score=False).match_logits
        t = model.encode_text(text["text_ids"], text["text_mask"])
        v = model.encode_video(**video)
    cosine = [float(t[0] @ v[k]) for k in range(v.shape[0])]
    margin = [float(logits[k, 0] - logits[k, 1]) for k in range(v.shape[0])]
    return cosine, [1 / (1 + math.exp(-(m + weight * c))) for m, c in zip(margin, cosine)]


@pytest.mark.parametrize("kv_fusion,layered", VARIANTS)
def test_the_score_adds_w_times_the_alignment_cosine_to_the_head_margin(kv_fusion, layered):
    model = _model(kv_fusion, layered, weight=7.5)
    inputs = random_inputs(model.config, batch=4, pad=True)
    video = {k: v for k, v in inputs.items() if not k.startswith("text")}
    text = {"text_ids": inputs["text_ids"][1:2], "text_mask": inputs["text_mask"][1:2]}
    cosine, want = _by_hand(model, text, video, 7.5)
    with torch.no_grad():
        full = model(**text, **video, heads=("match",))
        shared = model.match(model.text_state(**text), **video)
        states = model.video_state(**video).unbatch()
        cached = model.match(model.text_state(**text), VideoState.batch([states[i] for i in (2, 0)]))
    assert full.alignment_cosine.tolist() == pytest.approx(cosine, abs=1e-5)
    assert full.match_score.tolist() == pytest.approx(want, abs=1e-5)
    assert shared.match_score.tolist() == pytest.approx(want, abs=1e-5)
    assert cached.match_score.tolist() == pytest.approx([want[2], want[0]], abs=1e-5)
    assert len({round(s, 4) for s in want}) > 1


def test_weight_zero_is_the_head_alone_and_score_false_skips_the_score():
    model = _model("stack", False, weight=0.0)
    inputs = random_inputs(model.config, batch=3, pad=True)
    with torch.no_grad():
        out = model(**inputs, heads=("match",))
        quiet = model(**inputs, heads=("match",), score=False)
    assert torch.equal(out.match_score, torch.softmax(out.match_logits.float(), -1)[:, 0])
    assert out.alignment_cosine is None
    assert quiet.match_score is None and torch.equal(quiet.match_logits, out.match_logits)


def test_the_weight_moves_the_score_not_the_head():
    """Same weights, w = 0 and w = 20: the logits are equal; the scores differ exactly by w*cos
    inside the sigmoid, so a pair whose embeddings agree more can overtake another."""
    plain, summed = _model("stack", False, 0.0), _model("stack", False, 20.0)
    inputs = random_inputs(plain.config, batch=4, pad=True)
    video = {k: v for k, v in inputs.items() if not k.startswith("text")}
    text = {"text_ids": inputs["text_ids"][:1], "text_mask": inputs["text_mask"][:1]}
    with torch.no_grad():
        a, b = plain(**text, **video, heads=("match",)), summed(**text, **video, heads=("match",))
    assert torch.equal(a.match_logits, b.match_logits)
    logit = lambda p: torch.log(p) - torch.log1p(-p)  # noqa: E731
    torch.testing.assert_close(logit(b.match_score) - logit(a.match_score), 20.0 * b.alignment_cosine,
                               atol=1e-3, rtol=1e-4)


@pytest.mark.parametrize("kv_fusion,layered", VARIANTS)
def test_encode_video_state_is_encode_video(kv_fusion, layered):
    model = _model(kv_fusion, layered, weight=1.0)
    inputs = random_inputs(model.config, batch=3, pad=True)
    video = {k: v for k, v in inputs.items() if not k.startswith("text")}
    with torch.no_grad():
        torch.testing.assert_close(model.encode_video_state(model.video_state(**video)),
                                   model.encode_video(**video), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "3", True])
def test_a_bad_weight_is_refused(bad):
    with pytest.raises(ValueError, match="match_alignment_weight"):
        ActBertConfig.from_name("tiny", match_alignment_weight=bad)


def test_a_config_written_before_the_weight_reads_as_the_head_alone():
    data = ActBertConfig.from_name("tiny").to_dict()
    del data["match_alignment_weight"]
    assert ActBertConfig.from_dict(data).match_alignment_weight == 0.0


def test_the_evaluation_scores_pairs_as_the_model_does(tmp_path):
    """``ModelScorer.match`` takes the cosine from its cached embeddings: the model's own score."""
    from dataclasses import replace

    from actbert.corpus import ClipGroups, read_corpus
    from actbert.evaluation.scorer import ModelScorer
    from actbert.evaluation.tasks import load_split
    from actbert.pretraining.train import TrainConfig, model_for_corpus
    from actbert.tokenizer import ActBertTokenizer
    from tests.actbert.corpus_helpers import make_corpus

    corpus = read_corpus(make_corpus(tmp_path, videos=2, clips=4, seed=5))
    split = load_split(corpus, "train")
    torch.manual_seed(0)
    model = model_for_corpus(TrainConfig(corpus="", out="", preset="tiny"), corpus,
                             ClipGroups(corpus, clips_per_sample=2, seed=0).sample(0)).eval()
    model.config = model.actbert.config = replace(model.config, match_alignment_weight=9.0)
    tok = ActBertTokenizer()
    scorer = ModelScorer(model, tok, split, True, 3, "cpu")
    texts = ["cut the bread", "pour the milk"] * 3
    clips = [0, 1, 2, 3, 1, 0]
    got = scorer.match(texts, clips)
    for t, c, g in zip(texts, clips, got):
        enc = tok([t])
        with torch.no_grad():
            want = model.match(model.text_state(enc.ids, enc.mask), **scorer.video_batch([c]))
        assert want.alignment_cosine is not None
        assert g == pytest.approx(float(want.match_score[0]), abs=1e-5)
