"""Every page through Streamlit's AppTest (no browser), on the tiny library (random weights: these
are UI tests, not quality claims). Expected values come from the catalog, the feature files and
the searcher called directly."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

from actbert.evaluation import known_limits
from actbert.evaluation.result import EvaluationResult
from indexer.index.search import Searcher
from indexer.library import inspector
from indexer.library.manifest import read_manifest
from indexer.library.store import Library

QUERY = "crack an egg into the bowl"


def _clean(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _texts(elements) -> list[str]:
    """The elements' text as shown (user strings reach Markdown backslash-escaped)."""
    return [re.sub(r"\\([^\w\s]|_)", r"\1", str(e.value)) for e in elements]


def _image_captions(at) -> list[str]:
    return [img.caption for element in at.get("image") for img in element.proto.imgs]


def _first_clip(library_dir: Path) -> int:
    lib = Library(library_dir, readonly=True)
    clip = lib.catalog.clip_ids()[0]
    lib.close()
    return clip


def test_search_shows_results_with_latency(tiny_library, app_for):
    at = app_for(tiny_library).run()
    _clean(at)
    at.text_input[0].set_value(QUERY).run()
    _clean(at)
    summary = [c for c in _texts(at.caption) if "clips in" in c]
    assert summary and " ms" in summary[0]
    expected = Searcher(Library(tiny_library, readonly=True)).search(QUERY, k=12)
    opens = [b for b in at.button if b.label == "Open clip"]
    assert len(opens) == len(expected.hits) > 0
    shown = " ".join(_texts(at.markdown))
    for hit in expected.hits:
        assert f"`{hit.clip.video_id}`" in shown
    assert at.query_params["q"] == QUERY


def test_a_bug_in_a_service_call_is_not_a_friendly_message(tiny_library, app_for, monkeypatch):
    """Only domain errors (``indexer.errors``) become messages: a RuntimeError inside the search
    service is a bug and surfaces as an exception with its traceback."""
    from indexer.index.service import ClipService

    def broken(self, query, **options):
        raise RuntimeError("a bug in the query path")

    monkeypatch.setattr(ClipService, "search", broken)
    at = app_for(tiny_library).run()
    at.text_input[0].set_value(QUERY).run()
    assert any("a bug in the query path" in str(e.value) for e in at.exception)
    assert not any("a bug in the query path" in e for e in _texts(at.error))


def test_example_query_and_video_filter(tiny_library, app_for):
    at = app_for(tiny_library).run()
    examples = inspector.example_queries(Library(tiny_library, readonly=True))
    at.button_group[0].set_value(examples[1]).run()
    _clean(at)
    assert at.text_input[0].value == examples[1]
    video = at.selectbox[0].options[1]
    at.selectbox[0].set_value(video).run()
    _clean(at)
    cards = [m for m in _texts(at.markdown) if m.startswith("**") and "`" in m]
    assert cards and all(f"`{video}`" in m for m in cards)


def test_open_result_goes_to_clip(tiny_library, app_for):
    at = app_for(tiny_library, q=QUERY).run()
    first = next(b for b in at.button if b.label == "Open clip")
    first.click().run()
    _clean(at)
    assert "clip" in at.query_params
    assert at.title[0].value == "Clip"
    assert len(at.get("video")) == 1


def test_clip_page_frames_boxes_verbs_timeline(tiny_library, app_for):
    clip = _first_clip(tiny_library)
    at = app_for(tiny_library, clip=str(clip)).run()
    at.switch_page("views/clip.py").run()
    _clean(at)
    lib = Library(tiny_library, readonly=True)
    view = inspector.clip_view(lib, clip)
    video = at.get("video")[0].proto
    assert video.start_time == int(view.clip.start_sec)
    frame_captions = [c for c in _image_captions(at) if c.endswith("boxes")]
    assert len(frame_captions) == len(view.frame_times_sec)
    assert sum(int(c.split("· ")[1].split()[0]) for c in frame_captions) == len(view.boxes_xyxy)
    head = at.dataframe[0].value
    assert list(head.columns) == ["ActBERT action head", "probability"] and len(head) == 5
    assert np.all(np.diff(head["probability"].to_numpy()) <= 0)
    assert at.get("plotly_chart"), "the timeline is missing"
    steps = lib.catalog.query("SELECT count(*) FROM steps JOIN videos ON videos.id = steps.video "
                              "WHERE videos.video_id = ?", (view.clip.video_id,))[0][0]
    clips = len(lib.catalog.clips_of(view.clip.video_id))
    jump = next(s for s in at.selectbox if s.label.startswith("Jump to"))
    assert steps > 0 and len(jump.options) == 3 * clips + steps  # head, classifier, backbone + steps

    # toggle classes and score: only boxes of the kept class with score >= 0.5 remain
    label = view.region_labels[0]
    at.multiselect[0].set_value([label]).run()
    at.slider[0].set_value(0.5).run()
    _clean(at)
    kept = sum((np.array(view.region_labels) == label) & (view.region_scores >= 0.5))
    counts = [int(c.split("· ")[1].split()[0]) for c in _image_captions(at) if c.endswith("boxes")]
    assert sum(counts) == kept
    assert any(d.label.startswith("Download frames") for d in at.get("download_button"))


def test_timeline_jump_seeks_to_a_true_step(tiny_library, app_for):
    clip = _first_clip(tiny_library)
    at = app_for(tiny_library, clip=str(clip)).run()
    at.switch_page("views/clip.py").run()
    jump = next(s for s in at.selectbox if s.label.startswith("Jump to"))
    lib = Library(tiny_library, readonly=True)
    view = inspector.clip_view(lib, clip)
    segments = inspector.video_timeline(lib, view.clip.video_id)
    steps = [i for i, s in enumerate(segments) if s.track == "true steps"]
    # the page adds one "ActBERT verbs" bar per clip in front of each clip's bars
    page_index = steps[-1] + len(lib.catalog.clips_of(view.clip.video_id))
    jump.set_value(page_index).run()
    _clean(at)
    assert at.get("video")[0].proto.start_time == int(segments[steps[-1]].start_sec)


def test_attention_change_block_and_head(tiny_library, app_for):
    clip = _first_clip(tiny_library)
    at = app_for(tiny_library, q=QUERY, clip=str(clip)).run()
    at.switch_page("views/attention.py").run()
    _clean(at)
    block = next(s for s in at.selectbox if s.label.startswith("Layer / block"))
    assert block.value == "tangled.0"
    block.set_value("tangled.1").run()
    at.button_group[0].set_value("2").run()
    _clean(at)
    assert at.query_params["block"] == "tangled.1" and at.query_params["head"] == "2"
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    block_maps = [t for t in titles if "tangled.1 · head 2" in t]
    assert len(block_maps) == 8  # every pair of a stacked tangled block, injected ones included
    assert any(t.startswith("rollout") for t in titles)
    assert any("mass" in t for t in titles)
    assert any("composed with action over regions" in c for c in _texts(at.caption))

    at.selectbox(key="_w_block").set_value("text.1").run()
    _clean(at)
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert [t for t in titles if "text.1 · head" in t] == ["text over text · text.1 · head 2"]


def test_attention_link_reopens_the_same_view(tiny_library, app_for):
    clip = _first_clip(tiny_library)
    at = app_for(tiny_library, q=QUERY, clip=str(clip), block="tangled.1", head="3").run()
    at.switch_page("views/attention.py").run()
    _clean(at)
    assert at.selectbox(key="_w_block").value == "tangled.1"
    assert at.button_group[0].value == "3"


def test_attention_paddle_model_has_no_injected_maps(paddle_library, app_for):
    clip = _first_clip(paddle_library)
    at = app_for(paddle_library, q=QUERY, clip=str(clip)).run()
    at.switch_page("views/attention.py").run()
    _clean(at)
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert not any("injected" in t for t in titles)
    assert sum("tangled.0 · head mean" in t for t in titles) == 5
    assert any("kv_fusion='paddle'" in c for c in _texts(at.caption))


def test_library_page_status_table(tiny_library, app_for):
    at = app_for(tiny_library).run()
    at.switch_page("views/library.py").run()
    _clean(at)
    table = at.dataframe[0].value
    lib = Library(tiny_library, readonly=True)
    assert sorted(table["video"]) == sorted(r["video_id"] for r in lib.catalog.videos())
    assert set(table["status"]) == {"done"}
    assert {m.label: m.value for m in at.metric}["clips"] == str(lib.catalog.stats()["clips"])
    assert any("kv_fusion" in m for m in _texts(at.markdown))


@pytest.mark.parametrize("fixture", ["tiny_library", "paddle_library", "shipped_library", "evaluated_library"])
def test_the_fixture_libraries_manifests_read_back_as_written(fixture, request):
    """library.json as the fixtures wrote it (``Library.create``, ``set_library_model``,
    ``update_manifest``) reads into a ``LibraryManifest`` that gives back the same bytes."""
    path = request.getfixturevalue(fixture) / "library.json"
    text = path.read_text()
    manifest = read_manifest(path)
    assert manifest.to_json() == json.loads(text)
    assert json.dumps(manifest.to_json(), indent=2, sort_keys=True) == text
    assert manifest.model is not None and manifest.region_classes and manifest.verbs


def test_ingest_of_a_missing_folder_says_so(tiny_library, app_for, tmp_path):
    at = app_for(tiny_library).run()
    at.switch_page("views/library.py").run()
    at.text_input(key="_ingest_folder").set_value(str(tmp_path / "nowhere")).run()
    at.button[0].click().run()
    assert not at.exception
    assert any("nowhere" in e for e in _texts(at.error))


@pytest.mark.parametrize("make", ["missing", "not_a_library", "corrupt_catalog"])
def test_unusable_library_gives_a_clear_message(make, app_for, tmp_path):
    root = tmp_path / "lib"
    if make != "missing":
        root.mkdir()
    if make == "corrupt_catalog":
        (root / "library.json").write_text(json.dumps({"format": 1}))
        (root / "catalog.sqlite").write_bytes(b"this is not sqlite" * 100)
    at = app_for(root).run()
    assert not at.exception
    message = " ".join(_texts(at.error))
    assert {"missing": "does not exist", "not_a_library": "not an ActBERT library",
            "corrupt_catalog": "not a readable catalog"}[make] in message


@pytest.mark.parametrize("value", ["../../etc/passwd", "/etc/passwd", "1;DROP TABLE clips", "-3"])
def test_crafted_clip_parameter_is_refused(tiny_library, app_for, value):
    at = app_for(tiny_library, clip=value).run()
    at.switch_page("views/clip.py").run()
    assert not at.exception
    assert any("clip must be a catalog clip id" in e for e in _texts(at.error))
    assert not at.get("video")


def test_unknown_clip_id_is_a_message(tiny_library, app_for):
    at = app_for(tiny_library, clip="987654").run()
    at.switch_page("views/clip.py").run()
    assert not at.exception
    assert any("no clip 987654" in e for e in _texts(at.error))


def test_catalog_row_pointing_outside_is_never_served(tiny_library, app_for, tmp_path):
    lib_dir = tmp_path / "copy"
    shutil.copytree(tiny_library, lib_dir)
    outside = tmp_path / "outside.mp4"
    source = next((tiny_library / "corpus" / "videos").glob("*.mp4"))
    shutil.copy(source, outside)  # a real, playable video: refusing it is the library's choice
    with sqlite3.connect(lib_dir / "catalog.sqlite") as db:
        db.execute("UPDATE videos SET path = ? WHERE video_id = ?", (str(outside), source.stem))
        clip = db.execute("SELECT clips.id FROM clips JOIN videos ON videos.id = clips.video "
                          "WHERE videos.video_id = ?", (source.stem,)).fetchone()[0]
    at = app_for(lib_dir, clip=str(clip)).run()
    at.switch_page("views/clip.py").run()
    assert not at.exception
    errors = " ".join(_texts(at.error))
    assert "Refusing to play this video" in errors and "outside the library's folders" in errors
    assert not at.get("video")


def _demo_stand_in(monkeypatch, folder: Path, built: bool) -> list:
    """With no ACTBERT_LIBRARY, the router opens synthkitchen.demo's folder (here a
    stand-in naming ``folder``), and starts a builder unless it is built (recorded, not started)."""
    from app import resources

    demo = types.ModuleType("synthkitchen.demo")
    demo.default_library_dir = lambda: folder
    demo.is_built = lambda root: built
    monkeypatch.setitem(sys.modules, "synthkitchen.demo", demo)
    monkeypatch.delenv("ACTBERT_LIBRARY", raising=False)
    started = []
    monkeypatch.setattr(resources, "start_demo_build", started.append)
    return started


def test_a_built_demo_opens_without_a_builder(tiny_library, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.app.conftest import APP

    started = _demo_stand_in(monkeypatch, tiny_library, built=True)
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    _clean(at)
    assert started == []
    assert at.title[0].value == "Search"
    assert not any("Building the demo library" in t for t in _texts(at.markdown))


def test_a_demo_being_built_is_searched_with_its_progress_shown(tiny_library, monkeypatch, tmp_path):
    """The builder has written the model, an index of two videos and its progress record: the
    panel names the stage, the count, the time left and shows the frames; the Search page works
    and says how many videos it searches (counted from the index it serves)."""
    from dataclasses import replace

    from streamlit.testing.v1 import AppTest

    from synthkitchen import build_progress
    from tests.app.conftest import APP

    root = tmp_path / "demo"
    shutil.copytree(tiny_library, root, ignore=shutil.ignore_patterns(".lock"))
    now = time.time()
    record = build_progress.BuildProgress(
        pid=os.getpid(), started=now - 60, stage="videos", total=5, searchable=2,
        current="sk00004_make_tea", videos_started=now - 30, durations=(10.0, 10.0, 200.0, 200.0, 200.0),
        finished_at=(20.0, 30.0))  # 1 s per second of video after the first: 600 s left
    build_progress.write(root, replace(record))
    (root / "progress").mkdir()
    (root / build_progress.FRAME).write_bytes(build_progress.contact_sheet(np.zeros((2, 8, 8, 3), np.uint8)))
    started = _demo_stand_in(monkeypatch, root, built=False)
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.query_params["q"] = "crack an egg into the bowl"
    at.run()
    _clean(at)
    assert started == [root]
    shown = " ".join(_texts(at.markdown) + _texts(at.caption) + _texts(at.info))
    assert "Building the demo library" in shown and "Rendering and analysing videos" in shown
    assert "objects detected" in shown  # what the stage does, in plain words
    progress_text = at.get("progress")[0].proto.text
    assert "video 3 of 5" in progress_text and "2 of 5 searchable" in progress_text
    assert "time left: about 10 min" in progress_text
    assert "Frames of sk00004_make_tea, being analysed" in _image_captions(at)
    assert at.title[0].value == "Search"
    assert "2 of 5 videos searchable" in shown  # the tiny index holds two videos
    assert any(re.search(r"\b[1-9]\d* clips in", t) for t in _texts(at.caption))


def test_a_demo_starting_shows_its_panel_only(monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    from tests.app.conftest import APP

    started = _demo_stand_in(monkeypatch, tmp_path / "demo", built=False)
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    _clean(at)
    assert started == [tmp_path / "demo"]
    assert "Building the demo library" in " ".join(_texts(at.markdown))
    assert not at.title  # no page before the library has a model and an index


def test_missing_demo_module_is_a_message(monkeypatch):
    from streamlit.testing.v1 import AppTest

    from tests.app.conftest import APP

    monkeypatch.setitem(sys.modules, "synthkitchen.demo", None)  # import raises ImportError
    monkeypatch.delenv("ACTBERT_LIBRARY", raising=False)
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception
    assert any("ACTBERT_LIBRARY" in e for e in _texts(at.error))


# ---- the Model page ------------------------------------------------------------------------------

def _bars(spec: dict) -> dict[str, dict[str, tuple[float, float, float]]]:
    """{system: {metric: (value, low end, high end)}} of a chart's bar traces."""
    out: dict = {}
    for trace in spec["data"]:
        if trace["type"] == "bar":
            err = trace["error_y"]
            for metric, y, minus, plus in zip(trace["x"], trace["y"], err["arrayminus"], err["array"]):
                out.setdefault(trace["name"], {})[metric] = (y, y - minus, y + plus)
    return out


def test_model_page_without_an_evaluation_says_how_to_fill_it(tiny_library, app_for):
    at = app_for(tiny_library).run()
    at.switch_page("views/model.py").run()
    _clean(at)
    assert at.title[0].value == "Model"
    config = json.loads((tiny_library / "models" / "actbert" / "config.json").read_text())
    assert {m.label: m.value for m in at.metric} == {
        "preset": config["name"], "max_regions": str(config["max_regions"]),
        "match_input": config["match_input"], "kv_fusion": config["tangled"]["kv_fusion"]}
    assert any(f"`python -m actbert evaluate --library {tiny_library} --split test`" in i
               for i in _texts(at.info))
    assert any("No training curves" in c for c in _texts(at.caption))
    assert not at.get("plotly_chart")


def test_model_page_shows_curves_and_the_recorded_evaluation(evaluated_library, app_for):
    checkpoint = evaluated_library / "models" / "run" / "last"
    record = json.loads((checkpoint / "evaluation_test.json").read_text())
    at = app_for(evaluated_library).run()
    at.switch_page("views/model.py").run()
    _clean(at)
    # (AppTest's server is not bound to localhost: the sidebar's warning about it is expected)
    assert not at.info and not [w for w in _texts(at.warning) if "localhost" not in w]
    assert [h.value for h in at.header] == ["ActBERT", "no-regions ablation"]
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    curves = [s for s in specs if "pretraining losses" in s["layout"]["title"]["text"]]
    assert len(curves) == 2  # the model's and the ablation's
    for spec, run in zip(curves, ("run", "run_no_regions")):
        log = [json.loads(line) for line in (checkpoint.parents[1] / run / "train.jsonl").read_text().splitlines()]
        total = next(t for t in spec["data"] if t["name"] == "total")
        assert total["x"] == [r["step"] for r in log] and total["y"] == [r["total"] for r in log]
    charts = {s["layout"]["title"]["text"].split(":")[0]: s for s in specs if s not in curves}
    assert set(charts) == {"retrieval", "videoqa"}
    for task, spec in charts.items():
        drawn = _bars(spec)
        assert set(drawn) == set(record[task])
        for system, figures in record[task].items():
            for metric, value in figures.items():
                low, high = record["ci"][task][system][metric]
                assert drawn[system][metric] == pytest.approx((value, low, high), abs=1e-6)
    tables = [d.value for d in at.dataframe]
    values = [t for t in tables if list(t.columns) == ["system", "metric", "value", "95% interval"]]
    assert [len(t) for t in values] == [sum(len(f) for f in record[t].values()) for t in charts]
    assert any("above 0" in set(t["interval"]) or "includes 0" in set(t["interval"])
               for t in tables if "difference" in t.columns)
    assert record["command"] in _texts(at.code)
    # The known limits, generated from the record: every comparison the model loses.
    assert "\n".join(known_limits.markdown_lines(EvaluationResult.from_json(record))) in _texts(at.markdown)
    assert record["command"].startswith("python -m actbert evaluate --corpus ")

    # A second split recorded for other weights: a split choice, and a warning on it.
    stale = {**record, "info": {**record["info"], "split": "val"}, "weights_sha256": "0" * 64}
    (checkpoint / "evaluation_val.json").write_text(json.dumps(stale))
    try:
        at = app_for(evaluated_library).run()
        at.switch_page("views/model.py").run()
        _clean(at)
        split = at.button_group(key="_split_model")
        assert split.value == "test" and list(split.options) == ["test", "val"]
        assert not any("other weights" in w for w in _texts(at.warning))
        split.set_value("val").run()
        _clean(at)
        assert any("recorded for other weights" in w for w in _texts(at.warning))
    finally:
        (checkpoint / "evaluation_val.json").unlink()


def test_clip_page_shows_what_the_evaluation_recorded_about_the_action_head(evaluated_library, app_for):
    """Under the action head's verbs, the Clip page quotes the held-out figures recorded beside
    the model for these weights (none for a record of other weights)."""
    checkpoint = evaluated_library / "models" / "run" / "last"
    test = json.loads((checkpoint / "evaluation_test.json").read_text())
    assert "masked_action" not in test  # the fixture evaluates retrieval and videoqa only
    figures = {"actbert": {"top1_masked": 47.25, "top1_video_only": 33.125},
               "majority": {"top1_masked": 30.5, "top1_video_only": 30.5}}
    val = {**test, "info": {**test["info"], "split": "val"}, "masked_action": figures}
    clip = _first_clip(evaluated_library)
    try:
        for weights, shown in ((test["weights_sha256"], True), ("0" * 64, False)):
            (checkpoint / "evaluation_val.json").write_text(json.dumps({**val, "weights_sha256": weights}))
            at = app_for(evaluated_library, clip=str(clip)).run()
            at.switch_page("views/clip.py").run()
            _clean(at)
            captions = [c for c in _texts(at.caption) if c.startswith("Held-out check")]
            if shown:
                assert len(captions) == 1 and "(val split" in captions[0]
                assert all(f in captions[0] for f in ("step verb for 33.1% of clips", "majority verb: 30.5%", "task): 47.2%"))
            else:
                assert captions == []
    finally:
        (checkpoint / "evaluation_val.json").unlink()
