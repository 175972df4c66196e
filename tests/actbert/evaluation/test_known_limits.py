"""Known limits generated from an evaluation JSON (``known_limits``), on a hand-made result whose
losses are known by construction, and the ``actbert evaluate-summary`` command."""

import json

from actbert.cli import main
from actbert.evaluation.known_limits import known_limits, markdown_lines
from actbert.evaluation.result import EvaluationResult

RESULT = {
    "retrieval": {
        "actbert": {"r1": 4.0, "r1_embedding": 7.0, "median_rank": 20.0},
        "actbert_no_regions": {"r1": 5.0, "r1_embedding": 6.0, "median_rank": 18.0},
        "actbert_vector": {"r1": 7.0, "median_rank": 14.0},
        "actbert_hybrid": {"r1": 6.5, "median_rank": 12.0},
        "bm25": {"r1": 10.0, "median_rank": 10.0},
        "random": {"r1": 0.5, "median_rank": 40.0}},
    "videoqa": {"actbert": {"accuracy": 80.0, "accuracy_linear": 70.0},
                "raw_features": {"accuracy_linear": 75.0},
                "dual_encoder": {"accuracy": 80.0}},
    "captioning": {"actbert": {"meteor": None, "cider": 0.5}, "random": {"meteor": None, "cider": 0.1}},
    "ci": {"retrieval": {"actbert": {"r1": [2.0, 6.0], "median_rank": [16.0, 23.0]},
                         "bm25": {"r1": [7.0, 14.0], "median_rank": [8.0, 12.0]},
                         "diff:actbert-bm25": {"r1": [-10.0, -2.0], "median_rank": [-1.0, 15.0]}}},
    "differences": {}, "notes": [], "timings_s": {}, "protocols": {},
    "info": {"split": "test", "videos": 66},
}
RECORDED = EvaluationResult.from_json(RESULT)


def test_every_lost_comparison_and_only_those():
    found = {(x.task, x.metric, x.system, x.opponent, x.opponent_metric) for x in known_limits(RECORDED)}
    assert found == {
        ("retrieval", "r1", "actbert", "actbert_no_regions", "r1"),
        ("retrieval", "r1", "actbert", "bm25", "r1"),
        ("retrieval", "median_rank", "actbert", "actbert_no_regions", "median_rank"),
        ("retrieval", "median_rank", "actbert", "bm25", "median_rank"),
        ("retrieval", "r1_embedding", "actbert", "bm25", "r1"),   # a variant against bm25's r1
        ("retrieval", "r1", "actbert_vector", "bm25", "r1"),
        ("retrieval", "median_rank", "actbert_vector", "bm25", "median_rank"),
        ("retrieval", "r1", "actbert_hybrid", "bm25", "r1"),
        ("retrieval", "median_rank", "actbert_hybrid", "bm25", "median_rank"),
        ("retrieval", "r1", "actbert_hybrid", "actbert_vector", "r1"),  # the fusion below its own vector
        ("videoqa", "accuracy_linear", "actbert", "raw_features", "accuracy_linear"),
        ("videoqa", "accuracy_linear", "actbert", "dual_encoder", "accuracy"),
    }  # not: r1_embedding vs the ablation (7 > 6), ties (80 = 80), wins, None, the ablation's rows,
    #      the vector row against the hybrid or the matching head (only a hybrid answers to its vector)


def test_figures_intervals_and_the_paired_verdict():
    losses = {(x.task, x.metric, x.system, x.opponent): x for x in known_limits(RECORDED)}
    r1 = losses[("retrieval", "r1", "actbert", "bm25")]
    assert (r1.value, r1.interval, r1.opponent_value, r1.opponent_interval) == (4.0, [2.0, 6.0], 10.0, [7.0, 14.0])
    assert r1.difference_interval == [-10.0, -2.0] and r1.clear
    rank = losses[("retrieval", "median_rank", "actbert", "bm25")]
    assert rank.lower_is_better and not rank.clear   # [-1, 15] includes 0
    variant = losses[("retrieval", "r1_embedding", "actbert", "bm25")]
    assert variant.opponent_interval == [7.0, 14.0] and variant.difference_interval is None
    lines = markdown_lines(RECORDED)
    assert lines[0].startswith("Comparisons the model loses (test split, 66 videos") and "12, 1 with" in lines[0]
    assert "- **retrieval · r1**: actbert 4.0 [2.0, 6.0] < bm25 10.0 [7.0, 14.0]; difference -6.0, " \
           "paired interval [-10.0, -2.0] (excludes 0)" in lines
    assert any("actbert 20.0 [16.0, 23.0] > bm25 10.0 [8.0, 12.0] (lower is better)" in line for line in lines)
    assert markdown_lines(EvaluationResult.from_json({
        "retrieval": {"actbert": {"r1": 9.0}, "bm25": {"r1": 1.0}}, "info": {"split": "val"}})) == \
        ["No comparison lost (val split)."]


def test_evaluate_summary_command(tmp_path, capsys):
    path = tmp_path / "evaluation_test.json"
    path.write_text(json.dumps(RESULT))
    assert main(["evaluate-summary", str(path)]) == 0
    assert capsys.readouterr().out.splitlines() == markdown_lines(RECORDED)
    assert main(["evaluate-summary", str(path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 12 and sum(r["clear"] for r in rows) == 1
    path.write_text("[1, 2]")
    assert main(["evaluate-summary", str(path)]) == 1
    assert capsys.readouterr().err == (f"error: {path}: not an `actbert evaluate` result: a JSON list, "
                                       "not an object\n")
