"""The app against bad URLs and its ingest form: huge clip ids are a message, not a traceback;
the Library page ingests only folders under the library's sources unless the server allows more."""

from __future__ import annotations

import shutil


def test_app_clip_and_attention_pages_refuse_huge_ids(tiny_library, app_for):
    for page in ("views/clip.py", "views/attention.py"):
        at = app_for(tiny_library, clip="99999999999999999999999").run()
        at.switch_page(page).run()
        assert not at.exception, page
        assert any("whole number" in str(e.value) for e in at.error), page


def test_app_ingest_form_is_limited_to_sources(tiny_library, app_for, tmp_path, monkeypatch):
    lib = tmp_path / "lib"
    shutil.copytree(tiny_library, lib, ignore=shutil.ignore_patterns(".lock"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    at = app_for(lib).run()
    at.switch_page("views/library.py").run()
    at.text_input(key="_ingest_folder").set_value(str(elsewhere)).run()
    at.button[0].click().run()
    assert not at.exception
    assert any("--allow-ingest" in str(e.value) for e in at.error)
    monkeypatch.setenv("ACTBERT_ALLOW_INGEST", "1")
    at.button[0].click().run()
    assert any("No video files" in str(w.value) for w in at.warning)
