"""The food drawers of SynthKitchen (tomato, cucumber, carrot, apple, bread, egg), whole, peeled,
cut into slices or chunks, or cracked; ``synthkitchen.draw`` lists them in ``DRAWERS``.

All geometry is in design pixels (see ``synthkitchen.canvas``).
"""

from __future__ import annotations

import math

import numpy as np

from synthkitchen.canvas import Canvas, Thing, ellipse_pts, local, mix, shade

FLESH = {"tomato": (240, 90, 70), "cucumber": (200, 230, 150), "carrot": (250, 150, 60),
         "apple": (250, 240, 190), "bread": (240, 215, 160)}


def _pieces(cv: Canvas, t: Thing, x: float, y: float, length: float, r: float) -> float:
    """Draw the cut-off pieces of a food item; returns the length still whole (design px)."""
    if t.pieces <= 0:
        return length
    flesh, skin = FLESH.get(t.cls, (230, 200, 150)), mix(t.color, FLESH.get(t.cls, t.color), t.peeled)
    frac = t.pieces / max(t.n_pieces, 1)
    for i in range(t.pieces):
        if t.pile:
            a = i * 2.399 + t.uid
            px, py = x + 11 * math.sqrt(i / t.n_pieces + 0.1) * math.cos(a), y + 5 * math.sin(a)
        else:
            px, py = x + length / 2 - (i + 0.5) * (length / t.n_pieces) * 1.15 + 8, y
        if t.piece_style == "slice":
            cv.ellipse(px, py, r * 0.85, r * 0.5, skin, shade(skin, 0.6), 0.8)
            cv.ellipse(px, py, r * 0.62, r * 0.34, flesh)
            if t.cls in ("tomato", "cucumber"):
                for k in range(3):
                    a = k * 2.1 + i
                    cv.ellipse(px + r * 0.3 * math.cos(a), py + r * 0.15 * math.sin(a), 1.0, 0.7, (240, 230, 170))
        else:
            s = r * 0.55
            q = np.array([[-s, -s * 0.6], [s, -s * 0.8], [s * 0.9, s * 0.6], [-s * 0.8, s * 0.7]])
            cv.poly(q + (px, py - 2), flesh, skin, 1.2)
    return length * (1 - frac)


def draw_tomato(cv: Canvas, t: Thing) -> None:
    """Tomato: red sphere r=13 with a green calyx; slices/chunks once cut."""
    x, y = t.x, t.y - t.z
    if t.pieces >= t.n_pieces:
        _pieces(cv, t, x, y, 30, 13)
        return
    rest = _pieces(cv, t, x, y, 30, 13)
    r = 13 * (0.5 + 0.5 * rest / 30)
    cx = x - (30 - rest) / 2
    cv.ellipse(cx, y - r, r, r * 0.92 * t.squash, t.color, shade(t.color, 0.55), 1.0)
    cv.ellipse(cx - r * 0.35, y - r * 1.4, r * 0.3, r * 0.18, shade(t.color, 1.45), angle=-30)
    for k in range(5):
        p = local((cx, y - r * 1.8), k * 72, [(4.5, 0)])[0]
        cv.line(np.array([[cx, y - r * 1.8], p]), (60, 130, 40), 2.0)


def _long_food(cv: Canvas, t: Thing, length: float, r: float, taper: float) -> tuple[float, float, float]:
    """A long vegetable lying along x: returns (centre x of the whole part, y, whole length)."""
    x, y = t.x, t.y - t.z
    rest = _pieces(cv, t, x, y, length, r)
    if rest <= 1:
        return x, y, 0.0
    cx = x - (length - rest) / 2
    skin = mix(t.color, FLESH[t.cls], t.peeled)
    half = rest / 2
    pts = np.concatenate([ellipse_pts(cx + half - r, y - r, r, r * t.squash, 0, -90, 90, 10),
                          ellipse_pts(cx - half + r * taper, y - r, r * taper + 0.5, r * taper * t.squash + 0.5,
                                      0, 90, 270, 10)])
    cv.poly(pts, skin, shade(skin, 0.55), 1.0)
    cv.line(np.array([[cx - half + 4, y - r * 1.5], [cx + half - 5, y - r * 1.55]]), shade(skin, 1.35), 1.6)
    return cx, y, rest


def draw_cucumber(cv: Canvas, t: Thing) -> None:
    """Cucumber 60 x 14, dark green with pale flecks; lighter when peeled."""
    cx, y, rest = _long_food(cv, t, 60, 7, 0.9)
    for i in range(int(rest / 9) * (t.peeled < 0.5)):
        cv.ellipse(cx - rest / 2 + 6 + i * 9, y - 7 + (i % 2) * 3 - 1.5, 1.2, 0.8, (150, 200, 120))


def draw_carrot(cv: Canvas, t: Thing) -> None:
    """Carrot 56 long tapering to the left, leafy top on the right."""
    cx, y, rest = _long_food(cv, t, 56, 6.5, 0.25)
    if rest <= 1:
        return
    skin = mix(t.color, FLESH["carrot"], t.peeled)
    for i in range(int(rest / 10)):
        xx = cx - rest / 2 + 10 + i * 10
        cv.line(np.array([[xx, y - 10], [xx + 1, y - 6]]), shade(skin, 0.75), 0.8)
    if t.pieces == 0:
        base = np.array([cx + rest / 2, y - 6.5])
        for a in (50, 75, 100, 125):
            cv.line(np.array([base, local(base, a, [(14, 0)])[0]]), (60, 150, 50), 2.2)


def draw_apple(cv: Canvas, t: Thing) -> None:
    """Apple r=14 with stem and leaf; cut into flesh-coloured wedges."""
    x, y = t.x, t.y - t.z
    if t.pieces > 0:
        saved, t.piece_style = t.piece_style, "chunk"
        rest = _pieces(cv, t, x, y, 30, 14)
        t.piece_style = saved
        if rest <= 1:
            return
    skin = mix(t.color, FLESH["apple"], t.peeled)
    cv.ellipse(x, y - 13, 14, 13 * t.squash, skin, shade(skin, 0.55), 1.0)
    cv.ellipse(x - 5, y - 18, 4, 2.5, shade(skin, 1.4), angle=-30)
    cv.line(np.array([[x, y - 24], [x + 2, y - 31]]), (100, 60, 30), 2.0)
    cv.ellipse(x + 6, y - 29, 5, 2.2, (80, 160, 50), angle=-25)


def draw_bread(cv: Canvas, t: Thing) -> None:
    """Slice of bread lying flat, 40 wide: crust, crumb, toasting, spread; two halves once cut."""
    if t.pieces > 0:
        _bread_part(cv, t, -99.0, -1.5, -2.0)
        _bread_part(cv, t, 1.5, 99.0, 2.0)
    else:
        _bread_part(cv, t, -99.0, 99.0, 0.0)


def _bread_part(cv: Canvas, t: Thing, lo: float, hi: float, shift: float) -> None:
    """The part of the slice between ``x + lo`` and ``x + hi``, moved ``shift`` along x."""
    x, y = t.x, t.y - t.z
    s = 0.62 * t.squash

    def clip(p: np.ndarray) -> np.ndarray:
        p = np.array(p, dtype=np.float64)
        p[:, 0] = np.clip(p[:, 0], x + lo, x + hi) + shift
        return p

    crown = np.concatenate([ellipse_pts(x - 9, y - 12 * s, 11, 8 * s, 0, 180, 360, 10),
                            ellipse_pts(x + 9, y - 12 * s, 11, 8 * s, 0, 180, 360, 10)])
    outline = np.concatenate([[[x - 18, y + 16 * s]], crown, [[x + 18, y + 16 * s]]])
    crumb = mix(FLESH["bread"], (185, 120, 50), t.brown * 0.85)
    cv.poly(clip(outline), mix(t.color, (120, 70, 25), t.brown * 0.6), shade(t.color, 0.6), 0.8)
    cv.poly(clip((outline - (x, y)) * (0.82, 0.8) + (x, y + 0.5)), crumb)
    if t.spread > 0:
        top = y - 18 * s
        cut = top + (34 * s) * min(t.spread, 1.0)
        xs = np.linspace(x - 14, x + 14, 9)
        wave = np.minimum(cut + 1.5 * np.sin(xs * 0.9), y + 12 * s)
        layer = np.concatenate([[[x - 14, top + 4 * s], [x + 14, top + 4 * s]], np.stack([xs[::-1], wave[::-1]], 1)])
        cv.poly(clip(layer), t.spread_color)
    for i in range(5):
        cx = x - 8 + i * 4
        if lo < cx - x < hi:
            cv.ellipse(cx + shift, y - 2 * s + (i % 2) * 5 * s, 0.9, 0.6, shade(crumb, 0.85))


def draw_egg(cv: Canvas, t: Thing) -> None:
    """Egg: an upright shell 14 x 19; once cracked, a yolk (in a bowl) or a fried egg (in a pan)."""
    x, y = t.x, t.y - t.z
    if t.cracked:
        if t.pile:  # in a bowl: yolk on the contents
            cv.ellipse(x, y, 8, 4, (245, 240, 215))
            cv.ellipse(x, y - 1, 4.2, 2.8, (250, 185, 30), (220, 140, 20), 0.6)
            return
        a = np.linspace(0, 2 * math.pi, 20, endpoint=False)
        rr = 15 * (1 + 0.12 * np.sin(3 * a + t.uid) + 0.06 * np.sin(5 * a))
        cv.poly(np.stack([x + rr * np.cos(a), y + 0.45 * rr * np.sin(a) * t.squash], 1),
                mix((252, 250, 245), (200, 150, 80), t.brown * 0.5), (215, 210, 200), 0.8)
        cv.ellipse(x + 1, y - 2, 5.5, 4 * t.squash, (250, 180, 25), (215, 135, 20), 0.8)
        cv.ellipse(x - 0.5, y - 3.5, 1.8, 1.0, (255, 225, 140))
        return
    if t.split > 0:
        o = 7 * t.split
        cv.poly(ellipse_pts(x - o, y - 9, 7, 9.5, 0, 90, 270, 12), t.color, shade(t.color, 0.6), 0.8)
        cv.poly(ellipse_pts(x + o, y - 9, 7, 9.5, 0, -90, 90, 12), t.color, shade(t.color, 0.6), 0.8)
        return
    cv.ellipse(x, y - 9.5, 7, 9.5, t.color, shade(t.color, 0.6), 0.9)
    cv.ellipse(x - 2.5, y - 13, 1.8, 3.0, shade(t.color, 1.3), angle=15)
    if t.crack_line:
        cv.line(np.array([[x - 7, y - 9], [x - 3, y - 11], [x, y - 8], [x + 3, y - 11], [x + 7, y - 9]]),
                (90, 70, 50), 0.8)
