"""Views you can share: the link a page shows (the sidebar's "share this view" box) reopens, in a
fresh session, the same view: every control's value and the same results. Expected results come
from the searcher called directly; the link is read from the page as a user would copy it."""

from __future__ import annotations

import urllib.parse

import numpy as np
import pytest

from indexer.index.search import Searcher
from indexer.library import inspector
from indexer.library.store import Library

QUERY = "crack an egg into the bowl"


def _clean(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _link(at) -> tuple[str, dict[str, str]]:
    """The shared link shown on the page: (page path, parameters)."""
    links = [c.value for c in at.sidebar.code]
    assert len(links) == 1, links
    parsed = urllib.parse.urlsplit(links[0])
    return parsed.path, dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))


def _fresh(app_for, library, page: str, params: dict[str, str]):
    at = app_for(library, **params)
    at.switch_page(f"views/{page}.py").run()
    return at


def _cards(at) -> list[str]:
    return [str(m.value) for m in at.markdown if str(m.value).startswith("**") and "`" in str(m.value)]


def test_search_link_reopens_query_filters_signals_and_count(tiny_library, app_for):
    lib = Library(tiny_library, readonly=True)
    video = lib.catalog.videos("done")[1]["video_id"]
    at = app_for(tiny_library).run()
    at.text_input[0].set_value(QUERY).run()
    at.selectbox(key="_filter_video").set_value(video).run()
    at.segmented_control(key="_mode").set_value("vector").run()
    at.number_input(key="_k").set_value(3).run()
    at.segmented_control(key="_absent").set_value("all regions").run()
    _clean(at)
    path, params = _link(at)
    assert path.endswith("/")  # the Search page is the default page
    assert {k: params[k] for k in ("q", "video", "mode", "k", "absent")} == {
        "q": QUERY, "video": video, "mode": "vector", "k": "3", "absent": "all regions"}
    served_model = lib.manifest.model.fingerprint
    assert params["model"] == served_model and params["lib"] == lib.catalog.content_fingerprint()
    shown = _cards(at)

    again = _fresh(app_for, tiny_library, "search", params)
    _clean(again)
    assert again.text_input[0].value == QUERY
    assert again.selectbox(key="_filter_video").value == video
    assert again.segmented_control(key="_mode").value == "vector"
    assert again.number_input(key="_k").value == 3
    assert again.segmented_control(key="_absent").value == "all regions"
    assert _cards(again) == shown
    expected = Searcher(lib).search(QUERY, k=3, mode="vector", video=video)
    assert len(shown) == len(expected.hits) and all(f"`{video}`" in c for c in shown)
    assert not [w for w in again.warning if "link was made" in str(w.value)]
    assert _link(again)[1] == params


def test_clip_link_reopens_span_classes_and_score(tiny_library, app_for):
    lib = Library(tiny_library, readonly=True)
    clip = lib.catalog.clip_ids()[1]
    view = inspector.clip_view(lib, clip)
    label = sorted(set(view.region_labels))[0]
    at = app_for(tiny_library, clip=str(clip)).run()
    at.switch_page("views/clip.py").run()
    at.multiselect[0].set_value([label]).run()
    at.slider(key="_min_score").set_value(0.5).run()
    _clean(at)
    path, params = _link(at)
    assert path.endswith("/clip")
    assert params["clip"] == str(clip) and params["classes"] == label and params["min_score"] == "0.5"
    counts = [c for c in (i.caption for e in at.get("image") for i in e.proto.imgs) if c.endswith("boxes")]

    params["t"] = f"{view.clip.start_sec + 0.5:.2f}-{view.clip.end_sec:.2f}"  # a played segment
    again = _fresh(app_for, tiny_library, "clip", params)
    _clean(again)
    assert again.multiselect[0].value == [label]
    assert again.slider(key="_min_score").value == 0.5
    assert [c for c in (i.caption for e in again.get("image") for i in e.proto.imgs) if c.endswith("boxes")] == counts
    assert again.get("video")[0].proto.start_time == int(view.clip.start_sec + 0.5)
    assert _link(again)[1]["t"] == params["t"]


def test_attention_link_reopens_layer_head_word_overlay_and_panels(tiny_library, app_for):
    clip = Library(tiny_library, readonly=True).catalog.clip_ids()[0]
    at = app_for(tiny_library, q=QUERY, clip=str(clip)).run()
    at.switch_page("views/attention.py").run()
    at.selectbox(key="_w_block").set_value("tangled.1").run()
    at.segmented_control(key="_w_head").set_value("1").run()
    at.toggle(key="_stretch").set_value(True).run()
    at.selectbox(key="_word").set_value(2).run()
    at.segmented_control(key="_word_mode").set_value("attribution").run()
    at.selectbox(key="_roll_q").set_value("region").run()
    at.selectbox(key="_roll_k").set_value("action").run()
    pair = at.selectbox(key="_sum_pair").options[2]
    at.selectbox(key="_sum_pair").select_index(2).run()
    at.segmented_control(key="_sum_stat").set_value("entropy").run()
    _clean(at)
    path, params = _link(at)
    assert path.endswith("/attention")
    assert {k: params[k] for k in ("block", "head", "stretch", "word", "overlay", "rollout_out",
                                   "rollout_in", "statistic")} == {
        "block": "tangled.1", "head": "1", "stretch": "1", "word": "2", "overlay": "attribution",
        "rollout_out": "region", "rollout_in": "action", "statistic": "entropy"}
    titles = sorted(c.proto.spec for c in at.get("plotly_chart"))

    again = _fresh(app_for, tiny_library, "attention", params)
    _clean(again)
    assert again.selectbox(key="_w_block").value == "tangled.1"
    assert again.segmented_control(key="_w_head").value == "1"
    assert again.toggle(key="_stretch").value is True
    assert again.selectbox(key="_word").value == 2
    assert again.segmented_control(key="_word_mode").value == "attribution"
    assert (again.selectbox(key="_roll_q").value, again.selectbox(key="_roll_k").value) == ("region", "action")
    assert again.selectbox(key="_sum_pair").options[2] == pair
    assert again.selectbox(key="_sum_pair").index == 2
    assert again.segmented_control(key="_sum_stat").value == "entropy"
    assert sorted(c.proto.spec for c in again.get("plotly_chart")) == titles  # the same figures
    assert _link(again)[1] == params


def test_link_of_another_library_or_model_is_flagged(tiny_library, app_for):
    lib = Library(tiny_library, readonly=True)
    served = {"lib": lib.catalog.content_fingerprint(), "model": lib.manifest.model.fingerprint}
    at = app_for(tiny_library, q=QUERY, **served).run()
    _clean(at)
    assert not [w for w in at.warning if "link was made" in str(w.value)]
    at = app_for(tiny_library, q=QUERY, lib=served["lib"], model="0123456789abcdef").run()
    _clean(at)
    warnings = [str(w.value) for w in at.warning if "link was made" in str(w.value)]
    assert len(warnings) == 1 and "another model" in warnings[0] and "another library" not in warnings[0]
    assert "0123456789abcdef" in warnings[0] and served["model"] in warnings[0]
    at = app_for(tiny_library, q=QUERY, lib="ffffffffffffffff", model=served["model"]).run()
    assert any("another library" in str(w.value) for w in at.warning)


def test_unusable_link_values_fall_back_to_defaults(tiny_library, app_for):
    at = app_for(tiny_library, q=QUERY, k="many", video="no-such-video", mode="psychic",
                 absent="everything", compare="maybe").run()
    _clean(at)
    assert at.number_input(key="_k").value == 12
    assert at.selectbox(key="_filter_video").value == "all videos"
    assert at.segmented_control(key="_mode").value == "hybrid"
    assert at.segmented_control(key="_absent").value is None
    assert at.toggle(key="_compare").value is False
    params = _link(at)[1]
    assert not {"k", "video", "mode", "absent", "compare"} & set(params)


def test_clip_page_relevance_timeline_and_best_span(tiny_library, app_for):
    """The Clip page draws every clip's relevance to the query (the search's scores, computed
    directly here) with the best span, and plays the span on request."""
    from indexer.index.moments import best_span

    lib = Library(tiny_library, readonly=True)
    searcher = Searcher(lib)
    clip = lib.catalog.clip_ids()[0]
    video = lib.catalog.clip(clip).video_id
    hits = searcher.search(QUERY, k=len(lib.catalog.clip_ids()), mode="vector", rerank=0).hits
    expected = {h.clip.clip_id: h.score for h in hits if h.clip.video_id == video}
    at = app_for(tiny_library, q=QUERY, clip=str(clip)).run()
    at.switch_page("views/clip.py").run()
    _clean(at)
    import json

    spec = next(json.loads(c.proto.spec) for c in at.get("plotly_chart")
                if "relevance to" in json.loads(c.proto.spec)["layout"].get("title", {}).get("text", ""))
    bars = spec["data"][0]
    clips = sorted(lib.catalog.clips_by_id(expected).values(), key=lambda c: c.clip_index)
    tops = [b + y for b, y in zip(bars["base"], bars["y"])]  # each bar rises from the axis floor
    assert tops == pytest.approx([expected[c.clip_id] for c in clips], abs=1e-4)
    first, last = best_span(np.array([expected[c.clip_id] for c in clips]))
    start, end = clips[first].start_sec, clips[last].end_sec
    shaded = [s for s in spec["layout"]["shapes"] if s.get("opacity") == 0.12]
    assert [(s["x0"], s["x1"]) for s in shaded] == [pytest.approx((start, end))]
    assert any(d.label == "Download the span (MP4)" for d in at.get("download_button"))
    at.button(key="_play_span").click().run()
    _clean(at)
    assert at.get("video")[0].proto.start_time == int(start)
    assert _link(at)[1]["t"] == f"{start:.2f}-{end:.2f}"
