"""``actbert evaluate --plot DIR``: the result table as PNG bar charts, one per task.

Each chart groups the bars by metric (one bar per system), with the 95% bootstrap interval of
``ci`` as error bars. Metrics on other scales than percent get their own panel: median ranks
(1-based, lower is better) and CIDEr-D (raw).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)
import numpy as np  # noqa: E402

from ..evaluation.result import EvaluationResult  # noqa: E402
from ..evaluation.result_table import bars, metrics_of, panels_of  # noqa: E402


def _bars(ax, table: dict, ci: dict, metrics: list[str]) -> None:
    colour = {s: plt.get_cmap("tab10")(i % 10) for i, s in enumerate(table)}  # same in every panel
    systems = [s for s in table if any(table[s].get(m) is not None for m in metrics)]
    width = 0.8 / max(len(systems), 1)
    x = np.arange(len(metrics))
    for i, system in enumerate(systems):
        b = bars(table, ci, system, metrics)
        spots = [x[metrics.index(m)] - 0.4 + width * (i + 0.5) for m in b.metrics]
        ax.bar(spots, b.values, width, yerr=[b.minus, b.plus], capsize=2, label=system,
               color=colour[system], error_kw={"elinewidth": 1})
    slanted = len(metrics) > 1 and max(len(m) for m in metrics) > 8
    ax.set_xticks(x, metrics, rotation=30 if slanted else 0, ha="right" if slanted else "center")
    ax.grid(axis="y", alpha=0.3)


def plot_task(task: str, table: dict, ci: dict, path: Path, subtitle: str = "") -> Path:
    """One PNG: grouped bars per metric and system, error bars from ``ci`` (may be empty)."""
    metrics = metrics_of(table)
    panels = panels_of(metrics)
    fig, axes = plt.subplots(1, len(panels), squeeze=False, figsize=(
        max(6.0, 1.1 * len(metrics) + 4.0), 4.5),
        gridspec_kw={"width_ratios": [len(p[2]) + 0.5 for p in panels]})
    for ax, (_, label, names) in zip(axes[0], panels):
        _bars(ax, table, ci, names)
        ax.set_ylabel(label)
        ax.set_xlabel("metric")
    handles = {h.get_label(): h for ax in axes[0] for h in ax.get_legend_handles_labels()[0]}
    fig.legend(handles.values(), handles.keys(), title="system", fontsize="small",
               loc="center right")
    fig.suptitle(f"{task.replace('_', ' ')}: per system, 95% bootstrap intervals"
                 + (f"\n{subtitle}" if subtitle else ""), fontsize="medium")
    fig.tight_layout(rect=(0, 0, 1 - 1.7 / fig.get_figwidth(), 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_result(result: EvaluationResult, directory: str | Path) -> list[Path]:
    """One ``<task>.png`` per task with figures in ``result``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    subtitle = f"split {result.split}, {result.videos} videos" if result.split is not None else ""
    return [plot_task(task, table, result.intervals(task), directory / f"{task}.png", subtitle)
            for task, table in result.task_tables().items()]
