"""Search page: a query box, example queries, filters, results as a grid of keyframes, each with
a "why" line computed after the results are shown; a search by example region (picked on the Clip
page) with optional words; a re-rank as if one kind of element were
absent; the same query against a second model, side by side."""

from __future__ import annotations

import streamlit as st

from app import build_panel, components, explain_view, render, resources, state
from indexer.index import results
from indexer.index.explain import ABSENT
from indexer.index.search import MODES
from indexer.library import inspector

COLUMNS = 3

st.title("Search")
library = components.library()
try:
    service = resources.get_service(library)
except resources.USER_ERRORS as exc:
    st.error(f"Search is not available for this library: {render.md_text(exc)}")
    st.stop()
if st.session_state.get("_demo_building"):
    build_panel.searchable_note(len(service.searchable_videos()))


def _use_example() -> None:
    choice = st.session_state.get("_example")
    if choice:
        state.set_widget("query", choice)


examples = inspector.example_queries(library)
query = st.text_input("Describe what happens in the clip", key=state.widget_key("query"),
                      on_change=state.from_widget, args=("query",),
                      placeholder=examples[0] if examples else "e.g. cut the tomato")
if examples:
    st.pills("Examples", examples, key="_example", on_change=_use_example, label_visibility="collapsed")

videos = [r["video_id"] for r in library.catalog.videos("done")]
tasks = sorted({r["task"] for r in library.catalog.videos("done") if r["task"]})
left, middle, right, last = st.columns([2, 2, 2, 1])
video_options, task_options = ["all videos", *videos], ["all tasks", *tasks]
video = left.selectbox("Video", video_options, key=state.bind("video", video_options),
                       on_change=state.from_widget, args=("video",))
task = middle.selectbox("Task", task_options, key=state.bind("task", task_options), disabled=not tasks,
                        on_change=state.from_widget, args=("task",))
region = state.get("region")
mode = right.segmented_control("Signals", MODES, key=state.bind("mode", MODES), disabled=bool(region),
                               on_change=state.from_widget, args=("mode",)) or "hybrid"
k = last.number_input("Results", 1, 60, key=state.bind("k", range(1, 61)),
                      on_change=state.from_widget, args=("k",))
for name, value in (("video", video), ("task", task), ("mode", mode), ("k", int(k))):
    state.put(name, value)  # a value the link named but this library lacks falls back, in the URL too

query = state.get("query") or ""
if region:
    components.region_banner(library, region, query)
elif not query.strip():
    st.info("Type a query or pick an example to search the library's clips (or pick a region on a "
            "clip's frames to search by example).")
    st.stop()

# the index's size too: it grows while the demo builds
params = (library.root, query, mode, video, task, int(k), region, len(service.searcher.index))
cached = st.session_state.get("_last_search")
if cached is None or cached[0] != params:
    filters = {"video": None if video == "all videos" else video, "task": None if task == "all tasks" else task}
    try:
        result = service.search_region(region, query, k=int(k), **filters) if region else \
            service.search(query, k=int(k), mode=mode, **filters)
    except resources.USER_ERRORS as exc:
        st.error(f"Search failed: {render.md_text(exc)}")
        st.stop()
    st.session_state["_last_search"] = (params, result)
else:
    result = cached[1]

timings = result.timings_ms
stages = ", ".join(f"{name} {ms:.0f} ms" for name, ms in timings.items() if name != "total")
st.caption(f"{len(result.hits)} clips in **{timings.get('total', 0):.0f} ms** ({stages})")
st.caption(f"Order: {result.ordering}")
if not result.hits:
    st.warning("No clip matches. Try other words, another signal or fewer filters.")
    st.stop()
st.session_state["_search_hits"] = [h.clip.clip_id for h in result.hits]
fingerprint = service.searcher.fingerprint
csv_column, json_column, _ = st.columns([1, 1, 3])
csv_column.download_button(  # the same records as `indexer search --json` (indexer.index.results)
    "Results as CSV", results.to_csv(results.records(result, fingerprint)), file_name="search_results.csv",
    mime="text/csv", icon=":material/download:", key="_export_csv")
json_column.download_button(
    "Results as JSON", results.to_json(result, fingerprint), file_name="search_results.json",
    mime="application/json", icon=":material/download:", key="_export_json")
if region:  # the re-rank, comparison and why lines explain a text query's matching score
    for row in range(0, len(result.hits), COLUMNS):
        for column, (rank, hit) in zip(st.columns(COLUMNS), enumerate(result.hits[row:row + COLUMNS], row + 1)):
            with column:
                components.clip_card(hit, key=f"open_{hit.clip.clip_id}", rank=rank)
    components.share_panel()
    st.stop()
left, right = st.columns([3, 1])
absent = left.segmented_control(
    "Re-rank as if absent", list(ABSENT), key=state.bind("absent", list(ABSENT)),
    on_change=state.from_widget, args=("absent",),
    help="Score this page's clips with the matching head once with everything and once with "
         "this kind of element removed (the clip contract's removal), and order them by the latter.")
compare = right.toggle("Side by side with a second model", key=state.bind("compare"),
                       on_change=state.from_widget, args=("compare",))
hits = list(result.hits)
ranks = explain_view.absent_ranks(service, query, hits, absent) if absent else {}
if ranks:
    hits.sort(key=lambda h: ranks[h.clip.clip_id].rank_without)
slots = []
for row in range(0, len(hits), COLUMNS):
    for column, (rank, hit) in zip(st.columns(COLUMNS), enumerate(hits[row:row + COLUMNS], row + 1)):
        with column:
            components.clip_card(hit, key=f"open_{hit.clip.clip_id}", rank=rank)
            if ranks:
                st.caption(explain_view.rank_change_text(ranks[hit.clip.clip_id]))
            slots.append(st.empty())
if compare:
    explain_view.compare_panel(library, service, query, {
        "k": int(k), "mode": mode, "video": None if video == "all videos" else video,
        "task": None if task == "all tasks" else task}, result)
components.share_panel()  # before the slow part below
# Last, so the results are on screen first: the "why" line of each result.
explain_view.fill_why_lines(service, query, hits, slots,
                            str(library.manifest.model_fingerprint))
