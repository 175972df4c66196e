"""UI pieces shared by the pages: the open library, clip cards, cached pictures."""

from __future__ import annotations

import numpy as np
import streamlit as st

from app import render, resources, state
from indexer.library import inspector
from indexer.library.store import Library, LibraryError

CLIP_PAGE = "views/clip.py"
SEARCH_PAGE = "views/search.py"


def library() -> Library:
    """The library the router opened for this session."""
    return resources.open_library(st.session_state["library_root"])


@st.cache_data(show_spinner=False, max_entries=512)
def keyframe(root: str, clip_id: int, height: int = 240) -> np.ndarray:
    """The clip's keyframe with its boxes drawn, ``height`` pixels tall."""
    lib = resources.open_library(root)
    view = inspector.clip_view(lib, clip_id)
    k = inspector.keyframe_index(view)
    frame = inspector.clip_frame(lib, view, k)
    on = view.region_frame == k
    return render.draw_boxes(frame, view.boxes_xyxy[on], [label for label, o in zip(view.region_labels, on) if o],
                             view.region_scores[on], height=height)


@st.cache_data(show_spinner=False, max_entries=512)
def region_image(root: str, clip_id: int, slot: int, height: int = 240) -> np.ndarray:
    """The frame holding region ``slot`` of the clip, with that region's box alone drawn."""
    lib = resources.open_library(root)
    view = inspector.clip_view(lib, clip_id)
    j = int(np.flatnonzero(view.region_slots == slot)[0]) if slot in view.region_slots else None
    if j is None:
        raise LibraryError(f"clip {clip_id} has no region #{slot}")
    frame = inspector.clip_frame(lib, view, int(view.region_frame[j]))
    return render.draw_boxes(frame, view.boxes_xyxy[j:j + 1], [view.region_labels[j]],
                             view.region_scores[j:j + 1], height=height, tags=[f"#{slot}"])


def open_clip(clip_id: int) -> None:
    """Make ``clip_id`` the current clip and go to the Clip page."""
    state.put("clip", int(clip_id))
    state.put("seek", None)
    state.clear("classes")
    st.switch_page(CLIP_PAGE)


def clip_or_stop(library: Library, raw, empty_message: str) -> tuple[int, inspector.ClipView]:
    """The clip named by ``raw`` (a URL value) and its view; stops the page with a message and a
    link to Search when there is none or it cannot be opened."""
    if raw is None:
        st.info(empty_message)
        st.page_link(SEARCH_PAGE, label="Go to Search", icon=":material/search:")
        st.stop()
    try:
        clip_id = inspector.parse_clip_id(raw)
        return clip_id, inspector.clip_view(library, clip_id)
    except resources.USER_ERRORS as exc:
        st.error(f"Cannot open this clip: {render.md_text(exc)}")
        st.stop()


def share_panel() -> None:
    """The sidebar's "share this view" box: the page's link with the whole view state and the
    served library and model fingerprints (``app.state``), with Streamlit's copy button. Called at
    the end of every run, and of the fragments that change URL state, so it is never stale."""
    slot = st.session_state.get("_share_slot")
    if slot is None:
        return
    base = (st.context.url or "").rstrip("/")
    for path in st.session_state.get("_page_paths", ()):  # the app's address, without a page's path
        if path and base.endswith(f"/{path}"):
            base = base[:-len(path) - 1]
    page = st.session_state.get("_page_path", "")
    link = state.share_link(f"{base}/{page}", st.session_state.get("_fingerprints") or {})
    with slot.container():
        st.caption("Share this view: copy the link (the button at the box's right); it reopens "
                   "this page with the same query, clip, filters and settings.")
        st.code(link, language=None, wrap_lines=True)


def fmt_time(start: float, end: float) -> str:
    return f"{int(start // 60)}:{start % 60:04.1f}-{int(end // 60)}:{end % 60:04.1f}"


UNNARRATED_BADGE = ":gray-badge[unnarrated]"
UNNARRATED = "(unnarrated stretch: nobody talks here, found by its picture only)"
NO_NARRATION = "(no narration)"


def clip_card(hit, key: str, rank: int | None = None) -> None:
    """A search hit (or similar clip) as a card: keyframe with boxes, scores, signals, narration."""
    root = st.session_state["library_root"]
    clip = hit.clip
    with st.container(border=True):
        try:
            if hit.region_slot is not None:  # a region search: the clip's best-matching region
                st.image(region_image(root, clip.clip_id, int(hit.region_slot)), width="stretch")
            else:
                st.image(keyframe(root, clip.clip_id), width="stretch")
        except resources.USER_ERRORS as exc:
            st.warning(f"No picture: {render.md_text(exc)}")
        title = f"**{rank}.** " if rank else ""
        st.markdown(f"{title}{render.md_code(clip.video_id)} &nbsp; {fmt_time(clip.start_sec, clip.end_sec)}")
        scores = []
        if hit.score is not None:
            scores.append(f"score {hit.score:.3f}")
        if hit.rerank_score is not None:
            scores.append(f"rerank {hit.rerank_score:.3f}")
        if hit.narration_score is not None:
            scores.append(f"BM25 {hit.narration_score:.2f}")
        if hit.semantic_score is not None:
            scores.append(f"MiniLM {hit.semantic_score:.2f}")
        if hit.region_score is not None:
            scores.append(f"region #{hit.region_slot} {hit.region_score:.3f}")
            if hit.score is not None:
                scores.append(f"fused {hit.fused_score:.3f}")
        signals = " ".join(f":blue-badge[{render.md_text(s)}]" for s in hit.signals)
        unnarrated = "" if clip.narrated else f"{UNNARRATED_BADGE} "
        st.markdown(f"{unnarrated}{signals} &nbsp; " + " · ".join(scores))
        narration = clip.narration or (NO_NARRATION if clip.narrated else UNNARRATED)
        st.caption(render.md_text(narration if len(narration) < 140 else narration[:137] + "..."))
        if st.button("Open clip", key=key, icon=":material/play_circle:"):
            open_clip(clip.clip_id)


def region_banner(library: Library, region: str, words: str) -> None:
    """The Search page's head for a search by example region (``CLIP_ID:SLOT``): the region's frame
    with its box, what is searched, and a control to drop the region (back to the words alone)."""
    clip_id, slot = (int(v) for v in region.split(":"))
    picture, text = st.columns([1, 3])
    try:
        picture.image(region_image(str(library.root), clip_id, slot, 160), width="stretch")
    except resources.USER_ERRORS as exc:
        picture.warning(f"No picture: {render.md_text(exc)}")
    clip = library.catalog.clip(clip_id)
    where = f"clip {clip_id} of {render.md_code(clip.video_id)}" if clip else f"clip {clip_id}"
    with text:
        st.markdown(f"**Searching by example region #{slot}** of {where}: clips holding similar "
                    "regions (cosine of the detector's features)"
                    + (f", fused with the words {render.md_code(words)} "
                       "(0.5 x region cosine + 0.5 x text cosine)." if words.strip() else
                       ". Type words above to combine them with the region."))
        if st.button("Search by words only", icon=":material/close:", key="_clear_region"):
            state.clear("region")
            st.rerun()
