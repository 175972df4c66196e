"""User-supplied strings are shown as text (never Markdown, HTML or Streamlit directives), and no
page makes the browser fetch from another host."""

from __future__ import annotations

import re
import shutil
import sqlite3
import string

from app import render
from streamlit.runtime.forward_msg_queue import ForwardMsgQueue

HOSTILE = ("![t](http://127.0.0.1:9/track.png) <img src='http://127.0.0.1:9/x.png'> "
           ":material/home: :red[red] $x^2$ [link](http://127.0.0.1:9/) www.example.com `tick`")
# what a hostile string may not contain unescaped in any Markdown body
FORBIDDEN = ("![", "](", "<img", ":material/home:", ":red[", "http://", "www.example")
ESCAPED = "\\\\([" + re.escape(string.punctuation) + "])"


def _unescape(body: str) -> str:
    return re.sub(ESCAPED, r"\1", body)


def _leaks(body: str) -> list[str]:
    """The forbidden tokens left once every backslash-escaped character is taken out."""
    bare = re.sub(ESCAPED, "", body)
    return [f for f in FORBIDDEN if f in bare]


def _markdown_bodies(at) -> list[str]:
    kinds = ("markdown", "caption", "error", "warning", "info", "success")
    return [str(e.value) for kind in kinds for e in at.get(kind)]


def test_md_text_escapes_every_markup_and_keeps_the_characters():
    shown = render.md_text(HOSTILE)
    assert _leaks(HOSTILE) and not _leaks(shown)
    assert _unescape(shown) == HOSTILE
    assert render.md_text("one\ntwo") == "one two"
    assert render.md_code("a`b") == "`` a`b ``" and render.md_code("ab") == "`ab`"


def test_narration_and_task_are_shown_as_text_on_every_page(tiny_library, app_for, tmp_path):
    lib_dir = tmp_path / "hostile"
    shutil.copytree(tiny_library, lib_dir)
    with sqlite3.connect(lib_dir / "catalog.sqlite") as db:
        db.execute("UPDATE clips SET narration = ?", (HOSTILE,))
        db.execute("UPDATE videos SET task = ?", (HOSTILE,))
        db.execute("UPDATE cues SET text = ?", (HOSTILE,))
        clip = db.execute("SELECT min(id) FROM clips").fetchone()[0]
    at = app_for(lib_dir, q="track png", clip=str(clip))
    for page in ("search", "clip", "attention", "library"):
        at.switch_page(f"views/{page}.py").run()
        assert not at.exception, [e.value for e in at.exception]
        bodies = _markdown_bodies(at)
        leaks = [b for b in bodies if _leaks(b)]
        assert not leaks, (page, leaks)
        if page == "clip":  # the narration is shown, character for character
            assert any(HOSTILE in _unescape(b) for b in bodies)


def test_no_page_icon_is_fetched_from_another_host(tiny_library, app_for, monkeypatch):
    """The browser tab's icon: Streamlit's frontend turns a ``:material/...:`` page icon into an
    SVG from fonts.gstatic.com; an emoji becomes an inline data: URL, an image a local media URL."""
    favicons: list[str] = []
    enqueue = ForwardMsgQueue.enqueue

    def record(self, msg):
        if msg.HasField("page_config_changed") and msg.page_config_changed.favicon:
            favicons.append(msg.page_config_changed.favicon)
        return enqueue(self, msg)

    monkeypatch.setattr(ForwardMsgQueue, "enqueue", record)
    at = app_for(tiny_library).run()
    for page in ("clip", "attention", "model", "library"):
        at.switch_page(f"views/{page}.py").run()
    assert favicons
    assert all(f.startswith(("emoji:", "/media/")) for f in favicons), favicons


def test_unnarrated_clips_say_so_on_their_cards_and_page(tiny_library, app_for, tmp_path):
    """Whole-video coverage: a window over a stretch nobody talks over is labelled unnarrated on
    its result card and its Clip page (issue 29 item 10)."""
    from app.components import UNNARRATED, UNNARRATED_BADGE

    lib_dir = tmp_path / "windows"
    shutil.copytree(tiny_library, lib_dir)
    with sqlite3.connect(lib_dir / "catalog.sqlite") as db:
        ids = [r[0] for r in db.execute("SELECT id FROM clips ORDER BY id")]
        windows = ids[1::2]
        db.executemany("UPDATE clips SET narrated = 0, narration = '' WHERE id = ?", [(i,) for i in windows])
    from indexer.index.search import Searcher
    from indexer.library.store import Library

    expected = Searcher(Library(lib_dir, readonly=True)).search("stir the soup", k=len(ids), mode="vector", rerank=0)
    shown_windows = [h.clip.clip_id for h in expected.hits if h.clip.clip_id in windows]
    assert shown_windows and len(expected.hits) == len(ids)
    at = app_for(lib_dir, q="stir the soup", mode="vector", k=str(len(ids))).run()
    assert not at.exception, [e.value for e in at.exception]
    badges = [b for b in _markdown_bodies(at) if UNNARRATED_BADGE in b]
    captions = [str(c.value) for c in at.caption if render.md_text(UNNARRATED) in str(c.value)]
    assert len(badges) == len(captions) == len(shown_windows)
    at = app_for(lib_dir, clip=str(windows[0]))
    at.switch_page("views/clip.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("an unnarrated stretch of the video" in b for b in _markdown_bodies(at))
