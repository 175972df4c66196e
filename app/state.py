"""Page state shared by the pages and mirrored in the URL, so a copied link reopens the same view.

Every control whose value makes a view (the query, the example region, the clip, the filters, the signals, the result
count, the re-rank and comparison toggles, the layer, head, word and overlay, the colour stretch,
the frame filters, the played span, the evaluation split) is a named ``Param`` below with its URL
key, its default and how it is written as text. A value equal to its default is left out of the URL.

Values live under private session keys (``_state_<name>``) that survive page switches (Streamlit
drops the keys of widgets that a run does not draw); widgets bind through ``bind`` (or
``widget_key``) and copy their value back with ``on_change=from_widget``. ``init_from_url`` reads the
URL once per session; a value that does not parse is ignored (the control shows its default).

A link also records which library and model made the view (``lib`` and ``model``: their
fingerprints); ``link_mismatch`` says what differs from what this server serves.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import streamlit as st

LINK_KEYS = {"library": "lib", "model": "model"}  # the fingerprints a link records


def _bool(text: str) -> bool:
    if text in ("1", "true"):
        return True
    if text in ("0", "false"):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def _span(text: str) -> tuple[float, float]:
    start, end = (float(v) for v in text.split("-", 1))
    if not 0 <= start <= end:
        raise ValueError(f"not a span: {text!r}")
    return start, end


def _names(text: str) -> list[str]:
    return [v for v in text.split(",") if v]


def _region(text: str) -> str:
    """A region of the library as ``CLIP_ID:SLOT`` (``indexer.index.region_search``)."""
    clip, slot = text.split(":")
    if not (clip.isascii() and clip.isdigit() and slot.isascii() and slot.isdigit()) or len(clip) > 18 \
            or len(slot) > 4:
        raise ValueError(f"not a region: {text!r}")
    return f"{int(clip)}:{int(slot)}"


def _pair(text: str) -> tuple[str, str]:
    query, key = text.split(",", 1)
    return query, key


@dataclass(frozen=True)
class Param:
    """One piece of view state: its URL key, default, parser (text -> value, ValueError when the
    text is not one) and writer (value -> text), and the key of the widget bound to it."""

    url: str
    default: Any = None
    parse: Callable[[str], Any] = str
    text: Callable[[Any], str] = str
    widget: str = ""


PARAMS: dict[str, Param] = {
    # Search (the query and clip are shared by every page)
    "query": Param("q", "", widget="_w_query"),
    "clip": Param("clip"),
    "video": Param("video", "all videos", widget="_filter_video"),
    "task": Param("task", "all tasks", widget="_filter_task"),
    "mode": Param("mode", "hybrid", widget="_mode"),
    "k": Param("k", 12, int, widget="_k"),
    "absent": Param("absent", None, widget="_absent"),
    "compare": Param("compare", False, _bool, lambda v: "1" if v else "0", widget="_compare"),
    "compare_model": Param("compare_model", "", widget="_compare_checkpoint"),
    "region": Param("region", None, _region),  # search by example region: CLIP_ID:SLOT
    # Clip
    "seek": Param("t", None, _span, lambda v: f"{float(v[0]):.2f}-{float(v[1]):.2f}"),
    "classes": Param("classes", None, _names, ",".join, widget="_classes"),
    "min_score": Param("min_score", 0.0, float, lambda v: f"{float(v):g}", widget="_min_score"),
    # Attention
    "block": Param("block", widget="_w_block"),
    "head": Param("head", "mean", widget="_w_head"),
    "stretch": Param("stretch", False, _bool, lambda v: "1" if v else "0", widget="_stretch"),
    "word_block": Param("word_block", widget="_word_block"),
    "word": Param("word", None, int, widget="_word"),
    "overlay": Param("overlay", "attention", widget="_word_mode"),
    "rollout_out": Param("rollout_out", "text", widget="_roll_q"),
    "rollout_in": Param("rollout_in", "text", widget="_roll_k"),
    "pair": Param("pair", None, _pair, ",".join, widget="_sum_pair"),
    "statistic": Param("statistic", "mass", widget="_sum_stat"),
    # Model
    "split_model": Param("split", None, widget="_split_model"),
    "split_model_no_regions": Param("split_ablation", None, widget="_split_model_no_regions"),
}
URL_KEYS = {name: p.url for name, p in PARAMS.items()}


def _key(name: str) -> str:
    return f"_state_{name}"


def widget_name(name: str) -> str:
    """The session key of the widget bound to ``name``."""
    return PARAMS[name].widget if name in PARAMS and PARAMS[name].widget else f"_w_{name}"


def init_from_url() -> None:
    """Once per session: read the URL parameters into the state (unparsable values are ignored)."""
    if st.session_state.get("_state_loaded"):
        return
    for name, param in PARAMS.items():
        if param.url in st.query_params:
            try:
                st.session_state[_key(name)] = param.parse(st.query_params[param.url])
            except (ValueError, TypeError):
                pass
    st.session_state["_link"] = {name: st.query_params[url] for name, url in LINK_KEYS.items()
                                 if url in st.query_params}
    st.session_state["_state_loaded"] = True


def get(name: str, default=None):
    """The state's value of ``name``; else ``default``, else the parameter's default."""
    value = st.session_state.get(_key(name))
    if value is not None:
        return value
    return default if default is not None else (PARAMS[name].default if name in PARAMS else None)


def _url_text(name: str, value) -> str | None:
    """``value`` as the URL writes it; None when it is left out (empty or the default)."""
    param = PARAMS[name]
    if value is None or value == "" or value == param.default:
        return None
    if isinstance(value, (list, tuple)) and name == "classes" and not value:
        return ""
    return param.text(value)


def put(name: str, value) -> None:
    """Set a value and mirror it in the URL (left out when None, empty or the default)."""
    st.session_state[_key(name)] = value
    if name not in PARAMS:
        return
    url, text = PARAMS[name].url, _url_text(name, value)
    if text is None:
        if url in st.query_params:
            del st.query_params[url]
    elif st.query_params.get(url) != text:
        st.query_params[url] = text


def sync_url(fingerprints: dict[str, str] | None = None) -> None:
    """Write every state value (and the served library and model fingerprints) into the URL
    (a page switch clears the URL parameters)."""
    for name in PARAMS:
        put(name, st.session_state.get(_key(name)))
    for name, value in (fingerprints or {}).items():
        if value and st.query_params.get(LINK_KEYS[name]) != value:
            st.query_params[LINK_KEYS[name]] = value


def share_params(fingerprints: dict[str, str]) -> dict[str, str]:
    """The URL parameters of the whole view: every value not at its default, and the fingerprints."""
    params = {}
    for name, param in PARAMS.items():
        text = _url_text(name, st.session_state.get(_key(name)))
        if text is not None:
            params[param.url] = text
    params.update({LINK_KEYS[name]: value for name, value in fingerprints.items() if value})
    return params


def share_link(base: str, fingerprints: dict[str, str]) -> str:
    """``base`` (the page's address) with the whole view's parameters."""
    return f"{base}?{urllib.parse.urlencode(share_params(fingerprints))}"


def link_mismatch(fingerprints: dict[str, str]) -> list[str]:
    """The names (``library``, ``model``) whose fingerprint in the opened link differs from the
    served one (empty when the link recorded none, or the same)."""
    recorded = st.session_state.get("_link") or {}
    return [name for name, value in recorded.items() if value != fingerprints.get(name)]


def widget_key(name: str) -> str:
    """Key for a widget bound to ``name``; seeds the widget from the state when it has no value."""
    key = widget_name(name)
    value = st.session_state.get(_key(name))
    if key not in st.session_state and value is not None:
        st.session_state[key] = value
    return key


def bind(name: str, options: Sequence | None = None, default=None) -> str:
    """Key for a widget bound to ``name`` (draw it with no default of its own): seeded from the
    state, else ``default``, else the parameter's default; a value outside ``options`` (a link
    from another library, a hand-edited URL) falls back the same way. For a multiselect, pass its
    options: values outside them are dropped."""
    key = widget_name(name)
    fallback = PARAMS[name].default if default is None else default
    if key in st.session_state:
        current = st.session_state[key]
        if options is None or _valid(current, options):
            return key
    stored = value = st.session_state.get(_key(name))
    if value is None or (options is not None and not _valid(value, options)):
        value = fallback
    if isinstance(value, (list, tuple)) and name == "classes" and options is not None:
        value = [v for v in value if v in options]
    if value is not None and (options is None or _valid(value, options)):
        st.session_state[key] = value
    if stored is not None and value != stored:
        put(name, value)  # what the page shows, in the URL too
    return key


def _valid(value, options: Sequence) -> bool:
    if isinstance(value, list):
        return all(v in options for v in value)
    return value is None or value in options


def clear(name: str) -> None:
    """Forget ``name`` (its state, URL parameter and bound widget's value): back to its default."""
    put(name, None)
    st.session_state.pop(widget_name(name), None)


def from_widget(name: str) -> None:
    """``on_change`` callback: copy the bound widget's value into the state."""
    put(name, st.session_state.get(widget_name(name)))


def set_widget(name: str, value) -> None:
    """Set the state and the bound widget's value (call before the widget is drawn, or in a callback)."""
    put(name, value)
    st.session_state[widget_name(name)] = value
