"""``EvaluationResult``, the typed seam over ``actbert evaluate``'s JSON: every shipped evaluation
reads and writes back unchanged (same keys, order, values and bytes), the accessors answer what the
JSON paths hold, a malformed file is a one-line error, and the readers render a shipped result as
they did when they navigated the dictionary by strings."""

import dataclasses
import hashlib
import html
import json
from pathlib import Path

import pytest

from actbert.cli.evaluate import _table
from actbert.evaluation.known_limits import markdown_lines
from actbert.evaluation.result import EvaluationFormatError, EvaluationResult, Provenance
from actbert.reporting.report import report_html

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = sorted({*ROOT.glob("assets/**/evaluation_*.json"), *ROOT.glob("assets/**/eval_*.json")})
DEMO = ROOT / "assets" / "demo" / "eval_test.json"


def test_the_shipped_evaluations_are_found():
    names = {p.relative_to(ROOT).as_posix() for p in SHIPPED}
    assert {"assets/demo/eval_test.json", "assets/demo/actbert/evaluation_test.json"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_a_shipped_evaluation_round_trips_byte_for_byte(path):
    text = path.read_text()
    data = json.loads(text)
    result = EvaluationResult.from_json(data)
    out = result.to_json()
    assert out == data and list(out) == list(data)
    assert text in (json.dumps(out) + "\n", json.dumps(out, indent=1) + "\n")  # --json; the record
    # Built rather than read (as ``evaluate`` and ``write_evaluation`` build it): the same order.
    built = dataclasses.replace(result, key_order=())
    assert json.dumps(built.to_json()) == json.dumps(data)
    assert set(result.tables) == {k for k, v in data.items()
                                  if k not in ("protocols", "ci", "differences", "timings_s", "notes",
                                               "info") and isinstance(v, dict)}


def test_the_accessors_answer_what_the_json_paths_hold():
    data = json.loads(DEMO.read_text())
    result = EvaluationResult.from_json(data)
    assert result.task_tables() == {t: data[t] for t in result.tables if data[t]}
    assert result.table("retrieval") == data["retrieval"] and result.table("no_such_task") == {}
    assert result.interval("retrieval", "actbert", "r1") == data["ci"]["retrieval"]["actbert"]["r1"]
    assert result.interval("captioning", "actbert", "meteor") is None  # corpus-level: no interval
    assert result.intervals("retrieval") == {s: v for s, v in data["ci"]["retrieval"].items()
                                             if not s.startswith("diff:")}
    assert result.paired_differences("retrieval") == data["differences"]["retrieval"]
    assert result.difference_intervals("retrieval", "actbert-bm25") == \
        data["ci"]["retrieval"]["diff:actbert-bm25"]
    assert result.protocol("videoqa", "actbert", "accuracy_linear") == "probe"
    assert result.timing("segmentation") == data["timings_s"]["segmentation"]
    assert result.resampled("retrieval") == data["info"]["bootstrap"]["resampled"]["retrieval"]
    assert (result.split, result.videos, result.clips, result.dataset) == \
        ("test", data["info"]["videos"], data["info"]["clips"], None)
    assert result.notes == data["notes"] and result.provenance == Provenance()
    record = EvaluationResult.from_json(json.loads((ROOT / "assets/demo/actbert/evaluation_test.json").read_text()))
    assert record.provenance.weights_sha256 and record.provenance.command.startswith("python -m actbert")


def test_a_partial_result_keeps_its_shape_and_unknown_keys():
    data = {"info": {"split": "val"}, "captioning": {"actbert": {"cider": 0.2, "meteor": None}},
            "later_key": [1, 2], "command": "cmd"}
    result = EvaluationResult.from_json(data)
    assert list(result.tables) == ["captioning"] and result.extra == {"later_key": [1, 2]}
    assert result.to_json() == data and list(result.to_json()) == list(data)  # no empty ci etc. added
    result.notes.append("a note")
    assert list(result.to_json()) == [*data, "notes"]


@pytest.mark.parametrize("value, problem", [
    ([1, 2], "a JSON list, not an object"),
    ({"retrieval": {}}, "no 'info' object"),
    ({"info": {}, "ci": [], "notes": "x"}, "'ci', 'notes' of the wrong type"),
])
def test_a_malformed_result_is_a_one_line_error(value, problem):
    with pytest.raises(EvaluationFormatError) as caught:
        EvaluationResult.from_json(value)
    assert str(caught.value) == f"not an `actbert evaluate` result: {problem}"


# sha256 of what the readers rendered from the stage-2 pair's shipped result (assets/demo/eval_test.json
# until 2026-12-07, kept as tests/fixtures/eval_test_2026-12-02.json) before the typed seam (the
# dictionary read by string keys). A deliberate change of the rendering updates these digests (the
# known limits: 2026-12-07, a hybrid row also answers to its own vector signal).
PINNED = ROOT / "tests" / "fixtures" / "eval_test_2026-12-02.json"
RENDERED = {
    "known limits": "c45937df1d9a47b65b9dbc32c7278b0d2d867193e72d6505e5445b8d396cadfc",
    "evaluate's table": "935bfc1ffdcf101ad290ed71369aa286242ad46559c3a0579706786c1d5cd901",
    "report card": "7693c5a48932be944bad579e73ff9049953c5f6e946d69806a7bf6ba7867a70e",
}


def test_the_readers_render_the_shipped_result_as_before():
    result = EvaluationResult.from_json(json.loads(PINNED.read_text()))
    rendered = {"known limits": "\n".join(markdown_lines(result)), "evaluate's table": _table(result),
                "report card": report_html(result, "cmd", timestamp="T", plotly_js="")}
    digests = {k: hashlib.sha256(v.encode()).hexdigest() for k, v in rendered.items()}
    assert digests == RENDERED
    assert html.escape(json.dumps(json.loads(PINNED.read_text()), indent=1)) in rendered["report card"]
