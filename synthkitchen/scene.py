"""SynthKitchen scene state: the props and hands of one video at one instant, with the poses and
easing curves the motions (``synthkitchen.motions``) are written in (design pixels)."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Callable

from synthkitchen.canvas import Canvas, Hand, Thing

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
