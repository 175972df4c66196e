"""Evaluation metrics against hand-computed cases and PaddleVideo's own rank formula."""

import numpy as np
import pytest

from actbert.evaluation.metrics import (
    frame_accuracy,
    metrics_from_ranks,
    multiple_choice_accuracy,
    retrieval_metrics,
    retrieval_ranks,
    step_hits,
    step_localization_recall,
)

# 4 queries x 5 videos; true video of query q is TARGETS[q].
SIMILARITY = np.array([
    [0.9, 0.1, 0.2, 0.3, 0.4],   # true 0: best -> rank 0
    [0.5, 0.2, 0.6, 0.7, 0.1],   # true 1: 0.5, 0.6, 0.7 above -> rank 3
    [0.1, 0.2, 0.3, 0.4, 0.5],   # true 4: best -> rank 0
    [0.3, 0.8, 0.9, 0.1, 0.2],   # true 3: everything above -> rank 4
])
TARGETS = [0, 1, 4, 3]


def test_ranks_of_a_known_matrix():
    assert retrieval_ranks(SIMILARITY, TARGETS).tolist() == [0, 3, 0, 4]


def test_figures_of_a_known_matrix():
    m = retrieval_metrics(SIMILARITY, TARGETS)
    # ranks 0, 3, 0, 4: R@1 2/4, R@5 4/4; median(0, 0, 3, 4) = 1.5 -> floor(2.5) = 2; mean 7/4 + 1.
    assert (m.r1, m.r5, m.r10) == (50.0, 100.0, 100.0)
    assert m.median_rank == 2.0
    assert m.mean_rank == pytest.approx(2.75)
    assert m.num_queries == 4


def test_figures_from_ranks_paddle_conventions():
    m = metrics_from_ranks([0, 1, 4, 9, 12, 20])
    assert m.r1 == pytest.approx(100 / 6)
    assert m.r5 == pytest.approx(300 / 6)
    assert m.r10 == pytest.approx(400 / 6)
    assert m.median_rank == 7.0            # floor(6.5 + 1)
    assert m.mean_rank == pytest.approx(46 / 6 + 1)


def test_matches_paddlevideo_argsort_rank_without_ties():
    rng = np.random.default_rng(0)
    scores = rng.random((50, 80))
    targets = rng.integers(0, 80, 50)
    # PaddleVideo msrvtt_metric.py: position of the target in argsort(-score).
    paddle = [np.where(np.argsort(-scores[q]) == targets[q])[0][0] for q in range(50)]
    assert retrieval_ranks(scores, targets).tolist() == paddle
    ranks = np.array(paddle, dtype=float)
    m = retrieval_metrics(scores, targets)
    assert m.r1 == 100.0 * np.sum(ranks < 1) / 50
    assert m.r10 == 100.0 * np.sum(ranks < 10) / 50
    assert m.median_rank == np.floor(np.median(ranks) + 1)
    assert m.mean_rank == pytest.approx(np.mean(ranks) + 1)


def test_tie_rules():
    scores = np.array([[0.5, 0.9, 0.5, 0.5, 0.1]])
    # True video 2 ties with videos 0 and 3; video 1 is strictly better.
    assert retrieval_ranks(scores, [2], ties="optimistic").tolist() == [1]
    assert retrieval_ranks(scores, [2], ties="stable").tolist() == [2]       # video 0 precedes
    assert retrieval_ranks(scores, [2], ties="pessimistic").tolist() == [3]
    assert retrieval_ranks(scores, [2]).tolist() == [np.argsort(-scores[0], kind="stable").tolist().index(2)]
    constant = np.zeros((3, 3))
    assert retrieval_ranks(constant, [0, 1, 2]).tolist() == [0, 1, 2]


def test_retrieval_bad_input():
    with pytest.raises(ValueError, match="0..4"):
        retrieval_ranks(SIMILARITY, [0, 1, 5, 3])
    with pytest.raises(ValueError, match="4 integer indices"):
        retrieval_ranks(SIMILARITY, [0, 1])
    with pytest.raises(ValueError, match="NaN"):
        retrieval_ranks(np.array([[np.nan, 1.0]]), [0])
    with pytest.raises(ValueError, match="ties"):
        retrieval_ranks(SIMILARITY, TARGETS, ties="random")
    with pytest.raises(ValueError, match="non-empty"):
        metrics_from_ranks([])


def test_step_hits_known_video():
    # 6 one-second slots, 3 steps. Step 0 true at t=1..2, step 1 at t=4, step 2 not in the video.
    truth = np.zeros((6, 3), bool)
    truth[1:3, 0] = True
    truth[4, 1] = True
    scores = np.array([
        [0.1, 0.0, 0.9],
        [0.2, 0.0, 0.1],
        [0.8, 0.7, 0.1],   # step 0 picks t=2 (hit); step 1 picks t=2 (miss)
        [0.3, 0.1, 0.1],
        [0.0, 0.7, 0.1],   # ties with t=2 for step 1: the first slot wins
        [0.0, 0.0, 0.0],
    ])
    assert step_hits(scores, truth) == (1, 2)   # step 2 is not annotated: not counted


def test_crosstask_recall_is_per_task_then_mean():
    one = np.eye(3, dtype=bool)                 # steps at t = 0, 1, 2
    good, bad = np.eye(3), np.eye(3)[::-1]      # bad picks t = 2, 1, 0: only step 1 right
    result = step_localization_recall([
        ("cook", good, one), ("cook", bad, one),         # 3 + 1 hits of 6
        ("build", bad, one),                              # 1 of 3
    ])
    assert result.counts == {"cook": (4, 6), "build": (1, 3)}
    assert result.per_task["cook"] == pytest.approx(400 / 6)
    assert result.per_task["build"] == pytest.approx(100 / 3)
    assert result.mean == pytest.approx((400 / 6 + 100 / 3) / 2)
    with pytest.raises(ValueError, match="without any annotated step"):
        step_localization_recall([("x", good, np.zeros((3, 3), bool))])
    with pytest.raises(ValueError, match="must both be"):
        step_hits(np.zeros((3, 2)), one)


def test_frame_accuracy_known_segmentation():
    true = np.array([0, 0, 5, 5, 5, 7, 7, 0])
    pred = np.array([0, 5, 5, 5, 7, 7, 7, 7])
    assert frame_accuracy(pred, true) == pytest.approx(100 * 5 / 8)
    # Pooled over videos (frames, not videos, weigh equally): (5 + 2) / (8 + 2).
    assert frame_accuracy([pred, np.array([1, 2])], [true, np.array([1, 2])]) == pytest.approx(70.0)
    with pytest.raises(ValueError, match="equal-length"):
        frame_accuracy([pred], [true[:-1]])


def test_multiple_choice_accuracy():
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.5, 0.0], [0.0, 0.1, 0.9]])
    # Picks 1, 0 (first of the tie), 2.
    assert multiple_choice_accuracy(scores, [1, 1, 2]) == pytest.approx(200 / 3)
    with pytest.raises(ValueError, match="0..2"):
        multiple_choice_accuracy(scores, [0, 1, 3])
