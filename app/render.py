"""Pure drawing: boxes on frames (OpenCV), PNG bytes, and Plotly figures. No model logic.

Images are (H, W, 3) uint8 RGB; boxes (N, 4) xyxy in pixels of the image they are drawn on
(before ``scale_to_height``, which rescales image and boxes together).
"""

from __future__ import annotations

import colorsys
import hashlib
import html
import re
from typing import Sequence

import cv2
import numpy as np
import plotly.graph_objects as go

EXPORT_CONFIG = {"displaylogo": False,
                 "toImageButtonOptions": {"format": "png", "scale": 2, "filename": "actbert"}}
# the ASCII punctuation that can open Markdown, HTML, math, autolinks or Streamlit directives
_MARKUP = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:&=^])")


def md_text(value: object) -> str:
    """``value`` as Markdown that shows exactly its characters: every punctuation mark that can open
    markup is backslash-escaped (CommonMark), so no image, link, autolink, HTML, code, math, emoji
    or Streamlit directive (``:material/...:``, ``:red[...]``) can form; line breaks become spaces.
    Every user-supplied string (narration, names, paths, queries, error reasons) goes through it."""
    return _MARKUP.sub(r"\\\1", " ".join(str(value).splitlines()))


def md_code(value: object) -> str:
    """``value`` as an inline code span of Markdown (shown literally, whatever it holds)."""
    text = " ".join(str(value).splitlines())
    ticks = "`" * (1 + max((len(run) for run in re.findall("`+", text)), default=0))
    return f"{ticks}{text}{ticks}" if ticks == "`" else f"{ticks} {text} {ticks}"


def plotly_text(value: object) -> str:
    """``value`` for Plotly labels and hover text, which read a subset of HTML: shown literally."""
    return html.escape(str(value), quote=False)


def color_of(label: str) -> tuple[int, int, int]:
    """A stable, saturated RGB colour for a label."""
    hue = int(hashlib.md5(label.encode()).hexdigest()[:6], 16) / 0xFFFFFF
    r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def scale_to_height(image: np.ndarray, boxes: np.ndarray, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Resize ``image`` to ``height`` pixels (aspect kept) and its boxes with it."""
    factor = height / image.shape[0]
    width = max(1, round(image.shape[1] * factor))
    resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)
    return resized, np.asarray(boxes, np.float32).reshape(-1, 4) * factor


def draw_boxes(image: np.ndarray, boxes: np.ndarray, labels: Sequence[str],
               scores: Sequence[float] | None = None, opacity: Sequence[float] | None = None,
               height: int | None = None, tags: Sequence[str] | None = None) -> np.ndarray:
    """A copy of ``image`` with labelled boxes. ``opacity`` (N,) in [0, 1] fills each box with its
    colour at that strength and fades its outline (attention display); ``height`` rescales first;
    ``tags`` (N,) prefix each label (the region slots, "#3")."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    out = np.ascontiguousarray(image).copy()
    if height:
        out, boxes = scale_to_height(out, boxes, height)
    thickness = max(1, out.shape[0] // 180)
    font = 0.35 + out.shape[0] / 1200
    if opacity is not None:
        fill = out.copy()
        for box, label, alpha in zip(boxes, labels, opacity):
            x1, y1, x2, y2 = (int(round(v)) for v in box)
            layer = fill.copy()
            cv2.rectangle(layer, (x1, y1), (x2, y2), color_of(label), -1)
            a = float(np.clip(alpha, 0, 1)) * 0.6
            fill = cv2.addWeighted(layer, a, fill, 1 - a, 0)
        out = fill
    for i, (box, label) in enumerate(zip(boxes, labels)):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        color = color_of(label)
        if opacity is not None and opacity[i] < 0.05:
            continue
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thickness)
        text = label if scores is None else f"{label} {scores[i]:.2f}"
        text = text if tags is None else f"{tags[i]} {text}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, 1)
        ty = max(th + base, y1)
        cv2.rectangle(out, (x1, ty - th - base), (x1 + tw + 2, ty), color, -1)
        cv2.putText(out, text, (x1 + 1, ty - base), cv2.FONT_HERSHEY_SIMPLEX, font, (0, 0, 0), 1,
                    cv2.LINE_AA)
    return out


def crop(image: np.ndarray, box: np.ndarray, size: int = 72) -> np.ndarray:
    """The box's content as a ``size`` x ``size`` thumbnail (aspect kept, padded)."""
    h, w = image.shape[:2]
    x1, y1, x2, y2 = np.clip(np.round(box).astype(int), 0, [w - 1, h - 1, w, h])
    patch = image[y1:max(y2, y1 + 1), x1:max(x2, x1 + 1)]
    factor = size / max(patch.shape[:2])
    patch = cv2.resize(patch, (max(1, round(patch.shape[1] * factor)), max(1, round(patch.shape[0] * factor))))
    out = np.full((size, size, 3), 240, np.uint8)
    oy, ox = (size - patch.shape[0]) // 2, (size - patch.shape[1]) // 2
    out[oy:oy + patch.shape[0], ox:ox + patch.shape[1]] = patch
    return out


def montage(images: Sequence[np.ndarray], columns: int = 4, gap: int = 4) -> np.ndarray:
    """Images of one size tiled left to right, top to bottom, on white."""
    h, w = images[0].shape[:2]
    rows = -(-len(images) // columns)
    cols = min(columns, len(images))
    out = np.full((rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap, 3), 255, np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = image
    return out


def png_bytes(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("PNG encoding failed")
    return data.tobytes()


def heatmap(matrix: np.ndarray, x_labels: Sequence[str], y_labels: Sequence[str], title: str,
            x_title: str = "", y_title: str = "", zmax: float | None = None,
            colorscale: str = "Viridis", stretch: bool = False) -> go.Figure:
    """A heatmap with one row per query and one column per key. Labels go on numeric axes so
    repeated tokens stay separate columns. Colours span 0..max, or min..max when ``stretch``;
    NaN cells (a block without that head) stay blank."""
    matrix = np.asarray(matrix, np.float64)
    rows, cols = matrix.shape
    x_labels, y_labels = [plotly_text(x) for x in x_labels], [plotly_text(y) for y in y_labels]
    finite = matrix[np.isfinite(matrix)]
    zmax = float(finite.max(initial=0.0)) if zmax is None else zmax
    zmin = float(finite.min(initial=0.0)) if stretch else 0.0
    hover = [[f"{y_labels[i]} -> {x_labels[j]}: "
              + (f"{matrix[i, j]:.3f}" if np.isfinite(matrix[i, j]) else "no such head")
              for j in range(cols)] for i in range(rows)]
    fig = go.Figure(go.Heatmap(z=matrix, x=list(range(cols)), y=list(range(rows)), zmin=zmin,
                               zmax=max(zmax, zmin + 1e-9), colorscale=colorscale, text=hover,
                               hoverinfo="text", colorbar={"thickness": 10}))
    fig.update_xaxes(tickmode="array", tickvals=list(range(cols)), ticktext=x_labels,
                     tickangle=-45, title=x_title)
    fig.update_yaxes(tickmode="array", tickvals=list(range(rows)), ticktext=y_labels,
                     autorange="reversed", title=y_title)
    fig.update_layout(title={"text": title, "font": {"size": 14}},
                      height=max(220, 90 + 22 * rows), margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig


def timeline(segments: Sequence, duration_sec: float, current: tuple[float, float] | None = None) -> go.Figure:
    """One row per track, one bar per segment (hover: label and probability); ``current``
    shades the open clip. Each bar's customdata is (start_sec, end_sec, clip_id or -1)."""
    fig = go.Figure()
    tracks: list[str] = []
    for seg in segments:
        if seg.track not in tracks:
            tracks.append(seg.track)
    for seg in segments:
        prob = "" if seg.prob is None else f" ({seg.prob:.2f})"
        label = plotly_text(seg.label)
        detail = f"<br>{plotly_text(seg.detail)}" if seg.detail else ""
        fig.add_trace(go.Bar(
            x=[seg.end_sec - seg.start_sec], base=[seg.start_sec], y=[seg.track], orientation="h",
            marker={"color": "rgb%s" % (color_of(seg.label),), "line": {"color": "white", "width": 1}},
            text=[label], textposition="inside", insidetextanchor="middle",
            hovertext=[f"{label}{prob}{detail}<br>{seg.start_sec:.1f}-{seg.end_sec:.1f} s"],
            hoverinfo="text", customdata=[[seg.start_sec, seg.end_sec, seg.clip_id if seg.clip_id is not None else -1]],
            showlegend=False))
    if current:
        fig.add_vrect(x0=current[0], x1=current[1], fillcolor="gray", opacity=0.15, line_width=0)
    fig.update_layout(barmode="overlay", height=70 + 42 * max(1, len(tracks)),
                      margin={"l": 10, "r": 10, "t": 10, "b": 30}, clickmode="event+select",
                      xaxis={"title": "seconds", "range": [0, duration_sec]},
                      yaxis={"categoryorder": "array", "categoryarray": tracks[::-1]})
    return fig


def relevance_timeline(starts: Sequence[float], ends: Sequence[float], scores: Sequence[float],
                       labels: Sequence[str], span: tuple[float, float], duration_sec: float,
                       current: tuple[float, float] | None = None, title: str = "") -> go.Figure:
    """One bar per clip along the video (x: its seconds; top: its relevance, bars rising from just
    below the lowest score so the best clip is the tallest whatever the sign of the cosines), the
    best span shaded and named, the open clip outlined. Each bar's customdata is (start_sec, end_sec)."""
    starts, ends = np.asarray(starts, float), np.asarray(ends, float)
    scores = np.asarray(scores, float)
    spread = float(scores.max() - scores.min()) or 1e-3
    floor, top = float(scores.min()) - 0.15 * spread, float(scores.max()) + 0.15 * spread
    in_span = (starts >= span[0] - 1e-6) & (ends <= span[1] + 1e-6)
    fig = go.Figure(go.Bar(
        x=((starts + ends) / 2).tolist(), width=(np.maximum(ends - starts, 1e-3) * 0.95).tolist(),
        y=(scores - floor).tolist(), base=[floor] * len(scores), marker={"color": ["#d62728" if s else "#7f7f7f" for s in in_span]},
        customdata=np.stack([starts, ends], 1).tolist(),
        hovertext=[f"{a:.1f}-{b:.1f} s · relevance {s:.3f}<br>{plotly_text(label)}"
                   for a, b, s, label in zip(starts, ends, scores, labels)],
        hoverinfo="text", showlegend=False, name="relevance"))
    fig.add_vrect(x0=span[0], x1=span[1], fillcolor="#d62728", opacity=0.12, line_width=0,
                  annotation_text=f"best span {span[0]:.1f}-{span[1]:.1f} s",
                  annotation_position="top left")
    if current:
        fig.add_vrect(x0=current[0], x1=current[1], fillcolor="rgba(0,0,0,0)", opacity=1.0,
                      line={"color": "black", "width": 1, "dash": "dot"})
    fig.update_layout(title={"text": plotly_text(title), "font": {"size": 13}}, height=240,
                      margin={"l": 10, "r": 10, "t": 40, "b": 30}, clickmode="event+select",
                      xaxis={"title": "seconds", "range": [0, duration_sec]},
                      yaxis={"title": "relevance (cosine)", "range": [floor, top]})
    return fig


def summary_grid(blocks: Sequence[str], values: np.ndarray, title: str) -> go.Figure:
    """Layer x head grid (rows: blocks in schedule order, columns: heads)."""
    return heatmap(values, [f"head {h}" for h in range(values.shape[1])], list(blocks), title,
                   colorscale="Blues", zmax=max(1e-9, float(np.nanmax(values, initial=0.0))))
