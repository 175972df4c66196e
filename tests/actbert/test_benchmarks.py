"""Benchmark annotation loaders: the real YouCook2 and MSR-VTT files in tests/fixtures, and small
CrossTask and COIN files written here in their published formats."""

import json

import numpy as np
import pytest

from actbert.evaluation.benchmarks import (
    BenchmarkFormatError,
    crosstask_truth,
    load_coin,
    load_crosstask_annotation,
    load_crosstask_annotations,
    load_crosstask_tasks,
    load_msrvtt_test,
    load_youcook2_annotations,
    load_youcook2_clips,
)
from actbert.evaluation.metrics import step_localization_recall


def test_youcook2_annotations_real_file(fixtures):
    videos = load_youcook2_annotations(fixtures / "youcook2" / "yc2_annotations_trainval.json")
    assert len(videos) == 1790
    assert sum(v.subset == "validation" for v in videos.values()) == 457
    video = videos["GLd3aX16zBg"]
    assert (video.duration_sec, video.subset, video.recipe_type) == (241.62, "training", "113")
    assert len(video.segments) == 5
    first = video.segments[0]
    assert (first.index, first.start_sec, first.end_sec) == (0, 90.0, 102.0)
    assert first.sentence == "spread margarine on two slices of white bread"


def test_youcook2_validation_clips_real_file(fixtures):
    folder = fixtures / "youcook2"
    clips = load_youcook2_clips(folder / "validation_youcook.csv")
    assert len(clips) == 3350
    first = clips[0]
    assert (first.video_id, first.start_sec, first.end_sec, first.task) == ("xHr8X2Wpmno", 47.0, 60.0, "226")
    assert first.text == "pick the ends off the verdalago"
    # Every clip is a step of a validation video of the annotations file.
    videos = load_youcook2_annotations(folder / "yc2_annotations_trainval.json")
    assert {videos[c.video_id].subset for c in clips} == {"validation"}


def test_msrvtt_1k_a_real_file(fixtures):
    captions = load_msrvtt_test(fixtures / "msrvtt" / "MSRVTT_JSFUSION_test.csv")
    assert len(captions) == 1000
    assert len({c.video_id for c in captions}) == 1000
    assert captions[0].key == "ret0" and captions[0].video_id == "video9770"
    assert captions[0].sentence == "a person is connecting something to system"
    assert captions[-1].video_id == "video9871"


def test_msrvtt_paddlevideo_two_column_format(tmp_path):
    path = tmp_path / "test.csv"
    path.write_text("video9770,a person is connecting something to system\n"
                    "video9771,a little girl does gymnastics\n")
    captions = load_msrvtt_test(path)
    assert [(c.key, c.video_id, c.sentence) for c in captions] == [
        ("0", "video9770", "a person is connecting something to system"),
        ("1", "video9771", "a little girl does gymnastics")]
    (tmp_path / "bad.csv").write_text("just one field\n")
    with pytest.raises(BenchmarkFormatError, match="video_id,sentence"):
        load_msrvtt_test(tmp_path / "bad.csv")


TASKS = """23521
Make Jello Shots
http://www.wikihow.com/Make-Jello-Shots
6
pour water,pour juice,pour jello powder,pour alcohol,stir mixture,pour mixture into cup

59684
Build Simple Floating Shelves
http://www.wikihow.com/Build-Simple-Floating-Shelves
5
cut shelve,assemble shelve,sand shelve,paint shelve,attach shelve

"""


@pytest.fixture()
def crosstask(tmp_path):
    (tmp_path / "tasks_primary.txt").write_text(TASKS)
    annotations = tmp_path / "annotations"
    annotations.mkdir()
    (annotations / "23521_6tvhTfJyqb0.csv").write_text("1,2.5,4.2\n5,6.0,7.0\n")
    (annotations / "59684_a_b_c.csv").write_text("2,0.0,1.0\n")   # a video id with underscores
    (annotations / "11111_other.csv").write_text("1,0,1\n")        # a task not in the file
    return tmp_path


def test_crosstask_tasks(crosstask):
    tasks = load_crosstask_tasks(crosstask / "tasks_primary.txt")
    assert list(tasks) == ["23521", "59684"]
    jello = tasks["23521"]
    assert jello.name == "Make Jello Shots" and jello.url.endswith("Make-Jello-Shots")
    assert jello.steps[0] == "pour water" and jello.steps[-1] == "pour mixture into cup"
    assert len(tasks["59684"].steps) == 5


def test_crosstask_annotations_and_truth(crosstask):
    tasks = load_crosstask_tasks(crosstask / "tasks_primary.txt")
    annotations = load_crosstask_annotations(crosstask / "annotations", tasks)
    assert set(annotations) == {("23521", "6tvhTfJyqb0"), ("59684", "a_b_c")}
    steps = annotations[("23521", "6tvhTfJyqb0")]
    assert [(s.step, s.start_sec, s.end_sec) for s in steps] == [(0, 2.5, 4.2), (4, 6.0, 7.0)]
    truth = crosstask_truth(steps, n_steps=6, num_seconds=9)
    expected = np.zeros((9, 6), bool)
    expected[2:5, 0] = True    # floor(2.5) .. ceil(4.2) - 1
    expected[6:7, 4] = True
    np.testing.assert_array_equal(truth, expected)
    # Scores that pick t=3 for step 0 (hit) and t=0 for step 4 (miss).
    scores = np.zeros((9, 6))
    scores[3, 0] = 1.0
    scores[0, 4] = 1.0
    assert step_localization_recall([("23521", scores, truth)]).per_task == {"23521": 50.0}


def test_crosstask_bad_files(tmp_path):
    (tmp_path / "tasks.txt").write_text("1\nname\nurl\n3\na,b\n")
    with pytest.raises(BenchmarkFormatError, match="declares 3 steps"):
        load_crosstask_tasks(tmp_path / "tasks.txt")
    (tmp_path / "1_v.csv").write_text("7,0,1\n")
    with pytest.raises(BenchmarkFormatError, match="outside 1..5"):
        load_crosstask_annotation(tmp_path / "1_v.csv", n_steps=5)
    (tmp_path / "2_v.csv").write_text("1;0;1\n")
    with pytest.raises(BenchmarkFormatError, match="step,start,end"):
        load_crosstask_annotation(tmp_path / "2_v.csv")


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
