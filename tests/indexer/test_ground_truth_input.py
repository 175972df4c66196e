"""Ground truth is somebody else's file (issue 29, item 2): a step whose verb is a list, a NaN
``start_sec``, JSON nested 100,000 deep, a task that is a number. Each is a warning naming the
file; the video itself is ingested (done, its clips indexed) and no stray feature file is left."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from indexer.features.video import write_video
from indexer.library.ingest import IngestSettings, ingest
from indexer.library.store import Library

GOOD_STEP = {"start_sec": 0.0, "end_sec": 1.0, "verb": "cut", "description": "cut the tomato"}
BAD_TRUTH = {
    "verb_list": json.dumps({"task": "salad", "steps": [{**GOOD_STEP, "verb": ["cut", "slice"]}]}),
    "nan_start": json.dumps({"task": "salad", "steps": [{**GOOD_STEP, "start_sec": float("nan")}]}),
    "deep": '{"task": "salad", "steps": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "task_number": json.dumps({"task": 7, "steps": [GOOD_STEP]}),
}


def test_bad_ground_truth_is_a_warning_naming_its_file(tmp_path):
    videos, truth = tmp_path / "corpus" / "videos", tmp_path / "corpus" / "ground_truth"
    videos.mkdir(parents=True)
    truth.mkdir()
    for n, name in enumerate([*BAD_TRUTH, "good"]):
        write_video(videos / f"{name}.mp4", [np.full((48, 64, 3), 40 * n, np.uint8)] * 8, fps=8)
        (truth / f"{name}.json").write_text(BAD_TRUTH.get(name) or json.dumps({"task": "salad", "steps": [GOOD_STEP]}))
    library = Library.create(tmp_path / "lib")
    summary = ingest(library, [videos], IngestSettings(action_weights="none", regions=False), progress=False)
    assert summary.failed == 0, summary.errors
    rows = {Path(r["path"]).stem: r for r in library.catalog.videos()}
    for name in BAD_TRUTH:
        row = rows[name]
        assert row["status"] == "done"
        warning = [w for w in json.loads(row["warnings"]) if "ground truth" in w]
        assert len(warning) == 1 and f"{name}.json" in warning[0] and "\n" not in warning[0], row["warnings"]
        assert library.catalog.steps_of(row["video_id"]) == [] and row["task"] is None
    assert [tuple(s)[1:4] for s in library.catalog.steps_of(rows["good"]["video_id"])] == [(0.0, 1.0, "cut")]
    assert sorted(p.stem for p in (library.root / "features").iterdir()) == sorted(r["video_id"] for r in rows.values())


@pytest.mark.parametrize("step, problem", [
    ((0, 0.0, 1.0, ["cut"], "cut"), "verb is a list"),
    ((0, float("nan"), 1.0, "cut", "cut"), "not finite"),
    ((0, 2.0, 1.0, "cut", "cut"), "in order"),
    ((True, 0.0, 1.0, "cut", "cut"), "whole number"),
    ((0, 0.0, 1.0, "cut", None), "description"),
])
def test_ground_truth_checks_its_steps(step, problem):
    from indexer.library.ground_truth import GroundTruth, GroundTruthError

    with pytest.raises(GroundTruthError, match=problem):
        GroundTruth(task="salad", task_instance="a", split="train", steps=(step,))


def test_json_nesting_is_bounded_before_parsing(tmp_path):
    from indexer.library.ground_truth import GroundTruthError, read_json

    path = tmp_path / "deep.json"
    path.write_text('{"a": "[[[[ in a string", "b": ' + "[" * 40 + "]" * 40 + "}")
    with pytest.raises(GroundTruthError, match="deep.json unusable .nested deeper than 32"):
        read_json(path)
    path.write_text('{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ in a string", "b": [[1]]}')
    assert read_json(path)["b"] == [[1]]
