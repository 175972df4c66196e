"""One motion per SynthKitchen verb.

Each verb is a pure function of the scene at the start of its step and the progress ``u`` in
[0, 1] through the step; the frame loop (``synthkitchen.render``) applies it to a copy of the
scene for every frame and to the scene itself at the step's end (``u = 1`` is the outcome: pieces
cut, liquid poured, ...). Motions are periodic where the real action is (chop strokes, stirring
circles, whisk strokes, finger rubbing) at 1-3 Hz, so 32 frames sampled at 8 FPS show several periods.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Callable

import numpy as np

from synthkitchen.canvas import Thing, ellipse_pts, mix, shade
from synthkitchen.draw import bottle_mouth
from synthkitchen.scene import (
    EGG_WHITE,
    RIM_Y,
    SURFACE_Z,
    TEA,
    TILT,
    WATER,
    Scene,
    drop_offset,
    ease,
    grasp,
    hold_tool,
    lerp,
    reach_then,
    seg,
    set_hand,
    side_for,
)

if TYPE_CHECKING:
    from synthkitchen.plan import StepPlan


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
