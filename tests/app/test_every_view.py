"""Every page and every view mode through AppTest with the shipped demo model (its streams and
tangled blocks have different head counts), failing on any exception or error box."""

from __future__ import annotations

import shutil

from indexer.index.search import MODES
from indexer.library.store import Library

QUERY = "crack an egg into the bowl"


def _clean(at, where: str) -> None:
    assert not at.exception, (where, [e.value for e in at.exception])
    assert not at.error, (where, [e.value for e in at.error])


def test_every_page_and_view_mode_with_the_shipped_model(shipped_library, app_for):
    lib = Library(shipped_library, readonly=True)
    clip = lib.catalog.clip_ids()[0]
    lib.close()
    at = app_for(shipped_library, q=QUERY, clip=str(clip)).run()
    _clean(at, "search")
    for mode in MODES:
        at.segmented_control(key="_mode").set_value(mode).run()
        _clean(at, f"search {mode}")

    at.switch_page("views/clip.py").run()
    _clean(at, "clip")

    at.switch_page("views/attention.py").run()
    _clean(at, "attention")
    for block in at.selectbox(key="_w_block").options:
        at.selectbox(key="_w_block").set_value(block).run()
        _clean(at, f"attention block {block}")
    for stream in at.selectbox(key="_roll_q").options:
        at.selectbox(key="_roll_q").set_value(stream).run()
        at.selectbox(key="_roll_k").set_value(stream).run()
        _clean(at, f"rollout {stream}")
    for pair in range(len(at.selectbox(key="_sum_pair").options)):
        at.selectbox(key="_sum_pair").select_index(pair).run()
        for statistic in at.segmented_control(key="_sum_stat").options:
            at.segmented_control(key="_sum_stat").set_value(statistic).run()
            _clean(at, f"summary {at.selectbox(key='_sum_pair').value} {statistic}")
    assert len(at.selectbox(key="_sum_pair").options) == 8

    at.switch_page("views/model.py").run()
    _clean(at, "model")
    splits = [s for s in at.get("segmented_control") if s.key.startswith("_split_")]
    for split in splits:
        for option in split.options:
            split.set_value(option).run()
            _clean(at, f"model split {option}")

    at.switch_page("views/library.py").run()
    _clean(at, "library")


def test_clip_and_attention_pages_on_a_truncated_feature_file(tiny_library, app_for, tmp_path):
    lib_dir = tmp_path / "truncated"
    shutil.copytree(tiny_library, lib_dir)
    lib = Library(lib_dir, readonly=True)
    clip = lib.catalog.clip_ids()[0]
    feature_path = lib_dir / lib.catalog.clip(clip).feature_path
    lib.close()
    feature_path.write_bytes(feature_path.read_bytes()[:feature_path.stat().st_size // 2])
    at = app_for(lib_dir, q=QUERY, clip=str(clip)).run()
    for page in ("clip", "attention"):
        at.switch_page(f"views/{page}.py").run()
        assert not at.exception, (page, [e.value for e in at.exception])
        errors = [str(e.value) for e in at.error]
        assert errors and all("\n" not in e for e in errors), (page, errors)
        assert any("is unreadable" in e and "re\\-ingest" in e for e in errors), (page, errors)
