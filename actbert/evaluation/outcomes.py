"""One task's per-unit outcomes (``Outcomes``) and the figure functions the table and its
bootstrap share: a figure is recomputed from the outcomes of any multiset of units (a resample of
whole videos, ``intervals``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import chance
from .intervals import Figures
from .tasks import figures_from_ranks


@dataclass(frozen=True)
class Outcomes:
    """One task's per-unit outcomes: ``figures[system](unit indices)`` -> {metric: value}, the
    metrics of those units (repeats allowed), so the table and its bootstrap share one code path.
    ``videos[i]`` is the held-out video of unit i: the bootstrap resamples whole videos."""

    units: int
    unit: str                       # what a unit is: queries, videos, questions, clips, captions
    figures: dict[str, Figures]
    videos: np.ndarray              # (units,) video index of each unit
    fixed: dict[str, dict] = field(default_factory=dict)  # point figures without an interval

    def __post_init__(self) -> None:
        if len(self.videos) != self.units:
            raise ValueError(f"{len(self.videos)} video labels for {self.units} {self.unit}")


def over(outcomes: dict[str, object], summary) -> Figures:
    """figures(idx) = {metric: summary(outcome[idx])} for per-unit outcome arrays."""
    return lambda idx: {m: summary(np.asarray(o)[idx]) for m, o in outcomes.items()}


def percent(outcomes: np.ndarray) -> float:
    """Mean of per-unit outcomes in percent: right (1) / wrong (0), or chance's probabilities."""
    outcomes = np.asarray(outcomes, np.float64)
    if outcomes.size == 0:
        raise ValueError("no items to evaluate")
    return 100.0 * float(outcomes.mean())


def constant(figures: dict[str, float]) -> Figures:
    """A chance row that is the same on every resample (it depends on no unit's outcome)."""
    return lambda idx: dict(figures)


def ranked(ranks: dict[str, dict[str, np.ndarray]], rows: list[int], videos: np.ndarray,
            clips: int | None = None) -> Outcomes:
    """Retrieval outcomes of the queries ``rows``: per system {suffix: (Q,) ranks}; ``videos``:
    the video of every query; ``clips``: the searched clips, for the ``random`` row (chance's
    expectation, ``chance.retrieval_figures``; None: no random row)."""
    chance_row = {} if clips is None else {
        "random": constant(chance.retrieval_figures(clips, len(rows)))}
    def figures(by_suffix: dict[str, np.ndarray]) -> Figures:
        return lambda idx: {f"{m}{suffix}": v for suffix, r in by_suffix.items()
                            for m, v in figures_from_ranks(r[idx]).items()}
    return Outcomes(len(rows), "queries", {**{system: figures({k: r[rows] for k, r in by_suffix.items()})
                                              for system, by_suffix in ranks.items()}, **chance_row},
                    np.asarray(videos)[rows])
