"""The COIN reader on a small file written here in the published format."""

import json

import pytest

from actbert.benchmarks.annotations import BenchmarkFormatError
from actbert.benchmarks.coin import load_coin


COIN = {"database": {
    "-0og5UZyhd0": {"recipe_type": 45, "class": "BlowSugar", "subset": "training", "duration": 10.0,
                    "video_url": "https://www.youtube.com/embed/-0og5UZyhd0",
                    "annotation": [{"id": "81", "segment": [1.0, 3.0], "label": "melt sugar"},
                                   {"id": "82", "segment": [5.5, 7.0], "label": "blow the sugar"}]},
    "xyz": {"recipe_type": 3, "class": "MakeTea", "subset": "testing", "duration": 4.0,
            "annotation": [{"id": "7", "segment": [0.0, 2.0], "label": "boil water"}]},
}}


def test_coin(tmp_path):
    path = tmp_path / "COIN.json"
    path.write_text(json.dumps(COIN))
    videos = load_coin(path)
    assert list(videos) == ["-0og5UZyhd0", "xyz"]
    sugar = videos["-0og5UZyhd0"]
    assert (sugar.task, sugar.recipe_type, sugar.subset, sugar.duration_sec) == (
        "BlowSugar", 45, "training", 10.0)
    assert [(s.step_id, s.start_sec, s.end_sec, s.label) for s in sugar.segments] == [
        (81, 1.0, 3.0, "melt sugar"), (82, 5.5, 7.0, "blow the sugar")]
    # One frame per second: t = 0..9; frames at 1, 2, 3 are step 81; 6, 7 are step 82.
    assert sugar.frame_labels(fps=1.0).tolist() == [0, 81, 81, 81, 0, 0, 82, 82, 0, 0]
    assert sugar.frame_labels(fps=2.0, num_frames=4).tolist() == [0, 0, 81, 81]
    assert list(load_coin(path, subset="testing")) == ["xyz"]
    reversed_segment = [{"id": "1", "segment": [3, 1], "label": "x"}]
    broken = {"database": {"v": {**COIN["database"]["xyz"], "annotation": reversed_segment}}}
    path.write_text(json.dumps(broken))
    with pytest.raises(BenchmarkFormatError, match="ends before it starts"):
        load_coin(path)
    path.write_text(json.dumps({"videos": []}))
    with pytest.raises(BenchmarkFormatError, match="'database'"):
        load_coin(path)
