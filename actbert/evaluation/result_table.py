"""The table logic shared by the charts of an ``evaluate`` result (``actbert.reporting``: ``plot``,
PNG; ``figures``, Plotly): which panel (scale) each metric of a task table
(``EvaluationResult.task_tables``) belongs to, and the bars of one system with their 95% interval,
read from the task's intervals (``EvaluationResult.intervals``). Pure functions, no drawing."""

from __future__ import annotations

from dataclasses import dataclass

PANELS = (("percent", "percent (higher is better)"),
          ("rank", "median rank, 1-based (lower is better)"),
          ("cider", "CIDEr-D (higher is better)"))


def panel_of(metric: str) -> str:
    """The scale a metric is drawn on: ``percent``, ``rank`` (median ranks) or ``cider``."""
    if metric.startswith("median_rank"):
        return "rank"
    return "cider" if metric.startswith("cider") else "percent"


def metrics_of(table: dict) -> list[str]:
    """Every metric of a task table, in first-seen order."""
    return list(dict.fromkeys(m for figures in table.values() for m in figures))


def panels_of(metrics: list[str]) -> list[tuple[str, str, list[str]]]:
    """(panel, axis label, its metrics) for the panels that have metrics."""
    panels = [(name, label, [m for m in metrics if panel_of(m) == name]) for name, label in PANELS]
    return [p for p in panels if p[2]]


@dataclass(frozen=True)
class Bars:
    """One system's bars over some metrics: the metrics it has a value for, the values, and the
    distances from each value down to its interval's low end and up to its high end (0 without an
    interval), with the intervals themselves (None without one)."""

    system: str
    metrics: list[str]
    values: list[float]
    minus: list[float]
    plus: list[float]
    intervals: list[tuple[float, float] | None]


def bars(table: dict, ci: dict, system: str, metrics: list[str]) -> Bars:
    """``system``'s bars over ``metrics`` (those it has a value for), intervals from ``ci``
    (``ci[system][metric] = [low, high]``; may be empty)."""
    shown, values, minus, plus, intervals = [], [], [], [], []
    for metric in metrics:
        value = table.get(system, {}).get(metric)
        if value is None:
            continue
        interval = ci.get(system, {}).get(metric)
        low, high = interval if interval else (value, value)
        shown.append(metric)
        values.append(value)
        minus.append(max(value - low, 0.0))
        plus.append(max(high - value, 0.0))
        intervals.append((low, high) if interval else None)
    return Bars(system, shown, values, minus, plus, intervals)
