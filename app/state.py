"""Page state shared by the pages and mirrored in the URL, so a copied link reopens the same view.

Values live under private session keys (``_state_<name>``) that survive page switches (Streamlit
drops the keys of widgets that a run does not draw); widgets bind through ``widget_key`` and copy
their value back with ``on_change``. URL parameters: ``q`` (query), ``clip``, ``block``, ``head``.
"""

from __future__ import annotations

import streamlit as st

URL_KEYS = {"query": "q", "clip": "clip", "block": "block", "head": "head"}


def _key(name: str) -> str:
    return f"_state_{name}"


def init_from_url() -> None:
    """Once per session: read the URL parameters into the state."""
    if st.session_state.get("_state_loaded"):
        return
    for name, param in URL_KEYS.items():
        if param in st.query_params:
            st.session_state[_key(name)] = st.query_params[param]
    st.session_state["_state_loaded"] = True


def get(name: str, default=None):
    return st.session_state.get(_key(name), default)


def put(name: str, value) -> None:
    """Set a value and mirror it in the URL (removed from the URL when None or empty)."""
    st.session_state[_key(name)] = value
    param = URL_KEYS.get(name)
    if param is None:
        return
    if value is None or value == "":
        if param in st.query_params:
            del st.query_params[param]
    elif st.query_params.get(param) != str(value):
        st.query_params[param] = str(value)


def sync_url() -> None:
    """Write every state value into the URL (a page switch clears the URL parameters)."""
    for name in URL_KEYS:
        put(name, get(name))


def widget_key(name: str) -> str:
    """Key for a widget bound to ``name``; seeds the widget from the state when it has no value."""
    key = f"_w_{name}"
    if key not in st.session_state and get(name) is not None:
        st.session_state[key] = get(name)
    return key


def from_widget(name: str) -> None:
    """``on_change`` callback: copy the bound widget's value into the state."""
    put(name, st.session_state.get(f"_w_{name}"))


def set_widget(name: str, value) -> None:
    """Set the state and the bound widget's value (call before the widget is drawn, or in a callback)."""
    put(name, value)
    st.session_state[f"_w_{name}"] = value
