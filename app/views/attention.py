"""Attention page: every attention map of one (query, clip) pair with the attribution of the same
elements beside it (and a second model's, when the side-by-side choice is on), word -> region
attention (or attribution) on the frames, attention rollout across layers, a layer x head summary
per stream pair, and how faithful each head is."""

from __future__ import annotations

import numpy as np
import streamlit as st

from actbert import attention_analysis as aa
from app import components, explain_view, render, resources, state
from indexer.index.service import ClipAttention

library = components.library()
ROOT = str(library.root)
st.title("Attention")
try:
    service = resources.get_service(library)
except resources.USER_ERRORS as exc:
    st.error(f"The attention explorer needs the library's model: {render.md_text(exc)}")
    st.stop()
FINGERPRINT = str(library.manifest.model_fingerprint)


@st.cache_resource(show_spinner="Running the model with attention maps...", max_entries=8)
def attention_for(root: str, fingerprint: str, clip: int, query: str) -> ClipAttention:
    return service.attention(clip, query)


@st.cache_resource(show_spinner="Removing each element and measuring the score...", max_entries=8)
def attribution_for(root: str, fingerprint: str, clip: int, query: str):
    """(Attribution with gradients, Faithfulness, curves) of the pair."""
    attribution = service.explain(clip, query, gradients=True)
    faith, curves = service.faithfulness(clip, query, attribution, attention_for(root, fingerprint, clip, query).sample.maps)
    return attribution, faith, curves


# ---- which query and clip ---------------------------------------------------------------------
left, right = st.columns([3, 1])
left.text_input("Query (words)", key=state.widget_key("query"), on_change=state.from_widget,
                args=("query",), placeholder="e.g. crack an egg into the bowl")
clip_raw = state.get("clip")
if clip_raw is None and st.session_state.get("_search_hits"):
    clip_raw = st.session_state["_search_hits"][0]
clip_id, view = components.clip_or_stop(library, clip_raw,
                                        "Open a clip (Search, then a result) to explore its attention.")
right.metric("Clip", f"{clip_id}", help=f"{render.md_text(view.clip.video_id)} {components.fmt_time(view.clip.start_sec, view.clip.end_sec)}")
query = (state.get("query") or "").strip() or view.clip.narration.strip() or "[CLS]"
if not (state.get("query") or "").strip():
    st.caption(f"No query given: using the clip's narration “{render.md_text(query)}”.")
try:
    attention = attention_for(ROOT, FINGERPRINT, clip_id, query)
except resources.USER_ERRORS as exc:
    st.error(f"The model could not run on this clip: {render.md_text(exc)}")
    st.stop()
sample = attention.sample
attribution, faith, curves = attribution_for(ROOT, FINGERPRINT, clip_id, query)
st.caption(f"why: {render.md_text(attribution.why())} (the largest drops of the matching probability "
           "when one element is removed)")
second = None  # a second model's attribution of the pair, drawn beside this model's
# The Search page's choice (state ``compare``), under a key of this page's own: a widget key
# another page drew keeps that page's widget identity, and would show its default here.
if "_compare_attention" not in st.session_state:
    st.session_state["_compare_attention"] = bool(state.get("compare"))
if st.toggle("Side by side with a second model", key="_compare_attention",
             on_change=lambda: state.put("compare", st.session_state["_compare_attention"])):
    st.caption("The same pair explained by the second model: its occlusion drops below, and beside "
               "each attention map.")
    checkpoint = explain_view.second_model_input(library, key="_compare_checkpoint_attention")
    second = explain_view.both_models_section(library, attribution, clip_id, query, checkpoint,
                                              key="_both_models")
st.caption(f"{render.md_code(view.clip.video_id)} {components.fmt_time(view.clip.start_sec, view.clip.end_sec)} · "
           f"{sample.score_text()} · kv_fusion = {sample.kv_fusion}"
           + ("" if sample.kv_fusion == "stack" else " (no injected key/value maps in this model)"))

maps = sample.maps
block_names = aa.blocks(maps)


def key_labels(query_stream: str, key: str) -> list[str]:
    if key != "injected":
        return sample.labels(key)
    pair = "c_r" if query_stream == "text" else "c_w"
    return [f"{pair} of {a}" for a in sample.action_labels]


def region_strip() -> None:
    """The region slots as box thumbnails cropped from their frames."""
    crops = [render.crop(attention.frames[k], box)
             for k, box in zip(attention.slot_frame, attention.slot_boxes)]
    captions = sample.region_labels[1:]
    if crops:
        st.image(crops, caption=captions, width=88)


# ---- the maps of one block ------------------------------------------------------------------
@st.fragment
def block_panel() -> None:
    default_block = next((b for b in block_names if b.startswith("tangled.")), block_names[0])
    a, b = st.columns([3, 2])
    block = a.selectbox("Layer / block (schedule order)", block_names,
                        key=state.bind("block", block_names, default=default_block),
                        on_change=state.from_widget, args=("block",))
    heads = aa.num_heads(maps, block)
    options = ["mean", *[str(h) for h in range(heads)]]
    head_text = b.segmented_control("Head", options, key=state.bind("head", options),
                                    on_change=state.from_widget, args=("head",)) or "mean"
    state.put("block", block)
    state.put("head", head_text)
    head = None if head_text == "mean" else int(head_text)
    stretch = st.toggle("Stretch colours to each map's range", key=state.bind("stretch"),
                        on_change=state.from_widget, args=("stretch",),
                        help="Off: colours span 0 to the map's largest weight.")
    pairs = aa.block_pairs(maps, block)
    columns = st.columns(2)
    for i, (q, k) in enumerate(pairs):
        matrix = aa.head_matrix(aa.find(maps, block, q, k), head)
        fig = render.heatmap(matrix, key_labels(q, k), sample.labels(q),
                             f"{aa.PAIR_TITLES[(q, k)]} · {block} · head {head_text}",
                             x_title=f"keys: {k}", y_title=f"queries: {q}", stretch=stretch)
        columns[i % 2].plotly_chart(fig, key=f"_map_{block}_{q}_{k}", config=render.EXPORT_CONFIG)
        columns[i % 2].plotly_chart(
            explain_view.attribution_bar(attribution, k, key_labels(q, k),
                                         f"attribution of the {k} keys (match drop when removed)",
                                         gradient=True, second=second),
            key=f"_attr_{block}_{q}_{k}", config=render.EXPORT_CONFIG)
    if block.startswith("tangled.") and sample.kv_fusion == "stack":
        st.caption("In a stacked tangled block a stream's own keys and its injected pairs share one "
                   "softmax: the two maps of a row sum to 1 together.")
    word_panel(block if block.startswith("tangled.") else None, head)
    components.share_panel()  # a fragment's rerun changed the URL state


def word_panel(block: str | None, head: int | None) -> None:
    st.subheader("Word -> regions")
    tangled = [b for b in block_names if b.startswith("tangled.")]
    if block is None:
        block = st.selectbox("Tangled block", tangled, key=state.bind("word_block", tangled),
                             on_change=state.from_widget, args=("word_block",))
        state.put("word_block", block)
    tokens = sample.tokens
    words = range(len(tokens))
    word = st.selectbox("Word", words, format_func=lambda i: f"{i}: {tokens[i]}",
                        key=state.bind("word", words, default=min(1, len(tokens) - 1)),
                        on_change=state.from_widget, args=("word",))
    state.put("word", word)
    result = aa.word_to_region(maps, block, word, head)
    overlays = ["attention", "attribution"]
    mode = st.segmented_control("Box opacity", overlays, key=state.bind("overlay", overlays),
                                on_change=state.from_widget, args=("overlay",)) or "attention"
    if mode == "attribution":
        drop = explain_view.stream_attribution(attribution, "region", len(result.weights)).clip(min=0)
        total = float(drop.sum())
        result = aa.WordRegions(drop / total if total > 0 else drop, total,
                                "attribution: the matching probability lost when the region is removed")
        st.caption(f"Attribution mode: box opacity is the match drop when the region slot is "
                   f"removed (largest drop {float(drop.max(initial=0)):.3f}); it does not depend on the word.")
    else:
        st.caption(f"ActBERT has no text-over-region attention; here it is {result.method} "
                   f"({block}). The word's raw mass on that path is {result.mass:.3f}; box opacity "
                   f"shows its share per region (global token: {result.weights[0]:.2f}).")
    weights = result.weights[1:] / max(float(result.weights[1:].max(initial=0)), 1e-9)
    drawn = []
    for k, frame in enumerate(attention.frames):
        rows = np.flatnonzero(attention.slot_frame == k)
        drawn.append(render.draw_boxes(
            frame, attention.slot_boxes[rows], [sample.region_labels[i + 1] for i in rows],
            [result.weights[i + 1] for i in rows], opacity=[weights[i] for i in rows], height=200))
    columns = st.columns(min(4, len(drawn)))
    for k, image in enumerate(drawn):
        columns[k % len(columns)].image(image, caption=f"{view.frame_times_sec[k]:.1f} s")
    st.download_button("Download as PNG", render.png_bytes(render.montage(drawn)),
                       file_name=f"clip{clip_id}_word{word}_regions.png", mime="image/png",
                       icon=":material/download:", key="_word_png")


st.markdown("**Regions of this clip** (slot 0 is the global region token)")
region_strip()
block_panel()


@st.fragment
def rollout_panel() -> None:
    st.subheader("Attention rollout across layers")
    st.caption("Abnar & Zuidema (2020) over all three streams: head-mean maps with the residual "
               "identity, tangled blocks composed through their cross maps (see "
               "actbert/attention_analysis.py). Row: an output token; column: an input token.")
    a, b = st.columns(2)
    q = a.selectbox("Output stream", aa.STREAMS, key=state.bind("rollout_out", aa.STREAMS),
                    on_change=state.from_widget, args=("rollout_out",))
    k = b.selectbox("Input stream", aa.STREAMS, key=state.bind("rollout_in", aa.STREAMS),
                    on_change=state.from_widget, args=("rollout_in",))
    matrix = aa.rollout(maps)
    part = aa.rollout_slice(matrix, aa.stream_lengths(maps), q, k)
    st.plotly_chart(render.heatmap(part, sample.labels(k), sample.labels(q),
                                   f"rollout: {q} outputs from {k} inputs"),
                    key="_rollout", config=render.EXPORT_CONFIG)
    components.share_panel()


@st.fragment
def summary_panel() -> None:
    st.subheader("Layer x head summary")
    present = [p for p in aa.PAIR_ORDER if any((m.query, m.key) == p for m in maps)]
    a, b = st.columns(2)
    pair = a.selectbox("Stream pair", present, format_func=lambda p: aa.PAIR_TITLES[p],
                       key=state.bind("pair", present, default=present[0]),
                       on_change=state.from_widget, args=("pair",))
    statistic = b.segmented_control("Statistic", aa.STATISTICS, key=state.bind("statistic", aa.STATISTICS),
                                    on_change=state.from_widget, args=("statistic",)) or "mass"
    names, values = aa.head_summary(maps, pair[0], pair[1], statistic)
    grid = explain_view.mark_heads(render.summary_grid(names, values, f"{statistic}: {aa.PAIR_TITLES[pair]}"),
                                   names, faith.unfaithful())
    st.plotly_chart(grid, key="_summary", config=render.EXPORT_CONFIG)
    st.caption("mass: mean probability the queries put on these keys; max: mean of each query's "
               "largest weight; entropy: mean normalised entropy (0 = one key, 1 = uniform).")
    components.share_panel()


@st.fragment
def faithfulness_panel() -> None:
    st.subheader("Faithfulness: does a head's attention predict the effect?")
    st.caption("Per layer x head: Spearman's rank correlation between the attention each element "
               "receives (relative to a uniform head) and the matching probability lost when it is "
               "removed (actbert/faithfulness.py). x: below 0.2, also marked on the summary above.")
    st.plotly_chart(explain_view.faithfulness_figure(faith), key="_faith", config=render.EXPORT_CONFIG)
    a, b = st.columns(2)
    a.plotly_chart(explain_view.curves_figure(curves, "deletion"), key="_deletion", config=render.EXPORT_CONFIG)
    b.plotly_chart(explain_view.curves_figure(curves, "insertion"), key="_insertion", config=render.EXPORT_CONFIG)
    st.caption("Deletion: elements removed most important first by each ranking (lower area = the "
               "ranking finds what the score needs); insertion: restored in that order (higher area).")


rollout_panel()
summary_panel()
faithfulness_panel()
