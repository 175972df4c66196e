"""Clip page: the video at the clip's time, 1 FPS frames with regions (each can be picked as a
search query: similar regions, optionally with words), predicted actions,
narration, a timeline of the whole video, where the query happens in it (every clip's relevance,
the best span, played or downloaded as a video file), and similar clips."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import numpy as np
import streamlit as st

from app import components, model_card, render, resources, state
from indexer.library import inspector, preview

library = components.library()
ROOT = str(library.root)

st.title("Clip")
raw = state.get("clip")
clip_id, view = components.clip_or_stop(library, raw, "No clip selected yet: search, then open a result.")

service = None
try:
    service = resources.get_service(library)
except resources.USER_ERRORS as exc:
    st.warning(f"The model is not available ({render.md_text(exc)}): no ActBERT verbs and no similar clips.")


@st.cache_data(show_spinner="Reading frames...", max_entries=64)
def frames_of(root: str, clip: int) -> np.ndarray:
    lib = resources.open_library(root)
    return inspector.clip_frames(lib, inspector.clip_view(lib, clip))


@st.cache_data(show_spinner="Running the action head...", max_entries=64)
def head_verbs(root: str, video_id: str, fingerprint: str, _clip) -> list:
    return service.action_verbs(_clip)


def probabilities(pairs, name: str) -> None:
    if not pairs:
        st.caption(f"{render.md_text(name)}: none recorded")
        return
    st.dataframe({name: [p[0] for p in pairs], "probability": [p[1] for p in pairs]},
                 hide_index=True, width="stretch",
                 column_config={"probability": st.column_config.ProgressColumn(
                     "probability", min_value=0.0, max_value=1.0, format="%.3f")})


row = library.catalog.video(view.clip.video_id)
st.markdown(f"{render.md_code(view.clip.video_id)} &nbsp; **{components.fmt_time(view.clip.start_sec, view.clip.end_sec)}**"
            + (f" &nbsp; task: {render.md_text(view.clip.task)}" if view.clip.task else "") + f" &nbsp; clip id {clip_id}")
seek = state.get("seek") or (view.clip.start_sec, view.clip.end_sec)
player, actions = st.columns([3, 2])
with player:
    try:
        path = preview.playable_path(library, view.clip.video_path, view.clip.video_id)
        st.video(str(path), start_time=float(seek[0]), end_time=float(seek[1]) + 0.01, muted=True)
        if tuple(seek) != (view.clip.start_sec, view.clip.end_sec):
            st.caption(f"Playing {seek[0]:.1f}-{seek[1]:.1f} s (a segment of the timeline).")
    except resources.USER_ERRORS as exc:
        st.error(f"Refusing to play this video: {render.md_text(exc)}")
    st.markdown("**Narration**")
    st.markdown(f"> {render.md_text(view.clip.narration)}" if view.clip.narration else
                "_(no narration in this clip)_" if view.clip.narrated else
                "_(an unnarrated stretch of the video: a fixed window, found by its picture only)_")
    if view.clip.verbs:
        st.caption("Verbs in the narration: " + render.md_text(", ".join(view.clip.verbs)))

verbs_by_clip = None
with actions:
    st.markdown("**Predicted actions**")
    if service is not None:
        try:
            fingerprint = str(library.manifest.model_fingerprint)
            verbs_by_clip = head_verbs(ROOT, view.clip.video_id, fingerprint, view.clip)
            probabilities(verbs_by_clip[view.clip.clip_index], "ActBERT action head")
            # what the evaluation recorded beside the model (its small JSON records, each run)
            evidence = model_card.action_head_evidence(ROOT, library.manifest)
            if evidence:
                st.caption(evidence)
        except resources.USER_ERRORS as exc:
            st.warning(f"Action head unavailable: {render.md_text(exc)}")
    probabilities(view.clip.predicted_verbs, "verb classifier")
    probabilities(view.clip.action_classes, "action backbone (Kinetics)")


@st.fragment
def frames_panel() -> None:
    st.subheader("Frames and regions (1 FPS)")
    try:
        frames = frames_of(ROOT, clip_id)
    except resources.USER_ERRORS as exc:
        st.error(f"Cannot read the frames: {render.md_text(exc)}")
        return
    classes = sorted(set(view.region_labels))
    left, right = st.columns([3, 1])
    chosen = left.multiselect("Classes", classes, key=state.bind("classes", classes, default=classes),
                              on_change=state.from_widget, args=("classes",))
    state.put("classes", None if set(chosen) == set(classes) else chosen)  # all: left out of the URL
    min_score = right.slider("Minimum score", 0.0, 1.0, step=0.05, key=state.bind("min_score"),
                             on_change=state.from_widget, args=("min_score",))
    keep = np.array([label in chosen for label in view.region_labels], bool) & (view.region_scores >= min_score)
    drawn = []
    for k, frame in enumerate(frames):
        on = keep & (view.region_frame == k)
        drawn.append(render.draw_boxes(frame, view.boxes_xyxy[on],
                                       [label for label, o in zip(view.region_labels, on) if o],
                                       view.region_scores[on], height=240,
                                       tags=[f"#{slot}" for slot in view.region_slots[on]]))
    columns = st.columns(min(4, len(drawn)))
    for k, image in enumerate(drawn):
        columns[k % len(columns)].image(image, caption=f"{view.frame_times_sec[k]:.1f} s · {int(keep[view.region_frame == k].sum())} boxes")
    st.download_button("Download frames with boxes (PNG)", render.png_bytes(render.montage(drawn)),
                       file_name=f"clip{clip_id}_frames.png", mime="image/png",
                       icon=":material/download:")
    region_picker()
    components.share_panel()  # a fragment's rerun changed the URL state


def region_picker() -> None:
    """Pick one of the clip's regions (its #slot is drawn on its box) as a query: the Search page
    then shows the clips holding similar regions, fused with the words when some are given."""
    if not len(view.region_slots):
        return
    st.markdown("**Search by a region**: clips holding regions like this one (the cosine of the "
                "detector's features), optionally combined with words, e.g. this bowl + *pour*.")
    order = np.argsort(view.region_slots)
    labels = {int(view.region_slots[j]): f"#{view.region_slots[j]} {view.region_labels[j]} "
                                          f"{view.region_scores[j]:.2f} at {view.frame_times_sec[view.region_frame[j]]:.1f} s"
              for j in order}
    left, middle, right = st.columns([2, 2, 1], vertical_alignment="bottom")
    slot = left.selectbox("Region", list(labels), format_func=labels.get, key="_region_slot")
    words = middle.text_input("With words (optional)", value=state.get("query") or "", key="_region_words",
                              placeholder="e.g. pour")
    if right.button("Find similar regions", icon=":material/image_search:", key="_region_search"):
        state.put("region", f"{clip_id}:{slot}")
        state.set_widget("query", words.strip())
        st.switch_page(components.SEARCH_PAGE)


frames_panel()

st.subheader("Timeline of the video")
segments = inspector.video_timeline(library, view.clip.video_id, verbs_by_clip)
timeline_key = f"_timeline_{clip_id}"


def _go_to(start: float, end: float, target: int) -> None:
    if target >= 0 and target != clip_id:
        state.put("clip", target)
        state.put("seek", None)
        state.clear("classes")
    else:
        state.put("seek", (start, end))


def _on_timeline() -> None:
    points = st.session_state[timeline_key]["selection"]["points"]
    if points and points[0].get("customdata"):
        start, end, target = points[0]["customdata"][:3]
        _go_to(float(start), float(end), int(target))


def _on_jump() -> None:
    index = st.session_state.get("_jump")
    if index is not None:
        seg = segments[index]
        _go_to(seg.start_sec, seg.end_sec, seg.clip_id if seg.clip_id is not None else -1)


if segments:
    duration = float(row["duration_sec"] or max(s.end_sec for s in segments))
    st.plotly_chart(render.timeline(segments, duration, (view.clip.start_sec, view.clip.end_sec)),
                    on_select=_on_timeline, selection_mode="points", key=timeline_key,
                    config=render.EXPORT_CONFIG)
    st.selectbox("Jump to a segment (or click a bar)", range(len(segments)), index=None, key="_jump",
                 on_change=_on_jump, placeholder="choose a segment",
                 format_func=lambda i: f"{segments[i].track}: {segments[i].detail or segments[i].label} "
                                       f"({segments[i].start_sec:.1f}-{segments[i].end_sec:.1f} s)")
else:
    st.caption("No actions or steps recorded for this video.")



@st.cache_data(show_spinner="Scoring every clip of the video...", max_entries=32)
def moment_of(root: str, fingerprint: str, query: str, video_id: str):
    return service.moment(query, video_id)


def span_video(video_path: str, start: float, end: float) -> bytes:
    """The span as an H.264 MP4 (made when the download is clicked)."""
    with tempfile.TemporaryDirectory() as folder:
        return preview.cut_span(library, video_path, start, end, Path(folder) / "span.mp4").read_bytes()


def _on_relevance() -> None:
    points = st.session_state[f"_relevance_{clip_id}"]["selection"]["points"]
    if points and points[0].get("customdata"):
        start, end = points[0]["customdata"][:2]
        _go_to(float(start), float(end), -1)


st.subheader("Where the query happens in this video")
query = (state.get("query") or "").strip()
if service is not None and not query:
    st.caption("No query yet: search first, and this section shows how relevant each clip of the "
               "video is to it, and its best span.")
elif service is not None:
    try:
        fingerprint = str(library.manifest.model_fingerprint)
        moment = moment_of(ROOT, fingerprint, query, view.clip.video_id)
    except resources.USER_ERRORS as exc:
        moment = None
        st.warning(f"No relevance timeline: {render.md_text(exc)}")
    if moment is not None:
        span = moment.span_sec
        first, last = moment.span
        duration = float(row["duration_sec"] or moment.clips[-1].end_sec)
        st.plotly_chart(render.relevance_timeline(
            [c.start_sec for c in moment.clips], [c.end_sec for c in moment.clips], moment.scores,
            [c.narration for c in moment.clips], span, duration,
            (view.clip.start_sec, view.clip.end_sec), f"relevance to: {query}"),
            key=f"_relevance_{clip_id}", on_select=_on_relevance, selection_mode="points",
            config=render.EXPORT_CONFIG)
        st.caption(f"Each bar is a clip; its height is the cosine of the query's and the clip's "
                   f"vectors (the search's `score`). **Best span {span[0]:.1f}-{span[1]:.1f} s** "
                   f"(clips {first + 1}-{last + 1} of {len(moment.clips)}): the best clip and the "
                   "neighbours in a row that score at least halfway from the video's median to the "
                   "best. Click a bar to play that clip.")
        play, download, _ = st.columns([1, 1, 2])
        play.button("Play the best span", icon=":material/play_arrow:", key="_play_span",
                    on_click=state.put, args=("seek", span))
        safe_id = re.sub(r"[^\w.-]", "_", view.clip.video_id)[:80]
        video_path = view.clip.video_path
        download.download_button(
            "Download the span (MP4)", data=lambda: span_video(video_path, *span),
            file_name=f"{safe_id}_{span[0]:.1f}-{span[1]:.1f}s.mp4", mime="video/mp4",
            icon=":material/download:", key="_span_mp4")

st.subheader("Similar clips")
if service is not None:
    try:
        similar = service.similar(clip_id, 6)
    except resources.USER_ERRORS as exc:
        similar = []
        st.warning(f"Similar clips unavailable: {render.md_text(exc)}")
    for start in range(0, len(similar), 3):
        for column, hit in zip(st.columns(3), similar[start:start + 3]):
            with column:
                components.clip_card(hit, key=f"similar_{hit.clip.clip_id}")
