"""Chance's expectations (``chance``) against 10,000-draw Monte-Carlo runs of the random scorer
through the metrics' own functions, on small cases where the sampling error is known."""

import numpy as np
import pytest

from actbert.evaluation import chance
from actbert.evaluation.captioning_metrics import caption_scores
from actbert.evaluation.heads import roc_auc
from actbert.evaluation.metrics import metrics_from_ranks, multiple_choice_correct, step_hits

DRAWS = 10_000


def close(analytic, samples):
    """The analytic value lies within 4 standard errors of the Monte-Carlo mean."""
    samples = np.asarray(samples, np.float64)
    return abs(analytic - samples.mean()) <= 4 * samples.std() / np.sqrt(len(samples)) + 1e-9


@pytest.mark.parametrize("clips, k, targets", [(9, 3, 1), (9, 3, 2), (12, 5, 3), (4, 10, 1)])
def test_recall_at_k_against_random_orders(clips, k, targets):
    rng = np.random.default_rng(clips * 10 + k)
    hits = [bool(np.isin(rng.permutation(clips)[:k], np.arange(targets)).any()) for _ in range(DRAWS)]
    assert close(chance.recall_at_k(clips, k, targets), hits)
    assert chance.recall_at_k(clips, k) == pytest.approx(min(k, clips) / clips)


@pytest.mark.parametrize("clips, queries", [(7, 1), (7, 4), (7, 5), (12, 6), (5, 2), (30, 11)])
def test_median_rank_is_the_metrics_expectation(clips, queries):
    rng = np.random.default_rng(queries)
    medians = [metrics_from_ranks(rng.integers(0, clips, queries)).median_rank for _ in range(DRAWS)]
    assert close(chance.median_rank(clips, queries), medians)


def test_median_rank_by_hand():
    assert chance.median_rank(7, 1) == pytest.approx(4.0)   # (N + 1) / 2
    # Two ranks on {0, 1}: floor(mean + 1) is 2 only when both are 1: 1 + 1/4.
    assert chance.median_rank(2, 2) == pytest.approx(1.25)
    figures = chance.retrieval_figures(40, 9)
    assert figures["r1"] == pytest.approx(2.5) and figures["r10"] == pytest.approx(25.0)


def test_expected_step_hits_against_random_scores():
    rng = np.random.default_rng(3)
    truth = np.zeros((8, 4), bool)
    truth[1:3, 0] = truth[5, 1] = truth[4:8, 3] = True   # step 2 is not annotated
    expected, annotated = chance.step_hits(truth)
    assert annotated == 3 and expected == pytest.approx((2 + 1 + 4) / 8)
    hits = [step_hits(rng.random(truth.shape), truth)[0] for _ in range(DRAWS)]
    assert close(expected, hits)


def test_uniform_guess_multiple_choice_and_auc_against_draws():
    rng = np.random.default_rng(4)
    labels, choices = rng.integers(0, 6, 50), np.array([0, 2, 3, 5])
    correct = [(choices[rng.integers(4, size=50)] == labels).sum() for _ in range(DRAWS)]
    assert close(chance.uniform_correct(labels, choices), correct)
    answers = rng.integers(0, 5, 20)
    picks = [multiple_choice_correct(rng.random((20, 5)), answers).mean() for _ in range(DRAWS)]
    assert close(1 / 5, picks)
    aucs = [100 * roc_auc(rng.random(12), [1] * 6 + [0] * 6) for _ in range(2000)]
    assert close(chance.AUC, aucs)


def test_random_captions_average_the_draws_scored_one_by_one():
    references = {0: ["cut the apple"], 1: ["pour the milk", "add the milk"], 2: ["stir the soup"]}
    captions = ["cut the apple", "stir the milk", "peel the carrot"]
    figures, _ = chance.random_captions(references, captions, seed=1, draws=6)
    picks = np.random.default_rng([1, 23]).integers(3, size=18).reshape(6, 3)
    by_draw = []
    for draw in picks:
        units = caption_scores(references, {i: captions[p] for i, p in enumerate(draw)},
                               meteor=False).units
        by_draw.append(units.figures(np.array([0, 2, 2])))
    got = figures(np.array([0, 2, 2]))
    for metric in ("bleu3", "bleu4", "rouge_l", "cider"):
        assert got[metric] == pytest.approx(np.mean([f[metric] for f in by_draw]), rel=1e-6), metric
