"""Frame rendering for SynthKitchen: the scene built from a video plan, each frame drawn with the
motions of ``synthkitchen.motions`` applied, and the per-frame boxes, labels and hands.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Iterator

import cv2
import numpy as np

from synthkitchen.canvas import (
    DESIGN_SIZE,
    Canvas,
    Hand,
    Thing,
    ellipse_pts,
    shade,
)
from synthkitchen.draw import DRAWERS, draw_hand
from synthkitchen.motions import VERB_MOTIONS
from synthkitchen.scene import HAND_TRACK, REST, Scene
from synthkitchen.tasks import OBJECT_CLASSES, TOOLS

if TYPE_CHECKING:
    from synthkitchen.plan import VideoPlan


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
