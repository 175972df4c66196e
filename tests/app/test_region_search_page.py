"""Search by example region in the app: the Clip page's frames label every box with its region
slot and offer each as a query; the Search page then shows the clips holding similar regions
(fused with the words, when given) in the order ``search_region`` gives when called directly, and
the view's link reopens the same region query."""

from __future__ import annotations

import re
import urllib.parse

from indexer.index.region_search import search_region
from indexer.index.search import Searcher
from indexer.library import inspector
from indexer.library.store import Library


def _clean(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _cards(at) -> list[str]:
    """The result cards' title lines ("**3.** `video` 0:04.0-0:08.0")."""
    return [str(m.value) for m in at.markdown if re.match(r"\*\*\d+\.\*\* `", str(m.value))]


def test_a_region_picked_on_the_clip_page_searches_by_example(tiny_library, app_for):
    lib = Library(tiny_library, readonly=True)
    clip_id = lib.catalog.clip_ids()[1]
    view = inspector.clip_view(lib, clip_id)
    at = app_for(tiny_library, clip=str(clip_id)).run()
    at.switch_page("views/clip.py").run()
    _clean(at)
    picker = at.selectbox(key="_region_slot")
    assert picker.options == [f"#{s} {view.region_labels[j]} {view.region_scores[j]:.2f} at "
                              f"{view.frame_times_sec[view.region_frame[j]]:.1f} s"
                              for s, j in sorted((int(s), j) for j, s in enumerate(view.region_slots))]
    picker.set_value(2).run()
    at.text_input(key="_region_words").set_value("pour the milk").run()
    at.button(key="_region_search").click().run()
    _clean(at)
    clip = lib.catalog.clip(clip_id)
    expected = search_region(Searcher(lib), clip, 2, "pour the milk", k=12)
    cards = _cards(at)
    assert len(cards) == len(expected.hits) > 0
    for card, hit in zip(cards, expected.hits):
        assert f"`{hit.clip.video_id}`" in card
    shown = " ".join(str(m.value) for m in at.markdown)
    assert f"region #{expected.hits[0].region_slot} {expected.hits[0].region_score:.3f}" in shown
    assert "Searching by example region #2" in shown and "pour the milk" in shown
    link = urllib.parse.urlsplit([c.value for c in at.sidebar.code][0])
    params = dict(urllib.parse.parse_qsl(link.query))
    assert params["region"] == f"{clip_id}:2" and params["q"] == "pour the milk"

    again = app_for(tiny_library, **params)
    again.switch_page("views/search.py").run()
    _clean(again)
    assert _cards(again) == cards
    again.button(key="_clear_region").click().run()  # back to the words alone
    _clean(again)
    assert "Searching by example region" not in " ".join(str(m.value) for m in again.markdown)
    assert "region" not in dict(again.query_params)
