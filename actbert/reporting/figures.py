"""The figures of an ``evaluate`` result and of a training run, shared by the report card
(``report``) and the explorer's Model page: pure functions of the result (``EvaluationResult``)
and the ``train.jsonl`` records, returning Plotly figures or the rows of their tables.

- ``task_figure``: per task, grouped bars (one per system) per metric, the 95% bootstrap interval
  of ``EvaluationResult.intervals(task)`` as error bars; metrics on other scales (median rank,
  CIDEr-D) get their own panel (``evaluation.result_table``). The paper's numbers (``benchmarks.paper``) are
  drawn as reference marks when the caller passes them: only for a result on the benchmark they
  were measured on (``paper.paper_references``).
- ``attribution_figures``: the ``attribution`` entry (``evaluate --tasks attribution``): the
  mean faithfulness per layer x head and the score lost when each stream is removed.
- ``curves_figure``: every loss term of ``train.jsonl`` against the step (match with its chance
  level ln 2), as ``pretraining.curves.plot_losses`` draws the PNG.
- ``interval_rows``, ``difference_rows``: a task's figures and paired differences as table rows.
"""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..evaluation.attribution_summary import AttributionSummary
from ..evaluation.result import EvaluationResult
from ..evaluation.result_table import bars, metrics_of, panels_of
from ..pretraining.curves import TERMS

SYSTEM_ORDER = ("actbert", "actbert_no_regions", "bm25", "minilm", "random", "majority",
                "actbert_vector", "actbert_hybrid")
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#7f7f7f", "#9467bd", "#17becf", "#bcbd22",
           "#8c564b", "#e377c2")
PAPER_COLOUR = "#000000"


def system_colour(system: str) -> str:
    """The same colour for a system in every chart."""
    if system in SYSTEM_ORDER:
        return PALETTE[SYSTEM_ORDER.index(system)]
    return PALETTE[len(SYSTEM_ORDER) + sum(map(ord, system)) % (len(PALETTE) - len(SYSTEM_ORDER))]


def task_figure(task: str, table: dict, ci: dict, references: dict | None = None,
                subtitle: str = "") -> go.Figure:
    """Grouped bars per metric and system with the 95% intervals of ``ci`` (may be empty) as
    asymmetric error bars; ``references`` ({system: {metric: value}}) drawn as black marks named
    "paper: <system>". Each bar trace's ``meta`` holds its system and intervals."""
    metrics = metrics_of(table)
    panels = panels_of(metrics)
    fig = make_subplots(rows=1, cols=len(panels), column_widths=[len(p[2]) + 0.6 for p in panels],
                        horizontal_spacing=0.08 if len(panels) > 1 else 0.0)
    legend: set[str] = set()
    for col, (_, label, names) in enumerate(panels, start=1):
        for system in table:
            b = bars(table, ci, system, names)
            if not b.metrics:
                continue
            hover = [f"{system} · {m}: {v:.2f}" + (f" [{iv[0]:.2f}, {iv[1]:.2f}]" if iv else "")
                     for m, v, iv in zip(b.metrics, b.values, b.intervals)]
            fig.add_trace(go.Bar(
                x=b.metrics, y=b.values, name=system, legendgroup=system,
                showlegend=system not in legend, marker_color=system_colour(system),
                error_y={"type": "data", "symmetric": False, "array": b.plus,
                         "arrayminus": b.minus, "thickness": 1.2, "width": 3},
                hovertext=hover, hoverinfo="text",
                meta={"system": system, "intervals": [list(iv) if iv else None
                                                       for iv in b.intervals]}), row=1, col=col)
            legend.add(system)
        for system, figures in (references or {}).items():
            shown = [m for m in names if figures.get(m) is not None]
            if not shown:
                continue
            name = f"paper: {system}"
            fig.add_trace(go.Scatter(
                x=shown, y=[figures[m] for m in shown], mode="markers", name=name,
                legendgroup=name, showlegend=name not in legend,
                marker={"symbol": "line-ew-open", "size": 46, "color": PAPER_COLOUR,
                        "line": {"width": 3, "color": PAPER_COLOUR if system == "actbert"
                                 else system_colour(system)}},
                hovertext=[f"paper ({system}) · {m}: {figures[m]:g}" for m in shown],
                hoverinfo="text", meta={"paper": system}), row=1, col=col)
            legend.add(name)
        fig.update_yaxes(title_text=label, row=1, col=col, rangemode="tozero")
    title = f"{task.replace('_', ' ')}: per system, 95% bootstrap intervals"
    fig.update_layout(title={"text": title + (f"<br><sub>{subtitle}</sub>" if subtitle else "")},
                      barmode="group", height=420, legend={"title": {"text": "system"}},
                      margin={"t": 80, "b": 40, "l": 60, "r": 20}, template="plotly_white")
    return fig


def curves_figure(records: list[dict], title: str = "pretraining losses") -> go.Figure:
    """Every loss term of ``train.jsonl`` records against the step, one panel per term; the
    matching loss with its chance level ln 2 (dashed)."""
    terms = [t for t in TERMS if any(t in r for r in records)]
    if not terms:
        raise ValueError("no loss term in the training log")
    columns = min(3, len(terms))
    rows = math.ceil(len(terms) / columns)
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=terms,
                        vertical_spacing=0.18 if rows > 1 else 0.1)
    for i, term in enumerate(terms):
        row, col = i // columns + 1, i % columns + 1
        points = [(r["step"], r[term]) for r in records if term in r and "step" in r]
        fig.add_trace(go.Scatter(x=[s for s, _ in points], y=[v for _, v in points], mode="lines",
                                 name=term, showlegend=False, line={"width": 1.5}),
                      row=row, col=col)
        if term == "match":
            fig.add_hline(y=math.log(2), line={"dash": "dash", "color": "grey", "width": 1},
                          annotation_text="chance (ln 2)", annotation_font_size=10, row=row, col=col)
        fig.update_xaxes(title_text="step", row=row, col=col)
    fig.update_layout(title={"text": title}, height=260 * rows + 60, template="plotly_white",
                      margin={"t": 70, "b": 40, "l": 50, "r": 20})
    return fig


def attribution_figures(entry: dict) -> tuple[go.Figure, go.Figure]:
    """The ``attribution`` entry of a result (``evaluation.attribution_summary``): the mean faithfulness per
    layer x head (Spearman, -1..1; blank: no pair defines the cell) and the mean drop of the match
    probability and of the cosine when each stream is removed, with 95% intervals."""
    summary = AttributionSummary.from_json(entry)
    heads = max((len(row) for row in summary.grid), default=0)
    grid = go.Figure(go.Heatmap(
        z=[[None if v is None else v for v in row] for row in summary.grid],
        x=[f"head {h}" for h in range(heads)], y=summary.blocks, zmin=-1.0, zmax=1.0,
        colorscale="RdBu", colorbar={"title": {"text": "Spearman"}},
        hovertemplate="%{y} · %{x}: %{z:.2f}<extra></extra>"))
    rollout = "undefined" if summary.rollout is None else f"{summary.rollout:+.2f}"
    grid.update_layout(
        title={"text": f"faithfulness per layer x head: attention vs occlusion, mean over "
                       f"{summary.pairs} pairs · rollout {rollout}"},
        height=max(260, 28 * len(summary.blocks) + 120), template="plotly_white",
        yaxis={"autorange": "reversed"}, margin={"t": 60, "b": 40, "l": 90, "r": 20})
    drops = make_subplots(rows=1, cols=2, subplot_titles=("match probability", "embedding cosine"))
    for col, signal in enumerate(("match", "similarity"), start=1):
        by_stream = summary.stream_drop[signal]
        streams = [k for k, v in by_stream.items() if v is not None]
        values = [by_stream[k] for k in streams]
        cis = [summary.stream_ci[signal].get(k) for k in streams]
        drops.add_trace(go.Bar(
            x=streams, y=values, showlegend=False,
            marker_color=["#d62728" if k == summary.depends_most and signal == "match" else "#1f77b4"
                          for k in streams],
            error_y={"type": "data", "symmetric": False,
                     "array": [max(c[1] - v, 0.0) if c else 0.0 for v, c in zip(values, cis)],
                     "arrayminus": [max(v - c[0], 0.0) if c else 0.0 for v, c in zip(values, cis)]},
            hovertext=[f"{k}: {v:.3f}" + (f" [{c[0]:.3f}, {c[1]:.3f}]" if c else "")
                       for k, v, c in zip(streams, values, cis)], hoverinfo="text"), row=1, col=col)
        drops.update_yaxes(title_text="mean drop (full - removed)", row=1, col=col)
    drops.update_layout(title={"text": f"score lost when a stream is removed · the match depends "
                                       f"most on {summary.depends_most}"},
                        height=360, template="plotly_white", margin={"t": 80, "b": 40, "l": 60, "r": 20})
    return grid, drops


def interval_rows(table: dict, ci: dict) -> list[dict]:
    """The task's table as rows: system, metric, value, interval ([low, high] or None)."""
    return [{"system": system, "metric": metric, "value": value,
             "interval": ci.get(system, {}).get(metric)}
            for system, figures in table.items() for metric, value in figures.items()]


def difference_rows(result: EvaluationResult, task: str) -> list[dict]:
    """The paired differences of a task: pair, metric, value, interval, and whether the interval
    lies above 0, below 0 or includes it."""
    rows = []
    for pair, figures in result.paired_differences(task).items():
        intervals = result.difference_intervals(task, pair)
        for metric, value in figures.items():
            low_high = intervals.get(metric)
            verdict = ("" if not low_high else "above 0" if low_high[0] > 0
                       else "below 0" if low_high[1] < 0 else "includes 0")
            rows.append({"pair": pair, "metric": metric, "value": value, "interval": low_high,
                         "verdict": verdict})
    return rows


def subtitle_of(result: EvaluationResult) -> str:
    if result.split is None:
        return ""
    return (f"split {result.split}, {_known(result.videos)} videos, "
            f"{_known(result.clips)} clips")


def _known(value) -> str:
    return "?" if value is None else str(value)
