"""Percentile bootstrap confidence intervals over per-item outcomes, paired across systems.

The systems of one task are scored on the same units (queries, videos, questions). One resample
draws ``n`` unit indices with replacement; every system's figures are recomputed on that same draw
by the metric's own function (``metrics``), so the difference of two systems is a paired bootstrap
and the point estimate is the same function on all units. An interval is the ``(1 - level) / 2``
and ``(1 + level) / 2`` percentiles of the replicates (Efron & Tibshirani 1993, ch. 13).
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


def replicates(figures: Figures, draws: np.ndarray) -> dict[str, np.ndarray]:
    """{metric: (R,) values}: ``figures`` recomputed on each row of ``draws`` (R, n)."""
    rows = [_numeric(figures(idx)) for idx in np.asarray(draws)]
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
              resamples: int = RESAMPLES, level: float = LEVEL) -> Bootstrap:
    """Point figures (``figures[system]`` on all ``units``) and replicates on one shared draw."""
    draws = resample_indices(units, resamples, seed)
    everything = np.arange(units)
    return Bootstrap(point={s: _numeric(f(everything)) for s, f in figures.items()},
                     replicates={s: replicates(f, draws) for s, f in figures.items()}, level=level)
