"""One drawer per SynthKitchen object class (containers and tools here, food in
``synthkitchen.draw_food``) and the hands, on the box-tracking canvas of
``synthkitchen.canvas``; ``DRAWERS`` maps class name to drawer.

All geometry is in design pixels (see ``synthkitchen.canvas``).
"""

from __future__ import annotations

import math

import numpy as np

from synthkitchen.canvas import (
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
from synthkitchen.draw_food import (
    draw_apple,
    draw_bread,
    draw_carrot,
    draw_cucumber,
    draw_egg,
    draw_tomato,
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
