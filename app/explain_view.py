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


def compare_panel(library, service, query: str, options: dict, result=None) -> None:
    """Both models' rankings of ``query`` side by side, with each clip's rank change; ``result``:
    the page's own search with ``options`` (then only the second model searches)."""
    from indexer.index.compare import side_by_side

    default = (library.manifest.get("model_no_regions") or {})
    checkpoint = st.text_input("Second model (a checkpoint folder; empty: the library's "
                               "no-region ablation)", key=state.bind("compare_model"),
                               on_change=state.from_widget, args=("compare_model",),
                               placeholder=str(default.get("checkpoint", "")) if isinstance(default, dict) else "")
    try:
        other = resources.get_compare_searcher(library, checkpoint.strip())
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


def attribution_bar(attribution, stream: str, labels, title: str, gradient: bool = False) -> go.Figure:
    """Occlusion drop (and integrated-gradient drop) per key of ``stream``, in the map's order."""
    drop = stream_attribution(attribution, stream, len(labels))
    fig = go.Figure(go.Bar(x=list(range(len(labels))), y=drop, name="occlusion"))
    if gradient and attribution.match_gradient is not None:
        grads = {(e.kind, e.index): -g for e, g in zip(attribution.elements, attribution.match_gradient)}
        fig.add_bar(x=list(range(len(labels))), y=[grads.get((_STREAM_KIND[stream], i), 0.0)
                                                   for i in range(len(labels))], name="gradients")
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
