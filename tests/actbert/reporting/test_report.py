"""``actbert evaluate --report DIR`` (the report card page), the evaluation ``evaluate`` keeps beside
the model, and the training record ``actbert ship`` carries: the real commands on the synthetic
corpus, with a tiny model and its no-regions ablation trained for a few steps (random quality:
these test the plumbing and the figures, not the model)."""

import contextlib
import dataclasses
import hashlib
import html
import io
import json
import re
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from actbert.benchmarks.paper import PAPER
from actbert.cli import main
from actbert.evaluation.record import read_evaluations
from actbert.evaluation.result import EvaluationResult, Provenance
from actbert.pretraining.curves import read_log
from actbert.reporting.report import report_html
from tests.actbert.corpus_helpers import make_eval_corpus

pytestmark = pytest.mark.usefixtures("one_torch_thread")
# Kinds of table: intervals per query on two scales (retrieval: percent and median rank), per video
# (step_localization), a system beside the baselines (masked_action's majority). Captioning (no
# intervals, a None metric, CIDEr's own scale) trains two captioners: too slow here, see below.
TASKS = "retrieval,step_localization,masked_action"
FIGURE = re.compile(r'<script type="application/json" class="figure-data" data-for="([^"]+)" '
                    r'data-figure="([^"]+)">(.*?)</script>', re.S)


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    corpus = make_eval_corpus(root / "corpus", train_videos=4, test_videos=3)
    for name, extra in (("full", []), ("no_regions", ["--no-regions"])):
        code, _, err = run(["train", "--corpus", str(corpus), "--out", str(root / name), "--preset",
                            "tiny", "--steps", "5", "--batch-size", "2", "--clips-per-sample", "2",
                            "--log-every", "1", "--json", *extra])
        assert code == 0, err
    argv = ["evaluate", "--corpus", str(corpus), "--checkpoint", str(root / "full" / "last"),
            "--ablation-checkpoint", str(root / "no_regions" / "last"), "--tasks", TASKS,
            "--resamples", "40", "--no-meteor", "--caption-epochs", "2", "--threads", "1",
            "--report", str(root / "report"), "--json"]
    code, out, err = run(argv)
    assert code == 0, err
    page = (root / "report" / "report.html").read_text()
    return SimpleNamespace(root=root, argv=argv, result=json.loads(out), stderr=err, page=page,
                           figures={name: json.loads(spec) for _, name, spec in FIGURE.findall(page)})


def portable(argv: list[str]) -> str:
    """The command as recorded: each absolute path replaced by its option's placeholder (these
    folders hold no library.json, so nothing is relative to a library)."""
    shown = [f"<{argv[i - 1].lstrip('-')}>" if a.startswith("/") else a for i, a in enumerate(argv)]
    return " ".join(["python", "-m", "actbert", *shown])


def bar_values(spec: dict) -> dict[str, dict[str, tuple[float, float, float]]]:
    """{system: {metric: (value, low end, high end)}} read back from a figure's bar traces."""
    out: dict = {}
    for trace in spec["data"]:
        if trace["type"] != "bar":
            continue
        err = trace["error_y"]
        for metric, y, minus, plus in zip(trace["x"], trace["y"], err["arrayminus"], err["array"]):
            out.setdefault(trace["name"], {})[metric] = (y, y - minus, y + plus)
    return out


def test_report_page_draws_every_task_system_and_interval(evaluated):
    result, figures = evaluated.result, evaluated.figures
    tables = EvaluationResult.from_json(result).task_tables()
    assert set(tables) == set(TASKS.split(","))
    assert {n for n in figures if not n.startswith("curves:")} == set(tables)
    for task, table in tables.items():
        drawn = bar_values(figures[task])
        assert set(drawn) == set(table), task                # every system, no other
        ci = result["ci"].get(task, {})
        for system, figures_of in table.items():
            shown = {m: v for m, v in figures_of.items() if v is not None}
            assert set(drawn[system]) == set(shown), (task, system)
            for metric, value in shown.items():
                y, low, high = drawn[system][metric]
                assert y == pytest.approx(value)
                want = ci.get(system, {}).get(metric, [value, value])  # captioning: none
                assert (low, high) == pytest.approx(tuple(want), abs=1e-6), (task, system, metric)
    # Not a paper benchmark: no reference mark, and the page says why.
    assert not any(t.get("meta", {}).get("paper") for spec in figures.values() for t in spec["data"])
    assert "not comparable" in evaluated.page


def test_report_page_is_self_contained_with_curves_commands_and_notes(evaluated):
    page, root = evaluated.page, evaluated.root
    assert "plotly.js v" in page and "Plotly.newPlot" in page      # the library itself, inlined
    assert not re.search(r"<script[^>]+src=", page) and "<link" not in page
    command = portable(evaluated.argv)
    assert html.escape(command) in page and str(root) not in page
    for note in evaluated.result["notes"][:-1]:  # the last one is written after the page
        assert html.escape(note) in page
    for label, run_dir in (("actbert", "full"), ("actbert_no_regions", "no_regions")):
        records = read_log(root / run_dir / "train.jsonl")
        assert len(records) == 5
        traces = {t["name"]: t for t in evaluated.figures[f"curves:{label}"]["data"]}
        assert traces["total"]["x"] == [r["step"] for r in records]
        assert traces["total"]["y"] == pytest.approx([r["total"] for r in records])
        assert "match" in traces
    assert html.escape('"use_regions": false') in page  # the ablation's train_config.json
    assert f"report: {root / 'report' / 'report.html'}" in evaluated.stderr


def test_evaluation_is_kept_beside_the_model_with_its_command(evaluated):
    result, checkpoint = evaluated.result, evaluated.root / "full" / "last"
    path = checkpoint / "evaluation_test.json"
    record = json.loads(path.read_text())
    assert result["notes"][-1] == f"evaluation recorded in {path}"
    read = EvaluationResult.from_json(record)
    assert dataclasses.replace(read, provenance=Provenance()).to_json() == {
        **result, "notes": result["notes"][:-1]}
    assert set(record) - set(result) == set(Provenance.__dataclass_fields__)
    assert record["command"] == portable(evaluated.argv)
    assert "--corpus <corpus> --checkpoint <checkpoint>" in record["command"]
    assert datetime.fromisoformat(record["timestamp"]).tzinfo is not None
    weights = (checkpoint / "model.safetensors").read_bytes()
    assert record["weights_sha256"] == hashlib.sha256(weights).hexdigest()
    assert record["corpus"] == "<corpus>"
    assert {split: r.to_json() for split, r in read_evaluations(checkpoint).items()} == {"test": record}
    assert json.dumps(read.to_json(), indent=1) + "\n" == path.read_text()
    assert set(result) == {*TASKS.split(","), "ci", "differences", "timings_s", "notes", "info",
                           "protocols"}


def test_paper_numbers_are_drawn_only_on_their_benchmark(evaluated):
    """The same result labelled as measured on a benchmark gets the paper's marks on exactly the
    metrics and systems the paper reports there."""
    for benchmark, task in (("youcook2", "retrieval"), ("msrvtt", "retrieval"),
                            ("crosstask", "step_localization")):
        result = {**evaluated.result, "info": {**evaluated.result["info"], "dataset": benchmark}}
        page = report_html(EvaluationResult.from_json(result), "cmd", plotly_js="")
        spec = next(json.loads(s) for _, name, s in FIGURE.findall(page) if name == task)
        marks = {}
        for trace in spec["data"]:
            if trace["type"] == "scatter":
                assert trace["name"] == f"paper: {trace['meta']['paper']}"
                marks.setdefault(trace["meta"]["paper"], {}).update(zip(trace["x"], trace["y"]))
        assert marks == PAPER[benchmark][task], (benchmark, task)
        assert "not comparable</b> with this corpus" not in page
    # masked_action is not a paper task: never a mark.
    page = report_html(EvaluationResult.from_json({**evaluated.result, "info": {
        **evaluated.result["info"], "dataset": "youcook2"}}), "cmd", plotly_js="")
    spec = next(json.loads(s) for _, name, s in FIGURE.findall(page) if name == "masked_action")
    assert all(t["type"] == "bar" for t in spec["data"])


def test_a_table_without_intervals_is_drawn_without_error_bars():
    """A captioning table recorded without intervals (a benchmark record's shape), METEOR skipped
    (None), CIDEr-D raw."""
    table = {"actbert": {"bleu4": 3.0, "meteor": None, "cider": 0.2},
             "random": {"bleu4": 1.0, "meteor": None, "cider": 0.1}}
    result = {"captioning": table, "ci": {}, "differences": {}, "notes": [],
              "info": {"split": "test", "dataset": "youcook2"}}
    page = report_html(EvaluationResult.from_json(result), "cmd", plotly_js="")
    spec = next(json.loads(s) for _, name, s in FIGURE.findall(page) if name == "captioning")
    assert bar_values(spec) == {"actbert": {"bleu4": (3.0, 3.0, 3.0), "cider": (0.2, 0.2, 0.2)},
                                "random": {"bleu4": (1.0, 1.0, 1.0), "cider": (0.1, 0.1, 0.1)}}
    assert len({t["xaxis"] for t in spec["data"]}) == 2  # percent and CIDEr-D panels
    marks = {m: y for t in spec["data"] if t["type"] == "scatter" for m, y in zip(t["x"], t["y"])}
    paper = PAPER["youcook2"]["captioning"]["actbert"]
    assert marks == {m: paper[m] for m in ("bleu4", "meteor", "cider")}  # the table's metrics


def test_ship_carries_the_run_record(evaluated, tmp_path):
    from actbert.model import build_model

    run_dir = tmp_path / "run"
    build_model("mini").save_pretrained(run_dir / "last")
    names = ("train.jsonl", "train_config.json", "loss_curve.png")
    for name in names:  # a real run's record, beside the checkpoint's parent as train() leaves it
        (run_dir / name).write_bytes((evaluated.root / "full" / name).read_bytes())
    code, out, err = run(["ship", str(run_dir / "last"), str(tmp_path / "shipped"), "--json"])
    assert code == 0, err
    assert sorted(json.loads(out)["run_files"]) == sorted(names)
    for name in names:
        assert (tmp_path / "shipped" / name).read_bytes() == (run_dir / name).read_bytes()
    assert (tmp_path / "shipped" / "model.safetensors").is_file()
    # The shipped folder is itself a checkpoint whose record the report and the app find.
    from actbert.pretraining.curves import run_files

    assert run_files(tmp_path / "shipped") == {n: tmp_path / "shipped" / n for n in names}
    assert Path(run_files(run_dir / "last")["train.jsonl"]) == run_dir / "train.jsonl"
