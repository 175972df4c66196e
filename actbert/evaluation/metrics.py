"""Evaluation metrics of the paper's downstream tasks: pure numpy functions.

Every figure is a percentage (0-100) unless its name says otherwise, as the papers report them.

- Text-to-video retrieval (YouCook2, MSR-VTT): ``retrieval_ranks`` and ``retrieval_metrics``, with
  PaddleVideo's conventions (``paddlevideo/metrics/msrvtt_metric.py``): ranks are 0-based positions
  in the list sorted by descending score; R@K = share of queries with rank < K; median rank =
  ``floor(median(rank) + 1)``; mean rank = ``mean(rank) + 1`` (so both read 1-based).
- Action step localisation (CrossTask, Zhukov et al. 2019): ``step_localization_recall``. For each
  annotated step of a video, the single best-scoring time is picked; a hit is a pick inside the
  step's true interval. Recall = hits / annotated steps, summed over a task's videos; the reported
  figure is the mean over tasks (CrossTask's ``get_recalls``).
- Action segmentation (COIN): ``frame_accuracy``, the share of frames (pooled over all videos,
  background frames included) whose predicted label equals the true one.
- Multiple choice: ``multiple_choice_accuracy``.

Each figure is computed from per-item outcomes (a query's rank, a video's step hits or correct
frames, a question's correctness) by one function (``metrics_from_ranks``, ``recall_from_counts``,
``accuracy_from_counts``, ``percent_correct``), so a bootstrap (``intervals``) recomputes it on
resamples of those outcomes with the same code as the point estimate.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

log = logging.getLogger(__name__)

TieRule = Literal["stable", "optimistic", "pessimistic"]


@dataclass(frozen=True)
class RetrievalMetrics:
    """Text-to-video retrieval figures: recalls in percent, ranks 1-based (see module docstring)."""

    r1: float
    r5: float
    r10: float
    median_rank: float
    mean_rank: float
    num_queries: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def retrieval_ranks(similarity: np.ndarray, targets: Sequence[int] | np.ndarray,
                    ties: TieRule = "stable") -> np.ndarray:
    """0-based rank of each query's true video.

    similarity (Q, V): score of query q against video v, higher = better. targets (Q,): index of the
    true video of each query. Returns (Q,) int64.

    Ties (equal scores) are resolved by ``ties``:
    - ``"stable"``: the position in a stable descending sort, i.e. the number of videos scoring
      strictly higher plus the number of equal-scoring videos with a lower index. Equal to
      PaddleVideo's ``argsort(-score)`` position whenever scores are distinct; deterministic on ties.
    - ``"optimistic"``: only strictly higher scores count (ties favour the true video).
    - ``"pessimistic"``: every other video with a score >= the true one counts.
    A NaN score is an error.
    """
    scores = np.asarray(similarity, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] == 0:
        raise ValueError(f"similarity must be (queries, videos) with at least one video, got {scores.shape}")
    target = np.asarray(targets)
    if target.shape != (scores.shape[0],) or not np.issubdtype(target.dtype, np.integer):
        raise ValueError(f"targets must be {scores.shape[0]} integer indices, got shape {target.shape} "
                         f"dtype {target.dtype}")
    if target.size and (target.min() < 0 or target.max() >= scores.shape[1]):
        raise ValueError(f"targets must lie in 0..{scores.shape[1] - 1}")
    if np.isnan(scores).any():
        raise ValueError("similarity contains NaN")
    true_score = scores[np.arange(len(target)), target][:, None]
    higher = (scores > true_score).sum(1)
    if ties == "optimistic":
        return higher.astype(np.int64)
    equal = scores == true_score
    if ties == "pessimistic":
        return (higher + equal.sum(1) - 1).astype(np.int64)
    if ties == "stable":
        before = np.arange(scores.shape[1])[None, :] < target[:, None]
        return (higher + (equal & before).sum(1)).astype(np.int64)
    raise ValueError(f"ties must be 'stable', 'optimistic' or 'pessimistic', got {ties!r}")


def metrics_from_ranks(ranks: Sequence[int] | np.ndarray) -> RetrievalMetrics:
    """R@1/5/10 (percent), median rank ``floor(median(rank) + 1)``, mean rank ``mean(rank) + 1``
    from 0-based ranks (Q,)."""
    rank = np.asarray(ranks, dtype=np.float64)
    if rank.ndim != 1 or rank.size == 0:
        raise ValueError(f"ranks must be a non-empty 1-d array, got shape {rank.shape}")
    if (rank < 0).any():
        raise ValueError("ranks are 0-based and cannot be negative")
    return RetrievalMetrics(
        r1=100.0 * float(np.mean(rank < 1)),
        r5=100.0 * float(np.mean(rank < 5)),
        r10=100.0 * float(np.mean(rank < 10)),
        median_rank=float(np.floor(np.median(rank) + 1)),
        mean_rank=float(np.mean(rank) + 1),
        num_queries=int(rank.size),
    )


def retrieval_metrics(similarity: np.ndarray, targets: Sequence[int] | np.ndarray,
                      ties: TieRule = "stable") -> RetrievalMetrics:
    """Text-to-video retrieval figures of a (Q, V) similarity matrix; see ``retrieval_ranks``."""
    return metrics_from_ranks(retrieval_ranks(similarity, targets, ties))


# ---------------------------------------------------------------------------------------------
# Action step localisation (CrossTask)


@dataclass(frozen=True)
class StepRecall:
    """CrossTask step localisation: ``per_task[task]`` recall in percent, ``mean`` over tasks,
    and the raw counts (hits, annotated steps) per task."""

    per_task: dict[str, float]
    mean: float
    counts: dict[str, tuple[int, int]]


def step_hits(scores: np.ndarray, truth: np.ndarray) -> tuple[int, int]:
    """Hits and annotated steps of one video.

    scores (T, K): score of step k at time slot t (e.g. one slot per second). truth (T, K) bool:
    time slot t lies inside an annotated interval of step k. For each step, the first slot with the
    highest score is picked; a step counts only if it is annotated in the video (some truth in its
    column), and it is hit if its pick is a true slot.
    """
    scores = np.asarray(scores, dtype=np.float64)
    truth = np.asarray(truth).astype(bool)
    if scores.ndim != 2 or scores.shape != truth.shape:
        raise ValueError(f"scores {scores.shape} and truth {truth.shape} must both be (time, steps)")
    if scores.shape[0] == 0:
        raise ValueError("a video needs at least one time slot")
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN")
    picks = scores.argmax(0)
    annotated = truth.any(0)
    hit = truth[picks, np.arange(truth.shape[1])] & annotated
    return int(hit.sum()), int(annotated.sum())


def step_localization_recall(videos: Iterable[tuple[str, np.ndarray, np.ndarray]]) -> StepRecall:
    """CrossTask recall from ``(task, scores (T, K), truth (T, K))`` per video (see ``step_hits``):
    per task, total hits / total annotated steps; ``mean`` is the unweighted mean over tasks."""
    return recall_from_counts((task, *step_hits(scores, truth)) for task, scores, truth in videos)


def recall_from_counts(videos: Iterable[tuple[str, int, int]]) -> StepRecall:
    """CrossTask recall from per-video outcomes ``(task, hits, annotated steps)`` (``step_hits``);
    a video may appear more than once (a bootstrap resample) and counts each time."""
    counts: dict[str, list[int]] = {}
    for task, hits, total in videos:
        entry = counts.setdefault(str(task), [0, 0])
        entry[0] += hits if isinstance(hits, float) else int(hits)  # chance: expected hits
        entry[1] += int(total)
    if not counts:
        raise ValueError("no videos to evaluate")
    empty = [task for task, (_, total) in counts.items() if total == 0]
    if empty:
        raise ValueError(f"tasks without any annotated step: {empty}")
    per_task = {task: 100.0 * hits / total for task, (hits, total) in counts.items()}
    return StepRecall(per_task=per_task, mean=float(np.mean(list(per_task.values()))),
                      counts={task: (hits, total) for task, (hits, total) in counts.items()})


# ---------------------------------------------------------------------------------------------
# Action segmentation (COIN) and multiple choice


def frame_counts(predictions: Sequence[np.ndarray] | np.ndarray,
                 labels: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    """Per-video outcomes of segmentation: (V, 2) int64 rows (correct frames, frames).

    predictions, labels: one (T_i,) integer label array per video (or one array for a single
    video); background frames carry their own label (COIN: 0) and count like any other frame.
    """
    if isinstance(predictions, np.ndarray) and predictions.ndim == 1:
        predictions, labels = [predictions], [np.asarray(labels)]
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predicted videos but {len(labels)} labelled videos")
    rows = []
    for i, (pred, true) in enumerate(zip(predictions, labels)):
        pred, true = np.asarray(pred), np.asarray(true)
        if pred.shape != true.shape or pred.ndim != 1:
            raise ValueError(f"video {i}: predictions {pred.shape} and labels {true.shape} must be "
                             f"equal-length 1-d arrays")
        rows.append((int((pred == true).sum()), int(true.size)))
    return np.array(rows, dtype=np.int64).reshape(-1, 2)


def accuracy_from_counts(counts: np.ndarray) -> float:
    """Frame accuracy in percent, pooled: sum of correct frames / sum of frames over the rows of
    ``frame_counts`` (a row may repeat: a bootstrap resample; correct frames may be an expected,
    fractional count: ``chance``)."""
    counts = np.asarray(counts, dtype=np.float64).reshape(-1, 2)
    total = float(counts[:, 1].sum())
    if total == 0:
        raise ValueError("no frames to evaluate")
    return 100.0 * float(counts[:, 0].sum()) / total


def frame_accuracy(predictions: Sequence[np.ndarray] | np.ndarray,
                   labels: Sequence[np.ndarray] | np.ndarray) -> float:
    """Frame accuracy in percent, pooled over videos: sum of correct frames / sum of frames
    (see ``frame_counts`` for the inputs)."""
    return accuracy_from_counts(frame_counts(predictions, labels))


def multiple_choice_correct(scores: np.ndarray, answers: Sequence[int] | np.ndarray) -> np.ndarray:
    """Per-question outcomes (Q,) bool: scores (Q, C) of C candidates per question, answers (Q,)
    the right candidate's index. The pick is the first candidate with the highest score."""
    scores = np.asarray(scores, dtype=np.float64)
    answer = np.asarray(answers)
    if scores.ndim != 2 or scores.shape[0] == 0 or scores.shape[1] == 0:
        raise ValueError(f"scores must be (questions, candidates), got {scores.shape}")
    if answer.shape != (scores.shape[0],) or not np.issubdtype(answer.dtype, np.integer):
        raise ValueError(f"answers must be {scores.shape[0]} integer indices, got shape {answer.shape}")
    if answer.min() < 0 or answer.max() >= scores.shape[1]:
        raise ValueError(f"answers must lie in 0..{scores.shape[1] - 1}")
    return scores.argmax(1) == answer


def percent_correct(correct: Sequence[bool] | np.ndarray) -> float:
    """Accuracy in percent of per-item outcomes (True = right)."""
    correct = np.asarray(correct, dtype=bool)
    if correct.size == 0:
        raise ValueError("no items to evaluate")
    return 100.0 * float(np.mean(correct))


def multiple_choice_accuracy(scores: np.ndarray, answers: Sequence[int] | np.ndarray) -> float:
    """Accuracy in percent of ``multiple_choice_correct``."""
    return percent_correct(multiple_choice_correct(scores, answers))
