"""The CrossTask readers on small files written here in the published format, and the ground truth
the step localisation recall reads."""

import numpy as np
import pytest

from actbert.benchmarks.annotations import BenchmarkFormatError
from actbert.benchmarks.crosstask import (crosstask_truth, load_crosstask_annotation,
                                          load_crosstask_annotations, load_crosstask_tasks)
from actbert.evaluation.metrics import step_localization_recall


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
