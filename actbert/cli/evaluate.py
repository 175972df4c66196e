"""The ``python -m actbert evaluate`` command: options -> ``EvalConfig``, the run, the printed table
(or JSON, or for ``--dataset`` the paper's tables, ``reporting.paper_tables``) and the files kept
beside the model (``evaluation.record``), the plots and the report card (``actbert.reporting``).
What is measured: ``actbert.evaluation.evaluate``. And ``evaluate-summary``: the comparisons a
recorded result loses (``evaluation.known_limits``)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from dataclasses import asdict
from pathlib import Path

from ..benchmarks.corpus import benchmark_corpus
from ..benchmarks.paper import paper_figures
from ..benchmarks.registry import BENCHMARKS
from ..device import checked_device
from ..evaluation.attribution_summary import AttributionSummary, table_lines
from ..evaluation.config import ANALYSES, BASELINES, RESULT_TASKS, TASKS
from ..evaluation.evaluate import EvalConfig, evaluate
from ..evaluation.intervals import RESAMPLES
from ..evaluation.known_limits import known_limits, markdown_lines
from ..evaluation.record import write_evaluation
from ..evaluation.result import EvaluationFormatError, EvaluationResult
from ..portable import library_of, portable_command, portable_path
from ..pretraining.curves import training_run
from ..reporting.paper_tables import paper_table
from .sources import add_source_args, checkpoints_from_args


def config_from_args(args: argparse.Namespace) -> EvalConfig:
    """Resolve the corpus and checkpoints (flags first, then the library's manifest); a
    ``--dataset`` evaluates its paper tasks (``BENCHMARK_TASKS``) without the narration baselines."""
    corpus, checkpoint, ablation = checkpoints_from_args(args)
    dataset = getattr(args, "dataset", None)
    device = checked_device(args.device)
    tasks = args.tasks.split(",") if args.tasks else BENCHMARKS[dataset].tasks if dataset else TASKS
    return EvalConfig(
        corpus=corpus, checkpoint=checkpoint, ablation_checkpoint=ablation, dataset=dataset,
        baselines=("random",) if dataset else BASELINES, finetuned=tuple(args.finetuned or ()),
        split=args.split, tasks=tuple(t.strip() for t in tasks if t.strip()),
        rerank_k=args.rerank_k, seed=args.seed,
        batch_size=args.batch_size or (64 if device == "cpu" else 512),
        max_train_clips=args.max_train_clips, caption_epochs=args.caption_epochs,
        caption_min_steps=args.caption_min_steps,
        meteor=not args.no_meteor, device=device, threads=args.threads, resamples=args.resamples,
        dual_encoder=args.dual_encoder, attribution_pairs=args.attribution_pairs,
        progress=not args.json and sys.stderr.isatty())


def _shown(value, interval=None) -> str:
    text = f"{value:.2f}" if isinstance(value, float) else str(value)
    return text + (f" [{interval[0]:.2f}, {interval[1]:.2f}]" if interval else "")


def _table(result: EvaluationResult) -> str:
    """The figures as text: a value and its 95% interval per metric, then the differences."""
    lines = []
    for task in RESULT_TASKS:
        if task not in result.tables:
            continue
        timing = result.timing(task)
        lines.append(f"{task}" + (f" ({timing:.1f} s)" if timing is not None else ""))
        ci = result.intervals(task)
        rows = [(s, f, ci.get(s, {})) for s, f in result.tables[task].items()]
        rows += [(f"{pair} (diff)", d, result.difference_intervals(task, pair))
                 for pair, d in result.paired_differences(task).items()]
        for system, figures, intervals in rows:
            shown = ", ".join(f"{k} {_shown(v, intervals.get(k))}" for k, v in figures.items())
            lines.append(f"  {system:<20} {shown}")
    if result.attribution is not None:
        lines += table_lines(AttributionSummary.from_json(result.attribution))
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)


def command_line(args: argparse.Namespace) -> str:
    """The command that ran: the argv ``actbert.cli.main`` recorded, else one rebuilt from the
    options (a caller that parsed its own arguments)."""
    argv = getattr(args, "argv", None)
    if argv is None:
        argv = ["evaluate"]
        for key, value in vars(args).items():
            if key in ("func", "argv", "command", "verbose") or value in (None, False):
                continue
            flag = "--" + key.replace("_", "-")
            if key == "no_meteor" or value is True:
                argv.append(flag)
            else:
                argv += [flag, str(value)]
    return shlex.join(["python", "-m", "actbert", *argv])


def _portable_run(run, library) -> object:
    """A training run as the report card shows it: its paths without this machine's folders."""
    config = None if run.config is None else {
        k: portable_path(v, library, k) if isinstance(v, str) else v for k, v in run.config.items()}
    return dataclasses.replace(
        run, checkpoint=portable_path(run.checkpoint, library, "checkpoint"), config=config,
        log_path=None if run.log_path is None else portable_path(run.log_path, library, "train-log"))


def _record(config: EvalConfig, result: EvaluationResult, command: str, corpus: str) -> str:
    """Keep the result beside the model (``evaluation.record``); returns a note."""
    try:
        path = write_evaluation(config.checkpoint, result, command, corpus)
    except OSError as exc:
        return f"evaluation not recorded beside the model: {exc}"
    return f"evaluation recorded in {path}"


def run_evaluate(args: argparse.Namespace) -> int:
    """``python -m actbert evaluate``: print the figures (a table, or one JSON object) and keep them
    beside the model (``CHECKPOINT/evaluation_<split>.json``); with ``--plot DIR`` also write one
    bar chart per task (PNG), with ``--report DIR`` the report page (``DIR/report.html``), and list
    their paths on stderr (with ``--json``) or stdout."""
    config = config_from_args(args)
    corpus = benchmark_corpus(config.dataset, args.annotations, args.features) if config.dataset \
        else None
    result = evaluate(config, corpus)
    if config.dataset:
        result.paper = paper_figures(config.dataset)
        if corpus.meta["missing_features"]:
            result.notes.append(f"{corpus.meta['missing_features']} {config.dataset} videos of "
                                   f"{args.annotations} have no feature file in {args.features}")
    # recorded and printed on the report card without this machine's folders (actbert.portable)
    library = getattr(args, "library", None) or library_of(config.checkpoint)
    command = portable_command(command_line(args), library)
    result.info = {k: portable_path(v, library, k.replace("_", "-")) if isinstance(v, str) else v
                   for k, v in result.info.items()}
    note = _record(config, result, command, portable_path(config.corpus, library, "corpus"))
    shown = []
    if args.plot:
        from ..reporting.plot import plot_result  # matplotlib: only when charts are asked for

        shown += [f"plot: {p}" for p in plot_result(result, args.plot)]
    if args.report:
        from ..reporting.report import write_report  # plotly: only when the page is asked for

        runs = [training_run("actbert", config.checkpoint)]
        if config.ablation_checkpoint:
            runs.append(training_run("actbert_no_regions", config.ablation_checkpoint))
        runs = [_portable_run(run, library) for run in runs]
        shown.append(f"report: {write_report(result, args.report, command, runs)}")
    result.notes.append(note)
    if shown:
        print("\n".join(shown), file=sys.stderr if args.json else sys.stdout)
    table = paper_table(result, config.dataset) if config.dataset else _table(result)
    print(json.dumps(result.to_json()) if args.json else table)
    sys.stdout.flush()
    return 0


def add_cli(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("evaluate", help="the paper's five evaluations on the held-out split, "
                                               "with baselines and the no-regions ablation")
    add_source_args(p)
    p.add_argument("--finetuned", nargs="+", metavar="DIR",
                   help="`actbert finetune` output folders: their rows (protocol finetuned)")
    p.add_argument("--dual-encoder", metavar="DIR",
                   help="an `actbert train-dual` folder: its rows (system dual_encoder) beside ActBERT")
    p.add_argument("--split", default="test", choices=["test", "val"])
    p.add_argument("--tasks", help=f"comma-separated subset of {','.join(TASKS)} (default: all; "
                                   "a --dataset's own tasks), and the analysis "
                                   f"{','.join(ANALYSES)}, run only when named")
    p.add_argument("--attribution-pairs", type=int, default=100,
                   help="attribution: a seeded sample of at most this many (query, clip) pairs")
    p.add_argument("--rerank-k", type=int, default=10, help="embedding top K reranked by matching")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, help="clips per forward (default: 64 on CPU, 512 on "
                                                  "a GPU)")
    p.add_argument("--max-train-clips", type=int, default=800,
                   help="train clips for the video QA probe and the captioner")
    p.add_argument("--caption-epochs", type=int, default=15)
    p.add_argument("--caption-min-steps", type=int, default=400,
                   help="a small captioning train set trains at least this many updates")
    p.add_argument("--no-meteor", action="store_true", help="skip METEOR (Java, ~10 s per system)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--threads", type=int, help="torch CPU threads (1 is fastest on a busy machine)")
    p.add_argument("--resamples", type=int, default=RESAMPLES,
                   help="bootstrap resamples of the 95%% confidence intervals")
    p.add_argument("--plot", metavar="DIR", help="also write each task's table as a PNG bar chart "
                                                 "with the intervals into DIR")
    p.add_argument("--report", metavar="DIR", help="also write the report card, one self-contained "
                                                   "HTML page (Plotly), as DIR/report.html")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_evaluate)


def add_summary_cli(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate-summary", help="list, from an evaluation JSON, every comparison the model loses")
    p.add_argument("evaluation", help="an `actbert evaluate --json` output or evaluation_<split>.json")
    p.add_argument("--json", action="store_true", help="one JSON list of the losses")
    p.set_defaults(func=run_summary)


def run_summary(args: argparse.Namespace) -> int:
    """``actbert evaluate-summary EVAL.json``: print the known limits (Markdown, or JSON)."""
    try:
        result = EvaluationResult.from_json(json.loads(Path(args.evaluation).read_text()))
    except EvaluationFormatError as exc:
        raise ValueError(f"{args.evaluation}: {exc}") from exc
    if args.json:
        print(json.dumps([{**asdict(x), "clear": x.clear} for x in known_limits(result)]))
    else:
        print("\n".join(markdown_lines(result)))
    return 0
