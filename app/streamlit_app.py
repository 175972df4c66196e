"""ActBERT explorer: the router. Opens the library, then runs the chosen page.

    streamlit run app/streamlit_app.py --server.address 127.0.0.1 --server.headless true [-- --library DIR]
"""

from __future__ import annotations

import streamlit as st

from app import build_panel, components, render, resources, state
from synthkitchen import ground_truth as synthkitchen_ground_truth

synthkitchen_ground_truth.register()  # the Library page's ingest reads SynthKitchen's ground truth

st.set_page_config(page_title="ActBERT explorer", page_icon="🎬", layout="wide")
st.set_option("client.toolbarMode", "viewer")  # no "Deploy" button in a local explorer
state.init_from_url()


def _library():
    """The open library, or None after showing why there is none. With no library configured, the
    demo: built in the background on the first launch (its progress panel shown above the page),
    opened as soon as it has a model and an index, so pages work on the videos already analysed."""
    root = resources.configured_library()
    st.session_state["_demo_building"] = None
    if root is None:
        try:
            root = resources.demo_folder()
            stage = resources.demo_state(root)
            if stage != "built":
                resources.start_demo_build(root)
        except resources.USER_ERRORS as exc:
            st.error(f"The demo library could not be opened: {render.md_text(exc)}")
            return None
        if stage != "built":
            st.session_state["_demo_building"] = str(root)
            build_panel.show(root)
            if stage == "starting":
                return None
    try:
        return resources.open_library(str(root))
    except resources.USER_ERRORS as exc:
        st.error(f"The library could not be opened: {render.md_text(exc)}")
        return None


library = _library()
if library is None:
    st.stop()
st.session_state["library_root"] = str(library.root)
resources.warm(library)  # model, index and clip inputs loaded once per server, before the first query
fingerprints = resources.fingerprints(library)
st.session_state["_fingerprints"] = fingerprints
differ = state.link_mismatch(fingerprints)
if differ:
    recorded = st.session_state.get("_link") or {}
    st.warning("This link was made with " + " and ".join(
        f"another {name} ({render.md_code(recorded[name])}; this server serves "
        f"{render.md_code(fingerprints.get(name))})" for name in differ)
        + ": clip ids, scores and results may differ from what the link's author saw.",
        icon=":material/link_off:")

pages = [
    st.Page("views/search.py", title="Search", icon=":material/search:", url_path="search", default=True),
    st.Page("views/clip.py", title="Clip", icon=":material/movie:", url_path="clip"),
    st.Page("views/attention.py", title="Attention", icon=":material/grid_on:", url_path="attention"),
    st.Page("views/model.py", title="Model", icon=":material/insights:", url_path="model"),
    st.Page("views/library.py", title="Library", icon=":material/video_library:", url_path="library"),
]
page = st.navigation(pages)
st.session_state["_page_path"] = page.url_path
st.session_state["_page_paths"] = [p.url_path for p in pages]
with st.sidebar:
    st.caption(f"Library: {render.md_code(library.root)}")
    model = library.manifest.model
    st.caption(f"Model: {render.md_code(model.checkpoint if model else 'none')}")
    address = st.get_option("server.address")
    if address not in ("127.0.0.1", "localhost", "::1"):
        st.warning("This server is not bound to localhost: anyone on the network can open it. "
                   "Start it with `--server.address 127.0.0.1`.")
    st.session_state["_share_slot"] = st.empty()
state.sync_url(fingerprints)
page.run()
components.share_panel()
