"""Recorded commands show no machine's path: ``actbert evaluate`` keeps its command and corpus
portable in ``evaluation_<split>.json`` and on the report card, and the Model page shows older
records (made with absolute paths) the same way."""

from __future__ import annotations

import json
import re

ABSOLUTE = re.compile(r"(?:^|[\s=])/\w")


def test_evaluation_record_and_report_hold_no_absolute_path(evaluated_library):
    record = json.loads((evaluated_library / "models" / "run" / "last" / "evaluation_test.json").read_text())
    for value in (record["command"], record["corpus"]):
        assert not ABSOLUTE.search(value), value
        assert str(evaluated_library) not in value
    assert "--checkpoint <library>/models/run/last" in record["command"]
    assert record["corpus"].startswith("<library>/")
    report = (evaluated_library / "report" / "report.html").read_text()
    assert record["command"].replace("<", "&lt;").replace(">", "&gt;") in report or record["command"] in report
    assert str(evaluated_library) not in report


def test_model_page_shows_an_old_record_without_its_machine_paths(evaluated_library, app_for):
    checkpoint = evaluated_library / "models" / "run" / "last"
    record = json.loads((checkpoint / "evaluation_test.json").read_text())
    old = {**record, "info": {**record["info"], "split": "val"},
           "command": f"python -m actbert evaluate --corpus /work/data/sk440/lib/corpus.jsonl "
                      f"--checkpoint {checkpoint} --split val"}
    (checkpoint / "evaluation_val.json").write_text(json.dumps(old))
    try:
        at = app_for(evaluated_library).run()
        at.switch_page("views/model.py").run()
        at.button_group(key="_split_model").set_value("val").run()
        assert not at.exception
        codes = [str(c.value) for c in at.code]
        assert ("python -m actbert evaluate --corpus <corpus> --checkpoint <library>/models/run/last "
                "--split val") in codes
        assert not any(str(evaluated_library) in c or "/work/data" in c for c in codes)
    finally:
        (checkpoint / "evaluation_val.json").unlink()
