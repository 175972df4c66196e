"""Frame rendering for SynthKitchen: scene state, one motion per verb, per-frame boxes.

Each verb is a pure function of the scene at the start of its step and the progress ``u`` in
[0, 1] through the step; the frame loop applies it to a copy of the scene for every frame and to
the scene itself at the step's end (``u = 1`` is the outcome: pieces cut, liquid poured, ...).
Motions are periodic where the real action is (chop strokes, stirring circles, whisk strokes,
finger rubbing) at 1-3 Hz, so 32 frames sampled at 8 FPS show several periods.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable, Iterator

import cv2
import numpy as np

from indexer.synthkitchen.draw import (DESIGN_SIZE, DRAWERS, Canvas, Hand, Thing, bottle_mouth, draw_hand,
                                       ellipse_pts, mix, shade)
from indexer.synthkitchen.tasks import OBJECT_CLASSES, TOOLS

if TYPE_CHECKING:
    from indexer.synthkitchen.corpus import StepPlan, VideoPlan

HAND_TRACK = {"left": 1000, "right": 1001}  # track ids of the hands in the box arrays
REST = {"left": (22.0, 250.0, 0.0, 20.0), "right": (298.0, 250.0, 0.0, -20.0)}  # x, y, z, angle
SURFACE_Z = {"cutting_board": 5.0, "plate": 2.0, "pan": 4.0, "bread": 3.0, "bowl": 13.0, "cup": 22.0}
TILT = {"bottle": -115.0, "kettle": -55.0, "bowl": -65.0, "pan": -30.0, "cup": -75.0}
RIM_Y = {"bowl": 18.0, "cup": 26.0, "pan": 3.0, "plate": 0.0}  # contents surface above footprint
TEA, WATER, EGG_WHITE = (150, 88, 40), (205, 222, 236), (242, 238, 215)


def ease(u: float) -> float:
    """Smoothstep of ``u`` clipped to [0, 1]."""
    u = min(max(u, 0.0), 1.0)
    return u * u * (3 - 2 * u)


def seg(u: float, a: float, b: float) -> float:
    """Progress of ``u`` through the phase ``[a, b]``, clipped to [0, 1]."""
    return min(max((u - a) / (b - a), 0.0), 1.0)


def lerp(p: tuple[float, ...], q: tuple[float, ...], t: float) -> tuple[float, ...]:
    return tuple(a + (b - a) * t for a, b in zip(p, q))


@dataclass
class Scene:
    """Everything on the counter: things by uid, both hands, tool homes, peel debris, effects."""

    things: dict[int, Thing]
    hands: dict[str, Hand]
    homes: dict[int, tuple[float, float, float]]  # tool uid -> (x, y, angle)
    debris: list[tuple[float, float, tuple[int, int, int], int]] = field(default_factory=list)
    held: list[int] = field(default_factory=list)  # drawn above everything but hands and effects
    fx: list[Callable[[Canvas], None]] = field(default_factory=list)

    def copy(self) -> "Scene":
        return Scene({k: copy.copy(v) for k, v in self.things.items()},
                     {k: copy.copy(v) for k, v in self.hands.items()}, self.homes, list(self.debris))

    def pos(self, uid: int) -> tuple[float, float, float]:
        """Absolute (x, y, z) of a thing's footprint, following its parents."""
        t = self.things[uid]
        if t.parent is None:
            return t.x, t.y, t.z
        px, py, pz = self.pos(t.parent)
        return px + t.dx, py + t.dy, pz + SURFACE_Z.get(self.things[t.parent].cls, 0.0) + t.z

    def detach(self, uid: int) -> None:
        """Make a thing free-standing at its current absolute position."""
        t = self.things[uid]
        t.x, t.y, t.z = self.pos(uid)
        t.parent = None

    def children(self, uid: int) -> list[int]:
        return [k for k, t in self.things.items() if t.parent == uid and t.visible]


def set_hand(sc: Scene, side: str, target: tuple[float, float, float, float], t: float, grip: float = 0.0) -> None:
    """Move a hand from rest towards ``target`` (x, y, z, angle) by eased fraction ``t``."""
    h = sc.hands[side]
    h.x, h.y, h.z, h.angle = lerp(REST[side], target, ease(t))
    h.grip = grip


def grasp(x: float, y: float, z: float, angle: float = 0.0) -> tuple[float, float, float, float]:
    """Wrist pose whose fingers close around the point (x, y) at height z."""
    a = math.radians(angle)
    return x - 20 * math.sin(a), y + 20 * math.cos(a), z, angle


def hold_tool(sc: Scene, side: str, tool: int, x: float, y: float, z: float, angle: float, t: float) -> None:
    """Tool at pose (x, y, z, angle) blended from its home by ``t``; the hand on its handle."""
    k = sc.things[tool]
    hx, hy, ha = sc.homes[tool]
    e = ease(t)
    k.x, k.y, k.z, k.angle = hx + (x - hx) * e, hy + (y - hy) * e, z * e, ha + (angle - ha) * e
    if t > 0:
        sc.held.append(tool)
    hand_angle = -15.0 if side == "right" else 15.0
    set_hand(sc, side, grasp(k.x + (4 if side == "right" else -4), k.y - 2, k.z, hand_angle), 1.0, 0.8)


def side_for(x: float) -> tuple[str, str]:
    """(acting hand, other hand) for work at design x: the nearer hand acts."""
    return ("left", "right") if x < 150 else ("right", "left")


def reach_then(u: float, a: float, b: float, c: float, d: float) -> float:
    """Hand weight: 0 -> 1 over [a, b], held, 1 -> 0 over [c, d]."""
    return seg(u, a, b) - seg(u, c, d)


def drop_offset(sc: Scene, dest: int, uid: int) -> tuple[float, float]:
    """Where on ``dest`` a placed thing lands, relative to its centre."""
    d = sc.things[dest]
    taken = [sc.things[k] for k in sc.children(dest) if k != uid]
    if d.cls == "cutting_board":
        return (30.0, 0.0) if any(t.dx < 0 for t in taken) else (-30.0, 0.0)
    n = len(taken)
    return ((-7.0, 0.0), (7.0, 1.0), (0.0, -3.0), (-3.0, 3.0))[n % 4] if d.cls == "bowl" else (0.0, 0.0)


# ---------------------------------------------------------------- verbs

def v_place(sc: Scene, st: StepPlan, u: float, dur: float) -> None:
    """Grab the patient, carry it in an arc to the destination, let go, withdraw."""
    uid, dest = st.object_ids[0], st.object_ids[1]
    x0, y0, z0 = sc.pos(uid)
    dx, dy = drop_offset(sc, dest, uid)
    px, py, pz = sc.pos(dest)
    x1, y1, z1 = px + dx, py + dy, pz + SURFACE_Z.get(sc.things[dest].cls, 0.0)
    side = "left" if x0 < 120 and x1 < 170 else "right"
    carry = ease(seg(u, 0.3, 0.7))
    x, y, z = lerp((x0, y0, z0), (x1, y1, z1), carry)
    z += 28 * math.sin(math.pi * carry)
    t = sc.things[uid]
    if u < 0.72:
        t.parent, t.x, t.y, t.z = None, x, y, z
        if u > 0.28:
            sc.held.append(uid)
    else:
        t.parent, t.dx, t.dy, t.z = dest, dx, dy, 0.0
        t.pile = sc.things[dest].cls != "cutting_board"
    w = reach_then(u, 0.0, 0.27, 0.75, 1.0)
    set_hand(sc, side, grasp(x, y - 8, z, 10.0 if side == "left" else -10.0), w, 0.7 if 0.28 < u < 0.72 else 0.2)


def _strokes(dur: float, rate: float, lo: int, hi: int) -> int:
    return int(min(max(round(0.6 * dur * rate), lo), hi))


def v_cut(sc: Scene, st: StepPlan, u: float, dur: float, saw: bool = False) -> None:
    """Chop (fast vertical strokes) or slice (sawing while sinking) along the patient."""
    uid, knife = st.object_ids[0], st.object_ids[1]
    t = sc.things[uid]
    x, y, z = sc.pos(uid)
    n = 2 if t.cls == "bread" else _strokes(dur, 1.3 if saw else 1.8, 3, 8)
    t.n_pieces = 1 if t.cls == "bread" else n
    t.piece_style = "slice" if saw or t.cls == "bread" else "chunk"
    length = {"cucumber": 60.0, "carrot": 56.0}.get(t.cls, 30.0)
    p = seg(u, 0.22, 0.82) * n
    k, f = min(int(p), n), p - int(p)
    t.pieces = min(k, t.n_pieces)
    front = x if t.cls == "bread" else x + length / 2 - min(k + 1, n) * length / n + 4
    if saw:
        lift, along = 14 * (1 - f), 7 * math.sin(2 * math.pi * 2.5 * f)
    else:
        lift, along = 18 * abs(math.sin(math.pi * f)), 0.0
    w = reach_then(u, 0.1, 0.22, 0.82, 0.9)
    if u < 0.22:
        w = seg(u, 0.1, 0.22)
    ht = reach_then(u, 0.0, 0.1, 0.9, 1.0)
    hold_tool(sc, "right", knife, front + 30 + along, y - 4, z + (lift if 0.22 <= u <= 0.82 else 16), -100.0, w)
    if w == 0:
        set_hand(sc, "right", grasp(*sc.homes[knife][:2], 0.0, -15.0), ht, 0.3)
    left_end = x - length / 2 + 2
    set_hand(sc, "left", grasp(left_end, y - 8, z, 35.0), reach_then(u, 0.0, 0.2, 0.85, 0.97), 0.6)


def v_slice(sc: Scene, st: StepPlan, u: float, dur: float) -> None:
    v_cut(sc, st, u, dur, saw=True)


def v_peel(sc: Scene, st: StepPlan, u: float, dur: float) -> None:
    """Knife scraped along the top of the patient, right to left; a skin strip falls each stroke."""
    uid, knife = st.object_ids[0], st.object_ids[1]
    t = sc.things[uid]
    x, y, z = sc.pos(uid)
    n = _strokes(dur, 1.0, 2, 6)
    length = {"cucumber": 60.0, "carrot": 56.0}.get(t.cls, 28.0)
    top = {"cucumber": 14.0, "carrot": 12.0}.get(t.cls, 26.0)
    p = seg(u, 0.2, 0.85) * n
    k, f = min(int(p), n), p - int(p)
    t.peeled = min(p / n, 1.0)
    for i in range(k):
        sc.debris.append((x - length / 2 - 8 - 5 * i, y + 12 + 3 * (i % 2), t.color, uid * 7 + i))
    sweep = x + length / 2 - length * ease(min(f * 1.3, 1.0))
    w = seg(u, 0.1, 0.2) if u < 0.2 else reach_then(u, 0.1, 0.2, 0.85, 0.92)
    hold_tool(sc, "right", knife, sweep + 26, y - 2, z + top + (6 if f > 0.8 else 0), -95.0, w)
    if w == 0:
        set_hand(sc, "right", grasp(*sc.homes[knife][:2], 0.0, -15.0), reach_then(u, 0.0, 0.1, 0.92, 1.0), 0.3)
    set_hand(sc, "left", grasp(x - length / 2 + 2, y - 8, z, 35.0), reach_then(u, 0.0, 0.18, 0.88, 0.98), 0.6)


def _transfer(src: Thing, dst: Thing, amount: float, colour: tuple[int, int, int]) -> None:
    """Pour ``amount`` of ``colour`` into ``dst``, blending its contents colour by volume."""
    total = dst.fill + amount
    dst.fill_color = mix(dst.fill_color, colour, amount / total) if dst.fill > 0.01 else colour
    dst.fill = min(total, 1.0)
    if src.cls in ("bowl", "pan", "cup"):
        dst.stirred, dst.cooks = dst.stirred or src.stirred, dst.cooks or src.cls == "bowl" or src.cooks
        dst.brown, dst.speckle, dst.froth = max(dst.brown, src.brown), src.speckle, src.froth * 0.5


def v_pour(sc: Scene, st: StepPlan, u: float, dur: float) -> None:
    """Lift the source over the destination, tilt it, a stream fills the destination, put it back."""
    src_id, dst_id = st.object_ids[0], st.object_ids[1]
    src, dst = sc.things[src_id], sc.things[dst_id]
    sx, sy, sz = sc.pos(src_id)
    dx_, dy_, dz_ = sc.pos(dst_id)
    tilt = TILT[src.cls] * ease(seg(u, 0.3, 0.4) - seg(u, 0.75, 0.82))
    carry = ease(seg(u, 0.15, 0.3) - seg(u, 0.82, 0.92))
    surface = dy_ - dz_ - RIM_Y.get(dst.cls, 0.0)
    probe = replace(src, x=0.0, y=0.0, z=0.0, angle=TILT[src.cls])
    mouth = bottle_mouth(probe)
    tx, tz = dx_ - mouth[0] + 3, -(surface - 22 - mouth[1] - dy_ - 6)
    src.parent = None
    src.x, src.y, src.z = lerp((sx, sy, sz), (tx, dy_ + 6, tz), carry)
    src.angle = tilt
    amount = {"bottle": 0.25, "kettle": 0.7}.get(src.cls, src.fill)
    colour = TEA if src.cls == "kettle" else (src.color if src.cls == "bottle" else src.fill_color)
    flow = seg(u, 0.4, 0.75)
    if src.cls not in ("bottle", "kettle"):
        src.fill = src.fill * (1 - flow)
    if flow > 0:
        _transfer(src, dst, amount * flow, colour)
        if dst.cls == "cup" and src.cls == "kettle":
            dst.fill_color = TEA
    if 0.4 <= u < 0.75:
        m = bottle_mouth(src)
        stream = WATER if src.cls == "kettle" else colour
        width = 2.5 if src.cls in ("bottle", "kettle", "cup") else 5.0
        ys = np.linspace(m[1], surface, 8)
        xs = m[0] + 1.2 * np.sin(ys * 0.5 + u * 40) * np.linspace(0, 1, 8)
        sc.fx.append(lambda cv, p=np.stack([xs, ys], 1), c=stream, w=width: cv.line(p, c, w))
    if carry > 0:
        sc.held.append(src_id)
    grip = (src.x, src.y - 20, src.z) if src.cls in ("bottle", "kettle") else (src.x + 26, src.y - 10, src.z)
    side = side_for(min(sx, dx_ + 20))[0]
    set_hand(sc, side, grasp(*grip, -20.0 if side == "right" else 20.0), reach_then(u, 0.0, 0.15, 0.92, 1.0), 0.8)
    if u >= 1.0:
        src.x, src.y, src.z, src.angle = sx, sy, 0.0, 0.0


def _container_tool(sc: Scene, st: StepPlan, u: float, tip: Callable[[float], tuple[float, float]]) -> None:
    """A tool held upright in a container with its tip at ``tip(time_sec)``; the left hand steadies it."""
    cid, tool = st.object_ids[0], st.object_ids[1]
    cx, cy, cz = sc.pos(cid)
    c = sc.things[cid]
    w = seg(u, 0.1, 0.22) if u < 0.22 else reach_then(u, 0.1, 0.22, 0.85, 0.92)
    inside = 0.22 <= u <= 0.85
    tx, ty = tip(u) if inside else (0.0, 0.0)
    top = cy - cz - RIM_Y.get(c.cls, 0.0)
    angle = 165.0 if sc.things[tool].cls == "spoon" else 170.0
    length = 23.0 if sc.things[tool].cls == "spoon" else 20.0
    a = math.radians(angle)
    gx, gy = cx + tx - length * math.sin(a), top + ty + length * math.cos(a)
    main, other = side_for(cx)
    hold_tool(sc, main, tool, gx, gy + 8, 8.0, angle, w)
    k = sc.things[tool]
    if w == 0:
        set_hand(sc, main, grasp(*sc.homes[tool][:2], 0.0, 0.0), reach_then(u, 0.0, 0.1, 0.92, 1.0), 0.3)
    else:
        set_hand(sc, main, grasp(k.x + 2, k.y - k.z - 10, 0.0, -8.0), 1.0, 1.0)
    if c.cls in ("bowl", "cup"):
        sgn = 1 if other == "left" else -1
        set_hand(sc, other, grasp(cx - 30 * sgn, cy - 8, cz, 55.0 * sgn), reach_then(u, 0.05, 0.2, 0.87, 0.97), 0.6)


def v_stir(sc: Scene, st: StepPlan, u: float, dur: float) -> None:
    """Spoon tip circling inside the container at ~1 Hz; the contents swirl."""
    c = sc.things[st.object_ids[0]]
    rx = {"cup": 5.0, "bowl": 13.0, "pan": 14.0}.get(c.cls, 10.0)
    omega = 2 * math.pi * 1.0 * dur
    _container_tool(sc, st, u, lambda v: (rx * math.cos(omega * v), 0.4 * rx * math.sin(omega * v)))
    if 0.22 <= u <= 0.85:
        c.swirl = omega * u + 0.1
    if u >= 0.85 and c.cls == "pan":
        c.stirred = True


def v_whisk(sc: Scene, st: StepPlan, u: float, dur: float) -> None:
    """Whisk beaten back and forth at ~3 Hz; eggs vanish into a frothy, evenly coloured mix."""
    cid = st.object_ids[0]
    c = sc.things[cid]
    f = 2 * math.pi * dur
    _container_tool(sc, st, u, lambda v: (12 * math.sin(3.0 * f * v), 2.5 * math.sin(1.5 * f * v)))
    p = seg(u, 0.22, 0.85)
    target = (238, 218, 160) if c.speckle > 0 and c.speckle_color[0] > 200 and c.speckle_color[2] > 200 \
        and any(s.cls == "egg" for s in sc.things.values()) and c.fill > 0.3 else (248, 208, 90)
    eggs = [k for k in sc.children(cid) if sc.things[k].cls == "egg"]
    if p > 0:
        c.fill_color = mix(c.fill_color, target, p)
        c.froth = max(c.froth, p)
        c.speckle = c.speckle * (1 - p)
        c.fill = max(c.fill, 0.35)
    if p > 0.4:
        for k in eggs:
            sc.things[k].visible = False


def v_crack(sc: Scene, st: StepPlan, u: float, dur: float) -> None:
    """Carry the egg over the container, tap it twice on the rim, split the shell, drop the egg in."""
    eid, cid = st.object_ids[0], st.object_ids[1]
    e, c = sc.things[eid], sc.things[cid]
    x0, y0, _ = sc.pos(eid)
    cx, cy, cz = sc.pos(cid)
    rim = cz + RIM_Y.get(c.cls, 0.0)
    carry = ease(seg(u, 0.15, 0.3))
    tap = sum(8 * math.sin(math.pi * seg(u, a, a + 0.08)) for a in (0.32, 0.42))
    ex, ey, ez = lerp((x0, y0, 0.0), (cx + 8, cy + 6, rim + 14 - tap), carry)
    landed = u >= 0.72
    if not landed:
        e.parent, e.x, e.y, e.z = None, ex, ey, ez
        e.crack_line = u > 0.4
        e.split = seg(u, 0.55, 0.65)
        if u > 0.15:
            sc.held.append(eid)
        if 0.58 < u < 0.72:
            fall = seg(u, 0.58, 0.72)
            fy = (ey - ez - 9) + ((cy - rim) - (ey - ez - 9)) * fall * fall
            sc.fx.append(lambda cv, x=ex, y=fy: (cv.ellipse(x, y, 5, 4, EGG_WHITE), cv.ellipse(x, y, 3, 2.5, (250, 180, 25))))
    else:
        n = len([k for k in sc.children(cid) if sc.things[k].cls == "egg" and k != eid])
        e.parent, e.dx, e.dy, e.z = cid, (-5.0 + 10 * n if c.cls == "bowl" else 0.0), 0.0, 0.0
        e.cracked, e.pile, e.split, e.crack_line = True, c.cls == "bowl", 0.0, False
        if c.cls == "bowl":
            c.fill_color = EGG_WHITE if c.fill < 0.01 else c.fill_color
            c.fill = min(c.fill + 0.15, 1.0)
        if u < 0.88:  # empty shell halves still in the hands
            o = 7 + 10 * seg(u, 0.72, 0.88)
            for sx, a0, a1 in ((-o, 90, 270), (o, -90, 90)):
                sc.fx.append(lambda cv, x=ex + sx, y=ey - ez - 9, p=(a0, a1), col=e.color:
                             cv.poly(ellipse_pts(x, y, 7, 9.5, 0, p[0], p[1], 12), col, shade(col, 0.6), 0.8))
    main, other = side_for(cx)
    sgn = 1 if main == "right" else -1
    set_hand(sc, main, grasp(ex + 6 * sgn, ey - 10, ez, -20.0 * sgn), reach_then(u, 0.0, 0.15, 0.88, 1.0), 0.7)
    set_hand(sc, other, grasp(ex - 12 * sgn, ey - 10, ez, 25.0 * sgn), reach_then(u, 0.42, 0.55, 0.86, 0.98), 0.6)


def v_flip(sc: Scene, st: StepPlan, u: float, dur: float) -> None:
    """Jerk the pan by its handle; the food rises, turns over in the air and lands upside down."""
    pid = st.object_ids[-1]
    pan = sc.things[pid]
    food = sc.things[st.object_ids[0]] if len(st.object_ids) > 1 else None
    n = 1 if dur < 5.5 else 2
    p = seg(u, 0.2, 0.8) * n
    k, f = min(int(p), n), p - int(p)
    if k >= n:
        f = 0.0
    rise, turn = 36 * math.sin(math.pi * f), math.cos(2 * math.pi * f)
    swaps = k + (1 if f > 0.5 else 0)
    if food is not None:
        food.z, food.squash = rise, max(abs(turn), 0.08)
        if swaps % 2:
            food.brown, food.brown_under = food.brown_under, food.brown
    else:
        pan.content_z, pan.content_squash = rise, max(abs(turn), 0.08)
        if swaps % 2:
            pan.brown, pan.brown_under = pan.brown_under, pan.brown
    pan.z = 5 * math.sin(math.pi * min(f * 3, 1.0))
    x, y, z = sc.pos(pid)
    set_hand(sc, "right", grasp(x + 62, y - 3, pan.z, -60.0), reach_then(u, 0.0, 0.2, 0.82, 1.0), 0.9)


def v_spread(sc: Scene, st: StepPlan, u: float, dur: float) -> None:
    """Flat knife swept side to side over the bread, the spread advancing from back to front."""
    bid, knife = st.object_ids[0], st.object_ids[1]
    b = sc.things[bid]
    x, y, z = sc.pos(bid)
    p = seg(u, 0.2, 0.85)
    b.spread = max(b.spread, p)
    b.spread_color = st.substance_color
    sweep = 11 * math.sin(2 * math.pi * 1.2 * dur * p)
    w = seg(u, 0.1, 0.2) if u < 0.2 else reach_then(u, 0.1, 0.2, 0.85, 0.92)
    k = sc.things[knife]
    k.spread, k.spread_color = (1.0 if 0.12 < u < 0.9 else 0.0), st.substance_color
    hold_tool(sc, "right", knife, x + sweep + 36, y - 10 + 14 * p, z + 4, -88.0, w)
    if w == 0:
        set_hand(sc, "right", grasp(*sc.homes[knife][:2], 0.0, -15.0), reach_then(u, 0.0, 0.1, 0.92, 1.0), 0.3)
    set_hand(sc, "left", grasp(x - 17, y + 2, z, 40.0), reach_then(u, 0.05, 0.2, 0.87, 0.97), 0.5)


def v_sprinkle(sc: Scene, st: StepPlan, u: float, dur: float) -> None:
    """Pinched fingers rubbing above the container; grains fall and speckle the contents."""
    cid = st.object_ids[0]
    c = sc.things[cid]
    cx, cy, cz = sc.pos(cid)
    surface = cy - cz - RIM_Y.get(c.cls, 0.0)
    p = seg(u, 0.2, 0.8)
    c.speckle = min(c.speckle + p, 1.0)
    c.speckle_color = st.substance_color
    rub = 2 * math.pi * 4.0 * dur * u
    side = side_for(cx)[0]
    set_hand(sc, side, grasp(cx + 4 + 2 * math.sin(rub), cy - 4, cz + 40, -10.0), reach_then(u, 0.0, 0.2, 0.8, 1.0), 0.7)
    h = sc.hands[side]
    if 0.0 < p < 1.0:
        h.wiggle = rub
        tip_x, tip_y = h.x + 3, h.y - h.z - 28
        for i in range(18):
            ph = (u * dur * 1.6 + i / 18) % 1.0
            gx = tip_x + (((i * 37) % 11) - 5) * ph
            sc.fx.append(lambda cv, x=gx, y=tip_y + (surface - tip_y) * ph, col=st.substance_color:
                         cv.ellipse(x, y, 1.4, 1.4, col, shade(col, 0.6), 0.5))


VERB_MOTIONS: dict[str, Callable[[Scene, "StepPlan", float, float], None]] = {
    "place": v_place, "cut": v_cut, "slice": v_slice, "peel": v_peel, "pour": v_pour, "stir": v_stir,
    "whisk": v_whisk, "crack": v_crack, "flip": v_flip, "spread": v_spread, "sprinkle": v_sprinkle,
}


# ---------------------------------------------------------------- scene and frames

def build_scene(plan: VideoPlan) -> Scene:
    """The scene before the first step: every prop at its slot, hands at rest."""
    things, homes = {}, {}
    for p in plan.props:
        things[p.uid] = Thing(p.uid, p.cls, p.x, p.y, tuple(p.color), tuple(p.color2), angle=p.angle)
        if p.cls in TOOLS:
            homes[p.uid] = (p.x, p.y, p.angle)
        if p.cls == "bottle":
            things[p.uid].fill = 1.0
    hands = {s: Hand(s, *REST[s]) for s in ("left", "right")}
    return Scene(things, hands, homes)


def render_background(plan: VideoPlan) -> np.ndarray:
    """Static wall and counter (H, W, 3) uint8 RGB, before lighting and camera jitter."""
    w, h = plan.width, plan.height
    look = plan.look
    rng = np.random.default_rng(look.texture_seed)
    wall_h = int(round(72 * h / DESIGN_SIZE[1]))
    img = np.empty((h, w, 3), np.float32)
    img[:wall_h] = look.wall
    tile = max(int(round(24 * w / DESIGN_SIZE[0])), 4)
    img[:wall_h, ::tile] = look.grout
    img[:wall_h:tile] = look.grout
    low = cv2.resize(rng.random((6, 8)).astype(np.float32), (w, h - wall_h), interpolation=cv2.INTER_CUBIC)
    streak = cv2.resize(rng.random((40, 4)).astype(np.float32), (w, h - wall_h), interpolation=cv2.INTER_LINEAR)
    grain = rng.normal(0, 1, (h - wall_h, w)).astype(np.float32)
    t = np.clip(0.6 * low + 0.4 * streak, 0, 1)[..., None]
    img[wall_h:] = np.asarray(look.counter, np.float32) * (1 - t) + np.asarray(look.counter2, np.float32) * t
    img[wall_h:] += grain[..., None] * 4
    img[wall_h:wall_h + max(2, h // 80)] = shade(tuple(look.counter), 0.7)
    ramp = np.linspace(1.08, 0.9, h, dtype=np.float32)[:, None, None]
    return np.clip(img * ramp, 0, 255).astype(np.uint8)


def jitter(plan: VideoPlan, frame_index: int) -> tuple[float, float]:
    """Camera shake of a frame as a (dx, dy) translation in output pixels."""
    t = frame_index / plan.fps
    a, ph = plan.look.jitter_px * plan.width / DESIGN_SIZE[0], plan.look.jitter_phase
    return (a * (math.sin(2 * math.pi * 0.31 * t + ph) + 0.4 * math.sin(2 * math.pi * 1.7 * t)),
            a * (math.cos(2 * math.pi * 0.23 * t + ph) + 0.4 * math.sin(2 * math.pi * 1.3 * t + 1)))


def finish(plan: VideoPlan, image: np.ndarray, frame_index: int) -> np.ndarray:
    """Apply the instance's lighting and the frame's camera jitter to a rendered image."""
    dx, dy = jitter(plan, frame_index)
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    out = cv2.warpAffine(image, m, (plan.width, plan.height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return cv2.LUT(out, plan.look.lut())


def _draw_tree(cv: Canvas, sc: Scene, uid: int, skip: set[int]) -> None:
    t = sc.things[uid]
    if t.visible and uid not in skip:
        x, y, z = sc.pos(uid)
        d = replace(t, x=x, y=y, z=z)
        with cv.track(uid):
            if t.angle and t.cls in ("bowl", "pan", "cup", "plate"):
                with cv.rotated(x, y - z - 8, t.angle):
                    DRAWERS[t.cls](cv, d)
            else:
                DRAWERS[t.cls](cv, d)
    for k in sorted(sc.children(uid), key=lambda k: (sc.things[k].dy, k)):
        _draw_tree(cv, sc, k, skip)


def draw_scene(plan: VideoPlan, sc: Scene, background: np.ndarray) -> tuple[np.ndarray, dict[int, list[float]]]:
    """Draw a scene over the background; returns the image and design-pixel boxes by track id."""
    cv = Canvas(background.copy())
    held = set(sc.held)
    roots = [k for k, t in sc.things.items() if t.parent is None and k not in held]
    roots.sort(key=lambda k: (sc.things[k].cls != "cutting_board", sc.things[k].y, k))
    for i, k in enumerate(roots):
        _draw_tree(cv, sc, k, held)
        if i == 0 and sc.debris:
            for x, y, col, s in sc.debris:
                a = (s * 47) % 360
                cv.line(ellipse_pts(x, y, 5, 3, a, 0, 200, 8), shade(col, 1.1), 2.0)
    for k in dict.fromkeys(sc.held):
        _draw_tree(cv, sc, k, set())
    for f in sc.fx:
        f(cv)
    for side in ("left", "right"):
        draw_hand(cv, sc.hands[side], HAND_TRACK[side], tuple(plan.look.skin), tuple(plan.look.sleeve))
    return cv.image, cv.boxes


def _heat(sc: Scene, dt: float) -> None:
    """Food lying in a pan browns underneath at ~1/12 per second."""
    for t in sc.things.values():
        if t.parent is not None and sc.things[t.parent].cls == "pan" and t.cls in ("bread", "egg"):
            t.brown_under = min(t.brown_under + dt / 12, 0.9)
        if t.cls == "pan" and t.cooks and t.fill > 0.05:
            t.brown_under = min(t.brown_under + dt / 12, 0.9)


def _settle(sc: Scene) -> None:
    """Clear what only exists during a motion: hands to rest, tools home, nothing lifted."""
    for side, h in sc.hands.items():
        h.x, h.y, h.z, h.angle = REST[side]
        h.grip, h.wiggle = 0.0, 0.0
    for uid, t in sc.things.items():
        if uid in sc.homes:
            t.parent, (t.x, t.y, t.angle), t.spread = None, sc.homes[uid], 0.0
        t.z, t.squash, t.swirl, t.content_z, t.content_squash = 0.0, 1.0, 0.0, 0.0, 1.0
        t.crack_line, t.split = False, 0.0
        if t.cls in ("bowl", "pan", "cup", "plate", "bottle", "kettle"):
            t.angle = 0.0
    sc.held.clear()
    sc.fx.clear()


def render_frames(plan: VideoPlan) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield per frame: image (H, W, 3) uint8 RGB, box xyxy (K, 4) float32 output pixels clipped to
    the frame, box class (K,) int16 indices into OBJECT_CLASSES, box track id (K,) int16.
    """
    background = render_background(plan)
    scene = build_scene(plan)
    step_of = np.full(plan.n_frames, -1, np.int32)
    for i, st in enumerate(plan.steps):
        step_of[st.start_frame:st.end_frame] = i
    classes = {p.uid: OBJECT_CLASSES.index(p.cls) for p in plan.props}
    classes.update({v: OBJECT_CLASSES.index("hand") for v in HAND_TRACK.values()})
    sx, sy = plan.width / DESIGN_SIZE[0], plan.height / DESIGN_SIZE[1]
    dt = 1.0 / plan.fps
    for fi in range(plan.n_frames):
        si = int(step_of[fi])
        frame_scene = scene.copy()
        if si >= 0:
            st = plan.steps[si]
            dur = (st.end_frame - st.start_frame) / plan.fps
            VERB_MOTIONS[st.verb](frame_scene, st, (fi - st.start_frame + 0.5) / (st.end_frame - st.start_frame), dur)
        else:
            for side, h in frame_scene.hands.items():  # idle hands sway a little
                h.x += 1.5 * math.sin(fi * dt * 1.3 + (0 if side == "left" else 2))
                h.y += 1.0 * math.sin(fi * dt * 0.9 + (1 if side == "left" else 3))
        image, boxes = draw_scene(plan, frame_scene, background)
        dx, dy = jitter(plan, fi)
        keys = sorted(boxes)
        xyxy = np.array([boxes[k] for k in keys], np.float64).reshape(-1, 4) * (sx, sy, sx, sy) + (dx, dy, dx, dy)
        xyxy = np.clip(xyxy, 0, (plan.width, plan.height, plan.width, plan.height))
        keep = ((xyxy[:, 2] - xyxy[:, 0]) >= 1) & ((xyxy[:, 3] - xyxy[:, 1]) >= 1)
        yield (finish(plan, image, fi), xyxy[keep].astype(np.float32),
               np.array([classes[k] for k in keys], np.int16)[keep], np.array(keys, np.int16)[keep])
        _heat(scene, dt)
        if si >= 0 and (fi + 1 == plan.steps[si].end_frame):
            st = plan.steps[si]
            VERB_MOTIONS[st.verb](scene, st, 1.0, (st.end_frame - st.start_frame) / plan.fps)
            _settle(scene)
