""""Why this clip?" on the pages: drawing what ``indexer.index.explain`` and ``actbert.faithfulness``
compute (the "why" lines, the "as if absent" re-rank, two models side by side, attribution beside
attention, the faithfulness grid and the deletion/insertion curves). Renders only."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from app import render, resources, state

WHY_TOP = 3
WHY_BATCH = 12  # why lines computed together (one results page's worth)
_STREAM_KIND = {"text": "word", "region": "region", "action": "action", "injected": "action"}


# ---- Search page -------------------------------------------------------------------------------


def fill_why_lines(service, query: str, hits, slots, fingerprint: str) -> None:
    """After the results are on screen: each hit's top elements by occlusion, into its slot
    (kept per query, clip and model in the session, so reruns cost nothing). The hits' lines are
    computed ``WHY_BATCH`` at a time, each group's occlusions in shared batches
    (``ClipService.why_lines``), so a page's first lines come together and early."""
    cache = st.session_state.setdefault("_why_cache", {})
    pending = []
    for hit, slot in zip(hits, slots):
        key = (fingerprint, query, hit.clip.clip_id)
        if key in cache:
            slot.caption(f"why: {render.md_text(cache[key])}")
        else:
            slot.caption(":material/hourglass_empty: why...")
            pending.append((hit, slot))
    for start in range(0, len(pending), WHY_BATCH):
        group = pending[start:start + WHY_BATCH]
        ids = [hit.clip.clip_id for hit, _ in group]
        try:
            lines = service.why_lines(query, ids, WHY_TOP)
        except resources.USER_ERRORS as exc:
            lines = {i: f"(no explanation: {exc})" for i in ids}
        for hit, slot in group:
            line = lines.get(hit.clip.clip_id, "(no explanation: the clip is no longer in the library)")
            cache[(fingerprint, query, hit.clip.clip_id)] = line
            slot.caption(f"why: {render.md_text(line)}")


def absent_ranks(service, query: str, hits, absent: str) -> dict[int, object]:
    """clip id -> ``AbsentRank`` of the page's clips without ``absent`` (kept in the session)."""
    cache = st.session_state.setdefault("_absent_cache", {})
    key = (query, absent, tuple(h.clip.clip_id for h in hits))
    if key not in cache:
        with st.spinner(f"Re-ranking without {absent}..."):
            rows = service.rank_without(query, [h.clip.clip_id for h in hits], absent)
        cache[key] = {r.clip_id: r for r in rows}
    return cache[key]


def rank_change_text(row) -> str:
    arrow = "▲" if row.change > 0 else "▼" if row.change < 0 else "="
    return (f"without: rank {row.rank} → {row.rank_without} {arrow}{abs(row.change) or ''} · "
            f"match {row.score:.3f} → {row.score_without:.3f} ({row.removed} removed)")


def second_model_input(library, key: str | None = None) -> str:
    """The second model's checkpoint box (state ``compare_model``; empty: the library's no-region
    ablation), shared by the Search and Attention pages; returns its stripped text. ``key``: a
    widget key of the calling page's own (seeded from the state; the state's bound key belongs
    to the Search page's widget)."""
    default = library.manifest.model_no_regions
    if key is None:
        key, change, args = state.bind("compare_model"), state.from_widget, ("compare_model",)
    else:
        st.session_state.setdefault(key, state.get("compare_model") or "")
        change, args = (lambda: state.put("compare_model", st.session_state[key])), ()
    checkpoint = st.text_input("Second model (a checkpoint folder; empty: the library's "
                               "no-region ablation)", key=key, on_change=change, args=args,
                               placeholder=default.checkpoint if default else "")
    return checkpoint.strip()


@st.cache_resource(show_spinner="Removing each element under the second model...", max_entries=8)
def second_attribution(root: str, fingerprint: str, checkpoint: str, clip_id: int, query: str):
    """(occlusion ``Attribution`` of the pair under the second model, its checkpoint, whether it
    is fed regions): its clip inputs are its searcher's (``CompareSearcher.clip_inputs``)."""
    from indexer.index.service import ClipService

    library = resources.open_library(root)
    other = resources.get_compare_searcher(library, checkpoint)
    return ClipService(library, other).explain(clip_id, query), str(other.checkpoint), other.use_regions


def both_models_figure(rows, title: str) -> go.Figure:
    """Match drop when each element is removed, under both models (``attribution.both_effects``
    rows; an element one model's pair lacks has no bar)."""
    labels = [render.plotly_text(r.label) for r in rows]
    fig = go.Figure()
    for name, values in (("library model", [r.first for r in rows]),
                         ("second model", [r.second for r in rows])):
        fig.add_bar(x=list(range(len(rows))), y=[None if v is None else -v for v in values], name=name)
    fig.update_xaxes(tickmode="array", tickvals=list(range(len(rows))), ticktext=labels, tickangle=-45)
    fig.update_layout(title={"text": title, "font": {"size": 13}}, height=300, barmode="group",
                      margin={"l": 10, "r": 10, "t": 36, "b": 10}, yaxis_title="match drop")
    return fig


def both_models_section(library, first, clip_id: int, query: str, checkpoint: str, key: str):
    """One clip's attribution under the library's model (``first``) and the second model: both
    "why" lines and the match drop of every element side by side. Returns the second model's
    ``Attribution`` (None, with a message, when there is no second model)."""
    from actbert.attribution import both_effects

    fingerprint = str(library.manifest.model_fingerprint)
    try:
        second, folder, regions = second_attribution(str(library.root), fingerprint, checkpoint,
                                                     int(clip_id), query)
    except resources.USER_ERRORS as exc:
        st.info(f"No second model to explain the clip with: {render.md_text(exc)}")
        return None
    st.caption(f"why, library model (match {first.match:.3f}): {render.md_text(first.why())}")
    st.caption(f"why, second model {render.md_code(folder)}{'' if regions else ' (no regions)'} "
               f"(match {second.match:.3f}): {render.md_text(second.why())}")
    st.plotly_chart(both_models_figure(both_effects(first, second),
                                       f"clip {clip_id}: match drop per element, both models"),
                    key=key, config=render.EXPORT_CONFIG)
    return second


def compare_panel(library, service, query: str, options: dict, result=None) -> None:
    """Both models' rankings of ``query`` side by side, with each clip's rank change; ``result``:
    the page's own search with ``options`` (then only the second model searches)."""
    from indexer.index.compare import side_by_side

    checkpoint = second_model_input(library)
    try:
        other = resources.get_compare_searcher(library, checkpoint)
        report = side_by_side(service.searcher, other, query, first_result=result, **options)
    except resources.USER_ERRORS as exc:
        st.info(f"No second model to compare with: {render.md_text(exc)}")
        return
    left, right = st.columns(2)
    for column, side, other_side in ((left, "first", "second"), (right, "second", "first")):
        part = report[side]
        column.markdown(f"**{'Library model' if side == 'first' else 'Second model'}** "
                        f"{render.md_code(part['checkpoint'])}" + ("" if report["uses_regions"][side] else " (no regions)"))
        column.dataframe(
            [{"rank": h["rank"], "clip": h["clip_id"], "video": h["video_id"],
              f"rank ({other_side})": h[f"rank_{other_side}"],
              "change": h["rank_change"], "narration": h["narration"][:60]} for h in part["hits"]],
            hide_index=True, key=f"_compare_{side}")
    listed = list(dict.fromkeys(h["clip_id"] for side in ("first", "second") for h in report[side]["hits"]))
    clip_id = st.selectbox("Both models' attribution of a clip", listed, index=None,
                           placeholder="choose a clip of either list", key="_compare_clip",
                           help="Each element's removal under each model (occlusion, one batch per model).")
    if clip_id is not None:
        both_models_section(library, service.explain(clip_id, query), clip_id, query, checkpoint,
                            key="_compare_attribution")


# ---- Attention page ----------------------------------------------------------------------------


def stream_attribution(attribution, stream: str, length: int) -> np.ndarray:
    """(length,) the score drop when each slot of ``stream`` is removed (0 where the slot is not
    an element: [CLS], [SEP], the global region token)."""
    kind = _STREAM_KIND[stream]
    out = np.zeros(length)
    for element, effect in zip(attribution.elements, attribution.match_effect):
        if element.kind == kind and element.index < length:
            out[element.index] = -effect
    return out


def attribution_bar(attribution, stream: str, labels, title: str, gradient: bool = False,
                    second=None) -> go.Figure:
    """Occlusion drop (and integrated-gradient drop) per key of ``stream``, in the map's order;
    ``second``: a second model's attribution of the same pair, its occlusion drop beside."""
    drop = stream_attribution(attribution, stream, len(labels))
    fig = go.Figure(go.Bar(x=list(range(len(labels))), y=drop, name="occlusion"))
    if gradient and attribution.match_gradient is not None:
        grads = {(e.kind, e.index): -g for e, g in zip(attribution.elements, attribution.match_gradient)}
        fig.add_bar(x=list(range(len(labels))), y=[grads.get((_STREAM_KIND[stream], i), 0.0)
                                                   for i in range(len(labels))], name="gradients")
    if second is not None:
        fig.add_bar(x=list(range(len(labels))), y=stream_attribution(second, stream, len(labels)).tolist(),
                    name="second model (occlusion)")
    fig.update_xaxes(tickmode="array", tickvals=list(range(len(labels))), ticktext=[render.plotly_text(x) for x in labels],
                     tickangle=-45)
    fig.update_layout(title={"text": title, "font": {"size": 13}}, height=220, barmode="group",
                      margin={"l": 10, "r": 10, "t": 36, "b": 10}, yaxis_title="match drop")
    return fig


def faithfulness_figure(result) -> go.Figure:
    """The layer x head Spearman grid (-1..1; blank: the block covers < 2 elements)."""
    values = np.nan_to_num(result.grid, nan=0.0)
    fig = render.heatmap(values, [f"head {h}" for h in range(values.shape[1])], list(result.blocks),
                         f"faithfulness (Spearman with the occlusion drops) · rollout "
                         f"{result.rollout:+.2f}", colorscale="RdBu", zmax=1.0, stretch=True)
    fig.data[0].update(zmin=-1.0, zmax=1.0)
    return mark_heads(fig, result.blocks, result.unfaithful())


def mark_heads(fig: go.Figure, blocks, heads) -> go.Figure:
    """An x on each (block, head) cell of a layer x head grid whose attention does not predict
    the effect."""
    rows = {b: i for i, b in enumerate(blocks)}
    cells = [(h, rows[b]) for b, h in heads if b in rows]
    if cells:
        fig.add_scatter(x=[c[0] for c in cells], y=[c[1] for c in cells], mode="markers",
                        marker={"symbol": "x", "size": 10, "color": "crimson"},
                        name="attention does not predict the effect", hoverinfo="name")
    return fig


def curves_figure(curves: dict, which: str) -> go.Figure:
    """Deletion or insertion curves of every ranking, match probability over fraction removed."""
    fig = go.Figure()
    for name, curve in curves.items():
        y = curve.deletion if which == "deletion" else curve.insertion
        area = curve.deletion_area if which == "deletion" else curve.insertion_area
        fig.add_scatter(x=np.linspace(0, 1, len(y)), y=y, mode="lines+markers",
                        name=f"{name} (area {area:.3f})")
    fig.update_layout(title={"text": f"{which} curves", "font": {"size": 13}}, height=300,
                      xaxis_title="fraction of elements " + ("removed" if which == "deletion" else "restored"),
                      yaxis_title="match probability", margin={"l": 10, "r": 10, "t": 36, "b": 10})
    return fig
