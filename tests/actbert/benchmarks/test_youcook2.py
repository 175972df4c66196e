"""The YouCook2 readers on the real annotation and validation-clip files in tests/fixtures, and the
one annotation reader's leniency (the indexer's transcripts read YouCook2 files through it) beside
the benchmark loader's checks."""

import json

import pytest

from actbert.benchmarks.annotations import BenchmarkFormatError
from actbert.benchmarks.youcook2 import load_youcook2_annotations, load_youcook2_clips, parse_youcook2


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


def test_one_reader_takes_optional_fields_as_empty_and_the_benchmark_refuses_reversed_steps(tmp_path):
    data = {"database": {"v": {"duration": 9, "annotations": [
        {"id": 1, "segment": [4, 2], "sentence": "flip it"}, {"id": 0, "segment": [0, 1], "sentence": "cut"}]}}}
    video = parse_youcook2(data)["v"]
    assert (video.subset, video.recipe_type, video.url) == ("", "", "")
    assert [(s.index, s.start_sec, s.end_sec) for s in video.segments] == [(1, 4.0, 2.0), (0, 0.0, 1.0)]
    assert parse_youcook2(data, subset="training") == {}
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    with pytest.raises(BenchmarkFormatError, match="ends before it starts"):
        load_youcook2_annotations(path)
    with pytest.raises(BenchmarkFormatError, match="no 'database'"):
        parse_youcook2({"videos": []}, path)
    with pytest.raises(BenchmarkFormatError, match="video v: missing or bad field"):
        parse_youcook2({"database": {"v": {"annotations": []}}}, path)
