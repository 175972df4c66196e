"""Percentile bootstrap confidence intervals over per-item outcomes, resampled by video and
paired across systems.

The systems of one task are scored on the same units (queries, questions, pairs, clips, captions,
videos), and every unit belongs to a video. Units of one video are not independent (one recipe,
one narrator, one set of objects; often the same description), so a resample draws VIDEOS with
replacement and takes all their units (the cluster bootstrap, Davison & Hinkley 1997, 3.8): a
video drawn twice counts twice, and a replicate may hold more or fewer units than the task. With
one unit per video this is the ordinary bootstrap of the units (and the same draw). Every system's
figures are recomputed on the same draw by the metric's own function (``metrics``), so the
difference of two systems is a paired bootstrap, and the point estimate is the same function on
all units. An interval is the ``(1 - level) / 2`` and ``(1 + level) / 2`` percentiles of the
replicates (Efron & Tibshirani 1993, ch. 13).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

Figures = Callable[[np.ndarray], dict[str, float]]  # unit indices (n,) -> {metric: value}
RESAMPLES = 1000
LEVEL = 0.95


def resample_indices(units: int, resamples: int, seed: int | Sequence[int]) -> np.ndarray:
    """(resamples, units) unit indices drawn uniformly with replacement, deterministic from seed."""
    if units < 1 or resamples < 1:
        raise ValueError(f"need at least one unit and one resample, got {units} and {resamples}")
    return np.random.default_rng(seed).integers(0, units, size=(resamples, units))


def resample_groups(groups: Sequence[int] | np.ndarray, resamples: int,
                    seed: int | Sequence[int]) -> list[np.ndarray]:
    """One array of unit indices per resample: ``G`` groups (videos) drawn uniformly with
    replacement (``G`` = the number of distinct groups), each contributing all its units in
    order. ``groups[i]`` is unit i's video; a group drawn k times contributes its units k times."""
    groups = np.asarray(groups)
    if groups.ndim != 1 or groups.size == 0:
        raise ValueError(f"need a (units,) group array with at least one unit, got {groups.shape}")
    _, first, inverse = np.unique(groups, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # groups in order of first appearance
    members = [np.flatnonzero(inverse == g) for g in order]
    draws = resample_indices(len(members), resamples, seed)
    return [np.concatenate([members[g] for g in row]) for row in draws]


def percentile_interval(values: Sequence[float] | np.ndarray, level: float = LEVEL) -> list[float]:
    """[low, high]: the central ``level`` percentile interval of bootstrap replicates."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0 or not 0 < level < 1:
        raise ValueError(f"need replicates and 0 < level < 1, got {values.size} and {level}")
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return [float(low), float(high)]


def _numeric(figures: dict) -> dict[str, float]:
    return {k: float(v) for k, v in figures.items() if isinstance(v, (int, float, np.number))
            and not isinstance(v, bool)}


def replicates(figures: Figures, draws: Sequence[np.ndarray] | np.ndarray) -> dict[str, np.ndarray]:
    """{metric: (R,) values}: ``figures`` recomputed on each of the R index arrays of ``draws``."""
    rows = [_numeric(figures(np.asarray(idx))) for idx in draws]
    return {metric: np.array([row[metric] for row in rows]) for metric in rows[0]} if rows else {}


@dataclass(frozen=True)
class Bootstrap:
    """Point figures and bootstrap replicates of every system of one task (same draws)."""

    point: dict[str, dict[str, float]]
    replicates: dict[str, dict[str, np.ndarray]]
    level: float = LEVEL

    def intervals(self) -> dict[str, dict[str, list[float]]]:
        """{system: {metric: [low, high]}}."""
        return {system: {m: percentile_interval(v, self.level) for m, v in reps.items()}
                for system, reps in self.replicates.items()}

    def difference(self, a: str, b: str) -> tuple[dict[str, float], dict[str, list[float]]]:
        """(point a - b, [low, high] of a - b) for every metric both systems have (paired)."""
        common = [m for m in self.point[a] if m in self.point[b]]
        return ({m: self.point[a][m] - self.point[b][m] for m in common},
                {m: percentile_interval(self.replicates[a][m] - self.replicates[b][m], self.level)
                 for m in common})

    def metric_difference(self, system: str, a: str, b: str) -> tuple[float, list[float]]:
        """(point, [low, high]) of metric a - metric b within one system (paired)."""
        reps = self.replicates[system]
        return (self.point[system][a] - self.point[system][b],
                percentile_interval(reps[a] - reps[b], self.level))


def bootstrap(figures: dict[str, Figures], units: int, seed: int | Sequence[int],
              resamples: int = RESAMPLES, level: float = LEVEL,
              groups: Sequence[int] | np.ndarray | None = None) -> Bootstrap:
    """Point figures (``figures[system]`` on all ``units``) and replicates on one shared draw:
    of whole groups (``groups[i]``: unit i's video, ``resample_groups``), or of single units when
    ``groups`` is None."""
    if groups is not None and len(groups) != units:
        raise ValueError(f"{len(groups)} group labels for {units} units")
    draws = (resample_indices(units, resamples, seed) if groups is None
             else resample_groups(groups, resamples, seed))
    everything = np.arange(units)
    return Bootstrap(point={s: _numeric(f(everything)) for s, f in figures.items()},
                     replicates={s: replicates(f, draws) for s, f in figures.items()}, level=level)
