"""The model's report card: ``actbert evaluate --report DIR``'s page (``DIR/report.html``, one
self-contained HTML file: plotly.js is inlined, so it opens offline) of an ``evaluate`` result and
the training runs of its models.

The page draws the result's figures (``figures``, which the explorer's Model page draws too): a
chart, the values with their 95% intervals and the paired differences per task, the attribution
analysis, each run's training curves, the commands, the notes and the result JSON. The paper's
numbers (``benchmarks.paper``) are drawn as reference marks only when the result is on the
benchmark they were measured on (``EvaluationResult.dataset`` names it). On any other corpus (SynthKitchen,
a user's library) they are not comparable: the page lists them in a table headed so, and the
charts carry no reference line.
"""

from __future__ import annotations

import html
import json
from datetime import datetime, timezone
from pathlib import Path

import plotly.graph_objects as go

from ..atomic import atomic_write
from ..benchmarks.paper import benchmark_of, paper_references, paper_rows
from ..benchmarks.registry import BENCHMARKS
from ..evaluation.attribution_summary import AttributionSummary
from ..evaluation.result import EvaluationResult
from ..pretraining.curves import TrainingRun
from .figures import (attribution_figures, curves_figure, difference_rows, interval_rows, subtitle_of,
                      task_figure)

REPORT_NAME = "report.html"


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


def _header(result: EvaluationResult, tables: dict, benchmark: str | None, timestamp: str) -> list[str]:
    """The title line, whether the paper's numbers apply, and the tasks' navigation."""
    esc = html.escape
    checkpoint = "?" if result.checkpoint is None else result.checkpoint
    parts = [f"<h1>ActBERT report card</h1><p class='muted'>{esc(subtitle_of(result))} · "
             f"model <code>{esc(str(checkpoint))}</code> · ablation "
             f"<code>{esc(str(result.ablation_checkpoint or 'none (regions removed)'))}</code>"
             f" · written {esc(timestamp)}</p>"]
    if benchmark:
        parts.append(f"<p>Measured on <b>{BENCHMARKS[benchmark].title}</b>: the paper's numbers on it "
                     "are drawn as black marks (<i>paper: actbert</i>) beside ours.</p>")
    else:
        parts.append(
            "<p class='warn'>This corpus is not one of the paper's benchmarks (YouCook2, MSR-VTT, "
            "COIN, CrossTask), so the charts carry no paper reference line: the paper's numbers "
            "were measured on other videos, other annotations and other scales of data, and are "
            "<b>not comparable</b>. They are listed at the end for orientation only.</p>")
    parts.append("<nav><b>Tasks:</b> " + " · ".join(
        f"<a href='#task-{esc(t)}'>{esc(t.replace('_', ' '))}</a>" for t in tables)
        + (" · <a href='#attribution'>attribution</a>" if result.attribution else "")
        + " · <a href='#training'>training</a> · <a href='#commands'>commands</a> · "
          "<a href='#notes'>notes</a></nav>")
    return parts


def _task_section(result: EvaluationResult, task: str, table: dict, benchmark: str | None,
                  figure: _Figures) -> list[str]:
    """One task: its heading, bootstrap and timing line, chart, values and paired differences."""
    esc = html.escape
    ci = result.intervals(task)
    timing = result.timing(task)
    resampled = result.resampled(task)
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


def _attribution_section(result: EvaluationResult, figure: _Figures) -> list[str]:
    """What the matching score depends on (``evaluation.attribution_summary``): the faithfulness
    grid and the stream removals, with the sampled pairs' count."""
    entry = result.attribution
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


def _closing_sections(result: EvaluationResult, benchmark: str | None) -> list[str]:
    """The notes, the paper's numbers (headed as not comparable off its benchmarks) and the JSON."""
    esc = html.escape
    return [
        "<h2 id='notes'>Notes</h2><ul class='notes'>" + "".join(
            f"<li>{esc(str(n))}</li>" for n in result.notes) + "</ul>",
        "<h2 id='paper'>The paper's numbers</h2><p class='muted'>ActBERT (Zhu & Yang, "
        "CVPR 2020), section 4.2, Tables 1-5, on its benchmarks"
        + ("" if benchmark else ": <b>not comparable</b> with this corpus") + ".</p>",
        _table(["task", "benchmark", "system", "metric", "paper", "section"], [
            [esc(r["task"]), esc(r["benchmark"]), f"<code>{esc(r['system'])}</code>", esc(r["metric"]),
             f"{r['value']:g}", r["section"]] for r in paper_rows()], "paper"),
        "<details><summary>The result JSON</summary><pre>"
        f"{esc(json.dumps(result.to_json(), indent=1))}</pre></details>"]


def report_html(result: EvaluationResult, command: str, runs: list[TrainingRun] | None = None,
                timestamp: str | None = None, plotly_js: str | None = None) -> str:
    """The report page as one HTML string (plotly.js inlined unless ``plotly_js`` is given)."""
    if plotly_js is None:
        from plotly.offline import get_plotlyjs

        plotly_js = get_plotlyjs()
    timestamp = timestamp or datetime.now(timezone.utc).isoformat(timespec="seconds")
    benchmark = benchmark_of(result.dataset)
    figure = _Figures()  # numbers the charts in page order: the tasks', then the curves
    esc = html.escape
    tables = result.task_tables()
    parts = _header(result, tables, benchmark, timestamp)
    for task, table in tables.items():
        parts += _task_section(result, task, table, benchmark, figure)
    parts += _attribution_section(result, figure)
    parts += _training_section(runs or [], figure)
    parts += _commands_section(command, runs or [])
    parts += _closing_sections(result, benchmark)
    body = "\n".join(parts)
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>ActBERT report card ({esc(str(result.split or ''))})</title>"
            f"<style>{STYLE}</style><script>{plotly_js}</script></head>\n<body>\n{body}\n"
            f"<script>{LOADER}</script>\n</body></html>\n")


def write_report(result: EvaluationResult, directory: str | Path, command: str,
                 runs: list[TrainingRun] | None = None) -> Path:
    """Write ``DIR/report.html`` atomically; returns its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    page = report_html(result, command, runs)
    path = directory / REPORT_NAME
    atomic_write(path, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return path
