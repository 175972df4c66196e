"""One drawer per SynthKitchen object class (containers, tools, food) and the hands, on the
box-tracking canvas of ``indexer.synthkitchen.canvas``; ``DRAWERS`` maps class name to drawer.

All geometry is in design pixels (see ``indexer.synthkitchen.canvas``).
"""

from __future__ import annotations

import math

import numpy as np

from indexer.synthkitchen.canvas import (
    Canvas,
    Colour,
    Hand,
    Thing,
    axes_of,
    ellipse_pts,
    local,
    mix,
    shade,
)

# ---------------------------------------------------------------- containers and tools

def draw_board(cv: Canvas, t: Thing) -> None:
    """Cutting board: a rounded wooden slab 130 x 64 with a visible front edge and grain."""
    x, y = t.x, t.y - t.z
    rect = np.concatenate([
        ellipse_pts(x + 57, y - 24, 8, 8, 0, -90, 0, 6), ellipse_pts(x + 57, y + 24, 8, 8, 0, 0, 90, 6),
        ellipse_pts(x - 57, y + 24, 8, 8, 0, 90, 180, 6), ellipse_pts(x - 57, y - 24, 8, 8, 0, 180, 270, 6)])
    cv.poly(rect + (0, 5), shade(t.color, 0.62))
    cv.poly(rect, t.color, shade(t.color, 0.7), 1.2)
    for i, off in enumerate((-16, -5, 7, 18)):
        xs = np.linspace(x - 55, x + 55, 8)
        cv.line(np.stack([xs, y + off + 1.5 * np.sin(xs / 9 + i)], 1), shade(t.color, 0.88), 0.8)
    cv.ellipse(x + 46, y - 15, 4, 2.5, shade(t.color, 0.6))  # hanging hole


def _liquid(cv: Canvas, t: Thing, cx: float, cy: float, rx: float, ry: float) -> None:
    """Contents surface of a deep container (bowl, cup) at level ``t.fill``."""
    if t.fill <= 0.01:
        return
    k = 0.62 + 0.33 * min(t.fill, 1.0)
    sy = cy + (1.0 - min(t.fill, 1.0)) * ry * 0.55
    cv.ellipse(cx, sy, rx * k, ry * k, t.fill_color, shade(t.fill_color, 0.85), 0.8)
    _texture(cv, t, cx, sy, rx * k, ry * k)


def _texture(cv: Canvas, t: Thing, cx: float, cy: float, rx: float, ry: float) -> None:
    """Swirl, froth and seasoning specks on a contents surface."""
    if t.swirl:
        a = np.linspace(0, 4.5, 16)
        r = 0.15 + 0.6 * a / 4.5
        pts = np.stack([cx + rx * r * np.cos(a + t.swirl), cy + ry * r * np.sin(a + t.swirl)], 1)
        cv.line(pts, shade(t.fill_color, 1.25), 1.2)
    for i in range(int(t.froth * 14)):
        a, r = i * 2.399, 0.75 * math.sqrt((i + 0.5) / 14)
        cv.ellipse(cx + rx * r * math.cos(a), cy + ry * r * math.sin(a), 1.6, 1.1, shade(t.fill_color, 1.35))
    for i in range(int(t.speckle * 24)):
        a, r = i * 2.399 + 1.0, 0.8 * math.sqrt((i + 0.5) / 24)
        cv.ellipse(cx + rx * r * math.cos(a), cy + ry * r * math.sin(a), 0.8, 0.7, t.speckle_color)


def draw_bowl(cv: Canvas, t: Thing) -> None:
    """Bowl: a 60-wide ceramic body with an elliptical rim and its contents."""
    x, y = t.x, t.y - t.z
    rim_y = y - 18
    body = np.concatenate([ellipse_pts(x, rim_y, 30, 11, 0, 0, 180, 14), ellipse_pts(x, y, 17, 5, 0, 180, 0, 10)])
    cv.poly(body, t.color, shade(t.color, 0.6), 1.0)
    cv.poly(ellipse_pts(x - 10, rim_y + 10, 6, 3, -20), shade(t.color, 1.35))
    cv.ellipse(x, rim_y, 30, 11, shade(t.color, 1.15), shade(t.color, 0.6), 1.0)
    cv.ellipse(x, rim_y + 1, 26.5, 9, shade(t.color, 0.78))
    _liquid(cv, t, x, rim_y + 1, 26.5, 9)


def draw_cup(cv: Canvas, t: Thing) -> None:
    """Mug: 24 x 26 body, handle on the right, liquid visible in the top."""
    x, y = t.x, t.y - t.z
    top = y - 26
    cv.line(ellipse_pts(x + 13, top + 12, 7, 7.5, 0, -90, 90, 10), shade(t.color, 0.85), 3.2)
    body = np.concatenate([ellipse_pts(x, top, 12, 4.5, 0, 0, 180, 10), ellipse_pts(x, y, 11, 4, 0, 180, 0, 10)])
    cv.poly(body, t.color, shade(t.color, 0.6), 1.0)
    cv.poly(np.array([[x - 8, top + 4], [x - 5, top + 4], [x - 5, y - 2], [x - 8, y - 3]]), shade(t.color, 1.3))
    cv.ellipse(x, top, 12, 4.5, shade(t.color, 1.1), shade(t.color, 0.6), 1.0)
    cv.ellipse(x, top + 0.5, 10, 3.5, shade(t.color, 0.55))
    _liquid(cv, t, x, top + 0.5, 10, 3.5)


def draw_plate(cv: Canvas, t: Thing) -> None:
    """Plate: a flat 64-wide disc with a rim ring; contents lie on it as a blob."""
    x, y = t.x, t.y - t.z
    cv.ellipse(x, y + 2, 32, 12, shade(t.color, 0.7))
    cv.ellipse(x, y, 32, 12, t.color, shade(t.color, 0.75), 1.0)
    cv.ellipse(x, y, 22, 8, shade(t.color, 0.93), shade(t.color, 0.85), 0.8)
    _blob(cv, t, x, y, 18)


def _blob(cv: Canvas, t: Thing, x: float, y: float, r_max: float) -> None:
    """Shallow contents (pancake, scrambled egg) as an irregular disc of radius ~ sqrt(fill)."""
    if t.fill <= 0.01:
        return
    r = r_max * math.sqrt(min(t.fill, 1.0))
    yy = y - t.content_z
    a = np.linspace(0, 2 * math.pi, 24, endpoint=False)
    rr = r * (1 + 0.08 * np.sin(3 * a + t.uid) + 0.05 * np.sin(7 * a))
    pts = np.stack([x + rr * np.cos(a), yy + 0.42 * rr * np.sin(a) * t.content_squash], 1)
    col = mix(t.fill_color, (170, 105, 40), t.brown * 0.8)
    cv.poly(pts, col, shade(col, 0.8), 1.0)
    if t.stirred:
        for i in range(9):
            aa, rad = i * 2.399, r * 0.7 * math.sqrt((i + 0.5) / 9)
            cv.ellipse(x + rad * math.cos(aa), yy + 0.4 * rad * math.sin(aa), 3.2, 2.0, shade(col, 1.15),
                       shade(col, 0.85), 0.6)
    _texture(cv, t, x, yy, r, 0.42 * r)


def draw_pan(cv: Canvas, t: Thing) -> None:
    """Frying pan: dark 68-wide disc with a long handle to the right."""
    x, y = t.x, t.y - t.z
    d, _ = axes_of(t.angle + 90)
    end = np.array([x, y - 3]) + d * 72
    cv.line(np.array([[x + 30 * d[0], y - 3 + 30 * d[1]], end]), (35, 35, 38), 6.5)
    cv.line(np.array([end - d * 14, end]), (20, 20, 20), 7.0)
    cv.ellipse(x, y, 34, 14, (55, 55, 60), (25, 25, 28), 1.0)
    cv.ellipse(x, y - 3, 34, 13, (80, 80, 86), (30, 30, 32), 1.0)
    cv.ellipse(x, y - 2, 28.5, 10.5, t.color)
    cv.ellipse(x - 9, y - 6, 9, 3, shade(t.color, 1.4))
    _blob(cv, t, x, y - 2, 22)


def draw_bottle(cv: Canvas, t: Thing) -> None:
    """Bottle 56 tall standing on ``(x, y)``, tilted by ``angle`` about its middle."""
    c = (t.x, t.y - t.z - 20)
    body = [(-20, -9), (8, -9), (16, -4), (22, -3.5), (22, 3.5), (16, 4), (8, 9), (-20, 9)]
    cv.poly(local(c, t.angle, body), t.color, shade(t.color, 0.55), 1.0)
    cv.poly(local(c, t.angle, [(-8, -9), (6, -9), (6, 9), (-8, 9)]), t.color2)
    cv.poly(local(c, t.angle, [(-6, -9), (-2, -9), (-2, 9), (-6, 9)]), shade(t.color2, 0.7))
    cv.poly(local(c, t.angle, [(-18, -6), (5, -6), (5, -4), (-18, -4)]), shade(t.color, 1.4))
    cv.poly(local(c, t.angle, [(22, -4.2), (28, -4.2), (28, 4.2), (22, 4.2)]), (200, 40, 40), (120, 20, 20), 0.8)


def bottle_mouth(t: Thing) -> np.ndarray:
    """Design coordinates of the opening of a bottle (or kettle spout, cup/bowl rim) at its pose."""
    if t.cls == "kettle":
        return local((t.x, t.y - t.z - 18), t.angle, [(14, -30)])[0]
    if t.cls == "bottle":
        return local((t.x, t.y - t.z - 20), t.angle, [(28, 0)])[0]
    return local((t.x, t.y - t.z - 12), t.angle, [(0, -30)])[0]


def draw_kettle(cv: Canvas, t: Thing) -> None:
    """Kettle 46 wide: dome body, lid knob, spout to the left, arched handle."""
    c = (t.x, t.y - t.z - 18)
    col = t.color
    cv.line(local(c, t.angle, [(10, 14), (26, 10), (30, 0), (26, -10), (10, -14)]), (40, 40, 40), 4.0)
    cv.poly(local(c, t.angle, [(-4, -16), (8, -16), (16, -28), (13, -31), (2, -22)]), shade(col, 0.9),
            shade(col, 0.55), 1.0)
    body = np.concatenate([local(c, t.angle, [(-18, -23), (6, -18), (12, -10), (14, 0), (12, 10), (6, 18),
                                              (-18, 23)])])
    cv.poly(body, col, shade(col, 0.55), 1.0)
    cv.poly(local(c, t.angle, [(-12, -12), (4, -9), (4, -6), (-12, -8)]), shade(col, 1.45))
    cv.poly(local(c, t.angle, [(13, -5), (16, -5), (16, 5), (13, 5)]), (40, 40, 40))


def draw_knife(cv: Canvas, t: Thing) -> None:
    """Chef's knife 62 long; ``(x, y)`` is the handle centre, ``angle`` the tip direction."""
    g = (t.x, t.y - t.z)
    cv.poly(local(g, t.angle, [(11, 2.2), (46, 2.2), (52, 0), (50, -2), (40, -5.5), (11, -5.5)]),
            (205, 208, 214), (120, 124, 130), 0.8)
    cv.line(local(g, t.angle, [(13, 1.6), (46, 1.6)]), (150, 152, 158), 0.8)
    if t.spread > 0:
        cv.poly(local(g, t.angle, [(30, -1), (48, -1), (46, -4), (32, -4.5)]), t.spread_color)
    cv.poly(local(g, t.angle, [(-12, 3), (11, 3), (11, -3.5), (-12, -3.5)]), t.color, shade(t.color, 0.5), 0.8)
    for u in (-6, 2):
        cv.ellipse(*local(g, t.angle, [(u, -0.3)])[0], 1.0, 1.0, (210, 210, 210))


def draw_spoon(cv: Canvas, t: Thing) -> None:
    """Spoon 46 long; ``(x, y)`` is the handle middle, the bowl at the ``angle`` end."""
    g = (t.x, t.y - t.z)
    cv.line(local(g, t.angle, [(-16, 0), (16, 0)]), t.color, 3.0)
    p = local(g, t.angle, [(23, 0)])[0]
    cv.ellipse(p[0], p[1], 8, 5, t.color, shade(t.color, 0.55), 0.8, angle=t.angle - 90)
    cv.ellipse(p[0], p[1], 5, 3, shade(t.color, 1.3), angle=t.angle - 90)


def draw_whisk(cv: Canvas, t: Thing) -> None:
    """Balloon whisk 46 long: a handle and four wire loops towards ``angle``."""
    g = (t.x, t.y - t.z)
    cv.line(local(g, t.angle, [(-18, 0), (0, 0)]), t.color, 4.0)
    for w in (3.0, 6.0, 9.0, 11.5):
        u = np.linspace(0, math.pi, 14)
        loop = np.concatenate([np.stack([28 * np.sin(u / 2) ** 0.8, w * np.sin(u)], 1),
                               np.stack([28 * np.sin(u[::-1] / 2) ** 0.8, -w * np.sin(u[::-1])], 1)])
        cv.line(local(g, t.angle, loop), (200, 203, 210), 0.9, closed=True)


# ---------------------------------------------------------------- food

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


SHOULDER = {"left": (50.0, 330.0), "right": (270.0, 330.0)}  # off-screen, design px


def draw_hand(cv: Canvas, h: Hand, key: int, skin: Colour, sleeve: Colour) -> None:
    """Hand with a forearm reaching in from the shoulder below the frame edge.

    The box of ``key`` covers palm, thumb and fingers, not the arm. ``h.angle`` is bent at most
    45 degrees away from the forearm's direction so the wrist stays plausible.
    """
    w = np.array([h.x, h.y - h.z])
    sh = np.array(SHOULDER[h.side])
    arm = math.degrees(math.atan2(w[0] - sh[0], sh[1] - w[1]))
    angle = arm + max(-45.0, min(45.0, (h.angle - arm + 180) % 360 - 180))
    sign = 1.0 if h.side == "left" else -1.0
    cv.line(np.array([w, sh]), skin, 14.0)
    cuff = w + (sh - w) * min(26.0 / max(np.linalg.norm(sh - w), 1.0), 1.0)
    cv.line(np.array([cuff, sh]), shade(sleeve, 0.75), 21.0)
    cv.line(np.array([cuff + (sh - w) * 0.02, sh]), sleeve, 19.0)
    curl = 1.0 - 0.45 * h.grip
    with cv.track(key):
        for k, v in enumerate((-7.0, -2.5, 2.5, 7.0)):
            wig = 1.5 * math.sin(h.wiggle + 1.7 * k) if h.wiggle else 0.0
            length = (12.5 - abs(v - 1) * 0.3) * curl
            base, tip = (16.0, v * 0.9), (16.0 + length, v * 1.15 + wig)
            cv.line(local(w, angle, [base, tip]), skin, 4.6)
            cv.line(local(w, angle, [tip]), shade(skin, 1.12), 2.2)
        cv.ellipse(*local(w, angle, [(9, 0)])[0], 10.5, 12.5, skin, shade(skin, 0.72), 0.9, angle=angle + 90)
        thumb = [(6, -sign * 8.5), (13 + 4 * h.grip, -sign * (15 - 5 * h.grip))]
        cv.line(local(w, angle, thumb), skin, 5.2)
        cv.line(local(w, angle, [(16, -4.8), (16, 4.8)]), shade(skin, 0.85), 0.6)


DRAWERS = {
    "cutting_board": draw_board, "bowl": draw_bowl, "cup": draw_cup, "plate": draw_plate, "pan": draw_pan,
    "bottle": draw_bottle, "kettle": draw_kettle, "knife": draw_knife, "spoon": draw_spoon,
    "whisk": draw_whisk, "tomato": draw_tomato, "cucumber": draw_cucumber, "carrot": draw_carrot,
    "apple": draw_apple, "bread": draw_bread, "egg": draw_egg,
}
