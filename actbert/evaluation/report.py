"""The model's report card: Plotly figures of an ``evaluate`` result and of the training curves,
and ``actbert evaluate --report DIR``'s page (``DIR/report.html``, one self-contained HTML file:
plotly.js is inlined, so it opens offline).

Figures (pure functions of the result dictionary and the ``train.jsonl`` records; the explorer's
Model page draws the same ones):

- ``task_figure``: per task, grouped bars (one per system) per metric, the 95% bootstrap interval
  of ``ci[task][system][metric]`` as error bars; metrics on other scales (median rank, CIDEr-D) get
  their own panel (``result_table``).
- The paper's numbers (``PAPER``, section 4.2; Tables 1-5) are drawn as reference marks only when
  the result is on the benchmark they were measured on (``info["dataset"]`` names it). On any other
  corpus (SynthKitchen, a user's library) they are not comparable: the page lists them in a table
  headed so, and the charts carry no reference line.
- ``attribution_figures``: the ``attribution`` entry (``evaluate --tasks attribution``): the
  mean faithfulness per layer x head and the score lost when each stream is removed.
- ``curves_figure``: every loss term of ``train.jsonl`` against the step (match with its chance
  level ln 2), as ``curves.plot_losses`` draws the PNG.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..pretraining.curves import TERMS, read_log, run_files
from .result_table import bars, metrics_of, panels_of, task_tables

REPORT_NAME = "report.html"

# ActBERT's own figures in the paper (section 4.2, Tables 1-5), by benchmark, task, system, metric.
PAPER: dict[str, dict[str, dict[str, dict[str, float]]]] = {
    "youcook2": {
        "retrieval": {"actbert": {"r1": 9.6, "r5": 26.7, "r10": 38.0, "median_rank": 19}},
        "captioning": {"actbert": {"bleu3": 8.66, "bleu4": 5.41, "meteor": 13.30,
                                   "rouge_l": 30.56, "cider": 0.65}}},
    "msrvtt": {
        "retrieval": {"actbert": {"r1": 8.6, "r5": 23.4, "r10": 33.1, "median_rank": 36}},
        "videoqa": {"actbert": {"accuracy": 48.6}}},
    "coin": {"segmentation": {"actbert": {"frame_accuracy": 56.95},
                              "actbert_no_regions": {"frame_accuracy": 52.10}}},
    "crosstask": {"step_localization": {"actbert": {"recall": 41.4},
                                        "actbert_no_regions": {"recall": 37.1}}},
}
BENCHMARKS = {"youcook2": "YouCook2", "msrvtt": "MSR-VTT", "coin": "COIN", "crosstask": "CrossTask"}
PAPER_SECTIONS = {"captioning": "4.2.2", "segmentation": "4.2.3", "step_localization": "4.2.4",
                  "retrieval": "4.2.5", "videoqa": "4.2.6"}
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


def benchmark_of(result: dict) -> str | None:
    """The paper benchmark the result was measured on (``info["dataset"]``), None for any other
    corpus (SynthKitchen, a user's library): the paper's numbers then do not apply."""
    dataset = str(result.get("info", {}).get("dataset") or "").lower().replace("-", "")
    return dataset if dataset in PAPER else None


def paper_references(task: str, benchmark: str | None) -> dict[str, dict[str, float]]:
    """{system: {metric: paper value}} for a task measured on ``benchmark`` ({} when none)."""
    if benchmark is None:
        return {}
    return PAPER.get(benchmark, {}).get(task, {})  # retrieval_visual_only: none


def paper_rows() -> list[dict]:
    """Every paper number as a row: task, benchmark, system, metric, value, section."""
    return [{"task": task, "benchmark": BENCHMARKS[bench], "system": system, "metric": metric,
             "value": value, "section": PAPER_SECTIONS[task]}
            for bench, tasks in PAPER.items() for task, systems in tasks.items()
            for system, figures in systems.items() for metric, value in figures.items()]


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
    """The ``attribution`` entry of a result (``attribution_summary``): the mean faithfulness per
    layer x head (Spearman, -1..1; blank: no pair defines the cell) and the mean drop of the match
    probability and of the cosine when each stream is removed, with 95% intervals."""
    from .attribution_summary import AttributionSummary

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


def difference_rows(result: dict, task: str) -> list[dict]:
    """The paired differences of a task: pair, metric, value, interval, and whether the interval
    lies above 0, below 0 or includes it."""
    rows = []
    for pair, figures in result.get("differences", {}).get(task, {}).items():
        intervals = result.get("ci", {}).get(task, {}).get(f"diff:{pair}", {})
        for metric, value in figures.items():
            low_high = intervals.get(metric)
            verdict = ("" if not low_high else "above 0" if low_high[0] > 0
                       else "below 0" if low_high[1] < 0 else "includes 0")
            rows.append({"pair": pair, "metric": metric, "value": value, "interval": low_high,
                         "verdict": verdict})
    return rows


def subtitle_of(result: dict) -> str:
    info = result.get("info", {})
    if "split" not in info:
        return ""
    return f"split {info['split']}, {info.get('videos', '?')} videos, {info.get('clips', '?')} clips"


# ---- the HTML page ------------------------------------------------------------------------------

@dataclass
class TrainingRun:
    """What a model's training left beside it (``curves.run_files``): its label on the page, the
    checkpoint, the ``train.jsonl`` records and ``train_config.json`` (None when absent)."""

    label: str
    checkpoint: str
    records: list[dict] = field(default_factory=list)
    config: dict | None = None
    log_path: str | None = None


def training_run(label: str, checkpoint: str | Path) -> TrainingRun:
    """A checkpoint's training outputs (``curves.run_files``) read into a ``TrainingRun``."""
    files = run_files(checkpoint)
    log_path = files.get("train.jsonl")
    config = files.get("train_config.json")
    return TrainingRun(label, str(checkpoint), read_log(log_path) if log_path else [],
                       json.loads(config.read_text()) if config else None,
                       str(log_path) if log_path else None)


def _fmt(value) -> str:
    if value is None:
        return "—"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def _interval(value) -> str:
    return f"[{value[0]:.2f}, {value[1]:.2f}]" if value else "—"


def _table(header: list[str], rows: list[list[str]], cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


class _Figures:
    """Collects the page's figures: a div each, their JSON in a script tag read by the loader."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, name: str, fig: go.Figure) -> str:
        self.count += 1
        ident = f"fig-{self.count}"
        spec = json.dumps(json.loads(fig.to_json()), separators=(",", ":")).replace("</", "<\\/")
        return (f'<div class="figure" id="{ident}" data-figure="{html.escape(name)}"></div>\n'
                f'<script type="application/json" class="figure-data" data-for="{ident}" '
                f'data-figure="{html.escape(name)}">{spec}</script>')


STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;
padding:0 1rem;color:#222}h1{margin-bottom:.2rem}h2{margin-top:2.5rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem}td,th{border:1px solid #ddd;
padding:.25rem .6rem;text-align:left}th{background:#f4f4f4}pre{background:#f6f8fa;padding:.8rem;
overflow-x:auto;font-size:.85rem;white-space:pre-wrap}.muted{color:#666}.above{color:#1a7f37}
.below{color:#cf222e}.warn{background:#fff8c5;padding:.6rem;border:1px solid #e3c000}
"""
LOADER = """
document.querySelectorAll('script.figure-data').forEach(function (node) {
  var spec = JSON.parse(node.textContent);
  Plotly.newPlot(node.dataset.for, spec.data, spec.layout, {responsive: true, displaylogo: false});
});
"""


def _header(result: dict, tables: dict, benchmark: str | None, timestamp: str) -> list[str]:
    """The title line, whether the paper's numbers apply, and the tasks' navigation."""
    info = result.get("info", {})
    esc = html.escape
    parts = [f"<h1>ActBERT report card</h1><p class='muted'>{esc(subtitle_of(result))} · "
             f"model <code>{esc(str(info.get('checkpoint', '?')))}</code> · ablation "
             f"<code>{esc(str(info.get('ablation_checkpoint') or 'none (regions removed)'))}</code>"
             f" · written {esc(timestamp)}</p>"]
    if benchmark:
        parts.append(f"<p>Measured on <b>{BENCHMARKS[benchmark]}</b>: the paper's numbers on it "
                     "are drawn as black marks (<i>paper: actbert</i>) beside ours.</p>")
    else:
        parts.append(
            "<p class='warn'>This corpus is not one of the paper's benchmarks (YouCook2, MSR-VTT, "
            "COIN, CrossTask), so the charts carry no paper reference line: the paper's numbers "
            "were measured on other videos, other annotations and other scales of data, and are "
            "<b>not comparable</b>. They are listed at the end for orientation only.</p>")
    parts.append("<nav><b>Tasks:</b> " + " · ".join(
        f"<a href='#task-{esc(t)}'>{esc(t.replace('_', ' '))}</a>" for t in tables)
        + (" · <a href='#attribution'>attribution</a>" if result.get("attribution") else "")
        + " · <a href='#training'>training</a> · <a href='#commands'>commands</a> · "
          "<a href='#notes'>notes</a></nav>")
    return parts


def _task_section(result: dict, task: str, table: dict, benchmark: str | None,
                  figure: _Figures) -> list[str]:
    """One task: its heading, bootstrap and timing line, chart, values and paired differences."""
    esc = html.escape
    ci = result.get("ci", {}).get(task, {})
    timing = result.get("timings_s", {}).get(task)
    resampled = result.get("info", {}).get("bootstrap", {}).get("resampled", {}).get(task)
    parts = [f"<h2 id='task-{esc(task)}'>{esc(task.replace('_', ' '))}</h2>"]
    parts.append("<p class='muted'>" + esc(
        (f"95% percentile bootstrap over {resampled}" if resampled
         else "no confidence intervals (corpus-level scores)")
        + (f" · {timing:.1f} s" if timing is not None else "")) + "</p>")
    parts.append(figure(task, task_figure(task, table, ci, paper_references(task, benchmark),
                                          subtitle_of(result))))
    parts.append(_table(["system", "metric", "value", "95% interval"], [
        [f"<code>{esc(r['system'])}</code>", esc(r["metric"]), _fmt(r["value"]),
         _interval(r["interval"])] for r in interval_rows(table, ci)], "values"))
    diffs = difference_rows(result, task)
    if diffs:
        parts.append(_table(["difference", "metric", "value", "95% interval", "interval"], [
            [f"<code>{esc(r['pair'])}</code>", esc(r["metric"]), _fmt(r["value"]),
             _interval(r["interval"]),
             f"<span class='{r['verdict'].split(' ')[0]}'>{esc(r['verdict'])}</span>"]
            for r in diffs], "differences"))
    return parts


def _attribution_section(result: dict, figure: _Figures) -> list[str]:
    """What the matching score depends on (``attribution_summary``): the faithfulness grid and
    the stream removals, with the sampled pairs' count."""
    from .attribution_summary import AttributionSummary

    entry = result.get("attribution")
    if not entry:
        return []
    esc = html.escape
    summary = AttributionSummary.from_json(entry)
    grid, drops = attribution_figures(entry)
    low_high = summary.grid_range
    parts = ["<h2 id='attribution'>attribution</h2>",
             f"<p class='muted'>{esc(summary.system)} on {summary.pairs} of {summary.of_pairs} "
             f"(step description, true clip) pairs (seed {summary.seed}) · head faithfulness "
             + (f"{low_high[0]:+.2f} .. {low_high[1]:+.2f}" if low_high else "undefined")
             + f" · the match depends most on <b>{esc(str(summary.depends_most))}</b></p>",
             figure("attribution:streams", drops), figure("attribution:faithfulness", grid)]
    rows = [[esc(signal), esc(stream), _fmt(value), _interval(summary.stream_ci[signal][stream]),
             str(summary.stream_pairs[stream])]
            for signal, by_stream in summary.stream_drop.items() for stream, value in by_stream.items()]
    parts.append(_table(["signal", "stream removed", "mean drop", "95% interval", "pairs"], rows,
                        "attribution"))
    return parts


def _training_section(runs: list[TrainingRun], figure: _Figures) -> list[str]:
    """Each training run's loss curves (or why there are none)."""
    esc = html.escape
    parts = ["<h2 id='training'>Training</h2>"]
    for run in runs:
        parts.append(f"<h3>{esc(run.label)}: <code>{esc(run.checkpoint)}</code></h3>")
        if run.records:
            parts.append(figure(f"curves:{run.label}", curves_figure(
                run.records, f"{run.label}: pretraining losses ({len(run.records)} logged steps, "
                             f"from {run.log_path})")))
        else:
            parts.append("<p class='muted'>No train.jsonl beside this checkpoint or its run folder "
                         "(a model shipped before `actbert ship` copied it, or trained elsewhere).</p>")
    if not runs:
        parts.append("<p class='muted'>No training run recorded.</p>")
    return parts


def _commands_section(command: str, runs: list[TrainingRun]) -> list[str]:
    """The evaluation's command and each run's ``train_config.json``."""
    esc = html.escape
    parts = ["<h2 id='commands'>Commands</h2><p>The evaluation:</p>"
             f"<pre class='command'>{esc(command)}</pre>"]
    for run in runs:
        if run.config is not None:
            parts.append(f"<p>{esc(run.label)}: <code>train_config.json</code> (the options of "
                         f"<code>actbert train</code>):</p><pre class='train-config'>"
                         f"{esc(json.dumps(run.config, indent=1))}</pre>")
    return parts


def _closing_sections(result: dict, benchmark: str | None) -> list[str]:
    """The notes, the paper's numbers (headed as not comparable off its benchmarks) and the JSON."""
    esc = html.escape
    return [
        "<h2 id='notes'>Notes</h2><ul class='notes'>" + "".join(
            f"<li>{esc(str(n))}</li>" for n in result.get("notes", [])) + "</ul>",
        "<h2 id='paper'>The paper's numbers</h2><p class='muted'>ActBERT (Zhu & Yang, "
        "CVPR 2020), section 4.2, Tables 1-5, on its benchmarks"
        + ("" if benchmark else ": <b>not comparable</b> with this corpus") + ".</p>",
        _table(["task", "benchmark", "system", "metric", "paper", "section"], [
            [esc(r["task"]), esc(r["benchmark"]), f"<code>{esc(r['system'])}</code>", esc(r["metric"]),
             f"{r['value']:g}", r["section"]] for r in paper_rows()], "paper"),
        "<details><summary>The result JSON</summary><pre>"
        f"{esc(json.dumps(result, indent=1))}</pre></details>"]


def report_html(result: dict, command: str, runs: list[TrainingRun] | None = None,
                timestamp: str | None = None, plotly_js: str | None = None) -> str:
    """The report page as one HTML string (plotly.js inlined unless ``plotly_js`` is given)."""
    if plotly_js is None:
        from plotly.offline import get_plotlyjs

        plotly_js = get_plotlyjs()
    timestamp = timestamp or datetime.now(timezone.utc).isoformat(timespec="seconds")
    info = result.get("info", {})
    benchmark = benchmark_of(result)
    figure = _Figures()  # numbers the charts in page order: the tasks', then the curves
    esc = html.escape
    tables = task_tables(result)
    parts = _header(result, tables, benchmark, timestamp)
    for task, table in tables.items():
        parts += _task_section(result, task, table, benchmark, figure)
    parts += _attribution_section(result, figure)
    parts += _training_section(runs or [], figure)
    parts += _commands_section(command, runs or [])
    parts += _closing_sections(result, benchmark)
    body = "\n".join(parts)
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>ActBERT report card ({esc(str(info.get('split', '')))})</title>"
            f"<style>{STYLE}</style><script>{plotly_js}</script></head>\n<body>\n{body}\n"
            f"<script>{LOADER}</script>\n</body></html>\n")


def write_report(result: dict, directory: str | Path, command: str,
                 runs: list[TrainingRun] | None = None) -> Path:
    """Write ``DIR/report.html`` atomically; returns its path."""
    from ..atomic import atomic_write

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    page = report_html(result, command, runs)
    path = directory / REPORT_NAME
    atomic_write(path, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return path
