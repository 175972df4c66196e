"""What chance gets, as an EXPECTATION: the ``random`` (and ``majority``) rows of ``evaluate``.

One random draw is a figure with its own noise (a single draw of step localisation read 45.4
where the expectation is near 34): a model compared with it is credited or blamed for that noise.
So every random row is the expected figure of a uniformly random scorer, in closed form where one
exists, else the mean of ``DRAWS`` seeded draws:

- retrieval: ``recall_at_k``: a query with ``m`` target clips among ``N`` in a uniformly random
  order has one in the top k with probability ``1 - C(N - m, k) / C(N, k)`` (``evaluate`` has
  one target per query: ``min(k, N) / N``). ``median_rank``: the exact expectation of the metric
  ``floor(median(rank) + 1)`` over ``Q`` independent uniform 0-based ranks on ``0..N-1``, from the
  distribution of the middle order statistics (one for odd Q, the joint law of the two middle
  ones for even Q).
- step localisation: ``step_hits``: a random score per (step, clip) picks a uniformly random clip
  of the video for each step, so a step with ``c`` of the video's ``n`` clip centres inside it is
  hit with probability ``c / n``: expected hits per video, recall as ``metrics`` aggregates them
  (hits and annotated steps summed per task; the denominators are fixed, so the ratio of the
  expectations is the expectation).
- multiple choice: ``1 / candidates``; ROC-AUC: 50 (a random score ranks a positive above a
  negative with probability one half).
- classification (segmentation frames, masked action): ``uniform_correct``: a uniform guess among
  ``L`` labels is right with probability ``1 / L`` when the true label is one of them; the
  ``majority`` rows are deterministic (always the training majority) and need no expectation.
- captioning has no closed form (BLEU is a ratio of corpus sums): ``DRAWS`` seeded draws of a
  random training caption per clip, their figures averaged (``evaluate`` notes which rows are
  which).
"""

from __future__ import annotations

from math import comb, lgamma

import numpy as np

from .intervals import Figures

DRAWS = 100  # seeded draws averaged where there is no closed form
AUC = 50.0   # percent
NOTE = ("random rows are chance's EXPECTATION, not one draw (protocol 'chance'): analytic for "
        "retrieval (R@k = min(k, N)/N with N searched clips and one target per query; median rank "
        "the exact expectation over the queries' uniform ranks), step localisation (a uniformly "
        "random clip per step: expected hits), video QA (1/candidates), matching (ROC-AUC 50), "
        "segmentation and masked action (uniform over the label space); captioning: the mean of "
        f"{DRAWS} seeded draws of a random train caption (no METEOR). majority rows always answer "
        "the majority label (deterministic)")


def recall_at_k(clips: int, k: int, targets: int = 1) -> float:
    """P(one of ``targets`` clips is in the top ``k`` of ``clips`` in a uniformly random order)."""
    if not 1 <= targets <= clips or k < 0:
        raise ValueError(f"need 1 <= targets <= clips and k >= 0, got {targets}, {clips}, {k}")
    k = min(k, clips)
    return 1.0 - comb(clips - targets, k) / comb(clips, k)


def _binomial_tail(trials: int, p: np.ndarray, at_least: int) -> np.ndarray:
    """P(Binomial(trials, p) >= at_least) for each p in (0, 1] (log space: trials may be large)."""
    j = np.arange(at_least, trials + 1)
    log_comb = np.array([lgamma(trials + 1) - lgamma(i + 1) - lgamma(trials - i + 1) for i in j])
    p = np.asarray(p, np.float64)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.exp(log_comb + j * np.log(p) + (trials - j) * np.log1p(-p))
    terms = np.where(p >= 1.0, (j == trials).astype(np.float64), terms)  # p = 1: all successes
    return terms.sum(1)


def _order_statistic_pmf(clips: int, queries: int, k: int) -> np.ndarray:
    """(N,) P(the k-th smallest (1-based) of ``queries`` uniform ranks on 0..N-1 equals x)."""
    cdf = _binomial_tail(queries, np.arange(1, clips + 1) / clips, k)  # P(X_(k) <= x)
    return np.diff(np.concatenate([[0.0], cdf]))


def median_rank(clips: int, queries: int) -> float:
    """E[floor(median(r) + 1)] for ``queries`` independent ranks r uniform on 0..clips-1 (exact)."""
    if clips < 1 or queries < 1:
        raise ValueError(f"need at least one clip and one query, got {clips} and {queries}")
    x = np.arange(clips, dtype=np.float64)
    if queries % 2:
        return float(1.0 + _order_statistic_pmf(clips, queries, (queries + 1) // 2) @ x)
    k, m = queries // 2, queries // 2  # the medians are X_(k) and X_(k+1); m ranks lie above
    # x < y: P(X_(k) = x, X_(k+1) = y) = C(Q, k) [F(x)^k - F(x-1)^k] [S(y)^m - S(y+1)^m] with
    # F(x) = (x+1)/N and S(y) = (N-y)/N: exactly k ranks <= x and m ranks >= y. Log space.
    with np.errstate(divide="ignore"):
        log_df = k * np.log((x + 1) / clips) + np.log1p(-(x / (x + 1)) ** k)
        log_dg = m * np.log((clips - x) / clips) + np.log1p(-((clips - x - 1) / (clips - x)) ** m)
    log_c = lgamma(queries + 1) - 2 * lgamma(k + 1)
    above = x[None, :] > x[:, None]                # x < y only
    joint = np.exp(np.where(above, log_c + log_df[:, None] + log_dg[None, :], -np.inf))
    diagonal = _order_statistic_pmf(clips, queries, k) - joint.sum(1)  # X_(k) = X_(k+1) = v
    value = np.floor((x[:, None] + x[None, :]) / 2) + 1
    return float((joint * value).sum() + diagonal.clip(min=0) @ (x + 1))


def retrieval_figures(clips: int, queries: int) -> dict[str, float]:
    """The expected ``tasks.figures_from_ranks`` of a uniformly random ranking (one target each)."""
    return {"r1": 100 * recall_at_k(clips, 1), "r5": 100 * recall_at_k(clips, 5),
            "r10": 100 * recall_at_k(clips, 10), "median_rank": median_rank(clips, queries)}


def step_hits(truth: np.ndarray) -> tuple[float, int]:
    """(expected hits, annotated steps) of one video under a uniformly random pick per step;
    ``truth`` (clips, steps) bool as ``metrics.step_hits`` takes it."""
    truth = np.asarray(truth, bool)
    annotated = truth.any(0)
    return float(truth[:, annotated].sum() / truth.shape[0]), int(annotated.sum())


def uniform_correct(labels: np.ndarray, choices: np.ndarray) -> float:
    """Expected number of right answers when each item's answer is uniform over ``choices``."""
    choices = np.unique(np.asarray(choices))
    return float(np.isin(np.asarray(labels), choices).sum() / len(choices))


def mean_of(figures: list) -> Figures:
    """figures(idx) = the mean over ``figures`` (one per draw) of each one's figures(idx)."""
    def mean(idx: np.ndarray) -> dict[str, float]:
        rows = [f(idx) for f in figures]
        return {m: float(np.mean([r[m] for r in rows])) for m in rows[0]}
    return mean


def random_captions(references: dict, captions: list[str], seed: int,
                    draws: int = DRAWS) -> tuple[Figures, str]:
    """The random captioning row: ``draws`` seeded draws of a uniformly random training caption
    per item, scored in ONE ``caption_scores`` call (items keyed (draw, item): CIDEr-D's document
    frequencies scale with the copies, so its idf is the single set's), their figures averaged
    per resample (``mean_of``). Returns the figures and the tokenizer used (METEOR is not run)."""
    from .captioning_metrics import caption_scores

    rng = np.random.default_rng([seed, 23])
    items = list(references)
    keys = [(d, i) for d in range(draws) for i in range(len(items))]
    picks = rng.integers(len(captions), size=len(keys))
    scores = caption_scores({k: references[items[k[1]]] for k in keys},
                            {k: captions[p] for k, p in zip(keys, picks)}, meteor=False)
    row = {k: n for n, k in enumerate(scores.units.keys)}
    per_draw = [np.array([row[(d, i)] for i in range(len(items))]) for d in range(draws)]
    units = scores.units
    return mean_of([lambda idx, rows=rows: units.figures(rows[idx]) for rows in per_draw]), \
        scores.tokenizer
