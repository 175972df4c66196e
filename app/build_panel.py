"""The demo build's progress panel, shown above every page while the first launch builds the demo
library (``synthkitchen.build_progress`` is the record it reads): the stage in plain words
(what it does, why it is needed once), the videos searchable out of all, the time left from the
measured rate, and frames of the video being analysed. It refreshes itself every
``REFRESH_SEC`` and reruns the whole page when the stage changes, when the build ends, and on the
Search page when more videos become searchable (it then searches them too)."""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from app import render, resources
from synthkitchen import build_progress
from synthkitchen.build_progress import BuildProgress

REFRESH_SEC = 2.0


def duration_text(seconds: float) -> str:
    """``seconds`` as people say it: "about 40 s", "about 3 min"."""
    if seconds < 60:
        return f"about {max(5, int(round(seconds / 5.0)) * 5)} s"
    return f"about {int(round(seconds / 60.0))} min"


def count_text(progress: BuildProgress) -> str:
    """"Analysing video 7 of 24" (or "Rendering" while it is drawn) during the videos stage, with
    how many are searchable."""
    finished = len(progress.finished_at)
    searchable = f"{progress.searchable} of {progress.total} searchable"
    if progress.stage != "videos":
        return searchable if progress.videos_started else ""
    if finished >= progress.total:
        return searchable
    doing = "Analysing" if progress.current else "Rendering"
    failed = f", {progress.failed} failed" if progress.failed else ""
    return f"{doing} video {finished + 1} of {progress.total} ({searchable}{failed})"


def _watch_key(progress: BuildProgress | None, page: str | None) -> tuple:
    """What makes the page worth running again: the build's stage, its end, and on the Search page
    each video that becomes searchable (other pages are not disturbed by those)."""
    if progress is None:
        return (None,)
    return (progress.stage, progress.finished, progress.error,
            progress.searchable if page in (None, "", "search") else None)  # "": the default page, Search


def show(root: Path) -> None:
    """The panel for the demo library being built in ``root`` (a fragment refreshing itself)."""

    @st.fragment(run_every=REFRESH_SEC)
    def panel() -> None:
        progress = build_progress.read(root)
        key = _watch_key(progress, st.session_state.get("_page_path"))
        seen = st.session_state.get("_build_seen")
        st.session_state["_build_seen"] = key
        if seen is not None and seen != key:
            st.rerun()  # the whole page: the Search page's index grew, or the build ended
        _draw(root, progress)

    panel()


def _draw(root: Path, progress: BuildProgress | None) -> None:
    with st.container(border=True):
        started = resources.demo_builder_pid(root)
        if progress is None or started is not None and progress.pid != started:  # a record of an earlier run
            st.markdown("**Building the demo library** (first launch only)")
            st.caption("Starting the builder...")
            return
        if progress.error or not progress.finished and not progress.running():
            reason = render.md_text(progress.error) if progress.error else "its process ended"
            st.error(f"The demo build stopped ({reason}). Restart the explorer to resume it where it stopped.")
            return
        step = progress.step
        st.markdown(f"**Building the demo library** (first launch only) · {render.md_text(step.title)}")
        st.caption(f"{render.md_text(step.what)} {render.md_text(step.why)}")
        text = count_text(progress)
        left = build_progress.time_left_sec(progress, time.time())
        if progress.stage == "videos":
            text += f" · time left: {duration_text(left)}" if left is not None else " · time left: measuring..."
        fraction = len(progress.finished_at) / progress.total if progress.total else 0.0
        st.progress(min(1.0, fraction), text=text or step.title)
        frame = root / build_progress.FRAME
        if progress.stage == "videos" and progress.current and frame.is_file():
            try:
                st.image(frame.read_bytes(), caption=f"Frames of {progress.current}, being analysed")
            except OSError:
                pass  # replaced while read: the next refresh shows the next one
        if progress.searchable and progress.stage != "ready":
            st.caption("Search already works on the searchable videos; the rest are added as they are ready.")


def searchable_note(searchable: int) -> None:
    """While the demo is being built: how many of its videos the page searches now."""
    root = st.session_state.get("_demo_building")
    progress = build_progress.read(root) if root else None
    if progress is None:
        return
    st.info(f"**{searchable} of {progress.total} videos searchable.** The demo library is still being "
            "built: the other videos join the results as they are analysed.", icon=":material/hourglass_top:")
