"""The MSR-VTT 1k-A reader on the real JSFusion test file in tests/fixtures and on PaddleVideo's
two-column format."""

import pytest

from actbert.benchmarks.annotations import BenchmarkFormatError
from actbert.benchmarks.msrvtt import load_msrvtt_test


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
