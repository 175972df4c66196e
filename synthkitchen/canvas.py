"""The SynthKitchen canvas: drawing primitives that track each object's box, and the object and hand
records the drawers (``synthkitchen.draw``) read.

All geometry is in *design pixels*: a 320x240 canvas that :class:`Canvas` scales to the output
size. The camera looks at a counter from the front and above: a point on the counter at ``(x, y)``
raised ``z`` design pixels is drawn at ``(x, y - z)``. Every primitive drawn while an object is
being tracked grows that object's box, so ground-truth boxes are exactly the extent of what was
drawn for it (amodal: an object partly hidden by a hand keeps its full box).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Iterator

import cv2
import numpy as np

Colour = tuple[int, int, int]

DESIGN_SIZE = (320, 240)  # (width, height) of the design canvas, pixels
_SHIFT = 4  # fixed-point bits for sub-pixel OpenCV drawing
_ONE = 1 << _SHIFT


def mix(a: Colour, b: Colour, t: float) -> Colour:
    """Linear blend of two RGB colours, ``t=0`` gives ``a``."""
    t = min(max(t, 0.0), 1.0)
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))  # type: ignore[return-value]


def shade(c: Colour, f: float) -> Colour:
    """Darken (``f < 1``) or lighten towards white (``f > 1``) a colour."""
    if f <= 1.0:
        return tuple(int(x * f) for x in c)  # type: ignore[return-value]
    return mix(c, (255, 255, 255), f - 1.0)


@dataclass
class Thing:
    """Visual state of one object instance; positions in design pixels, angles in degrees.

    ``x, y`` is the footprint centre on the counter (resolved to absolute before drawing),
    ``z`` the height above it, ``angle`` a clockwise tilt (tools: 0 points up the image).
    """

    uid: int
    cls: str
    x: float
    y: float
    color: Colour = (200, 200, 200)
    color2: Colour = (255, 255, 255)
    z: float = 0.0
    angle: float = 0.0
    visible: bool = True
    parent: int | None = None
    dx: float = 0.0  # offset from the parent's centre when parented
    dy: float = 0.0
    pieces: int = 0  # slices/chunks cut so far
    n_pieces: int = 6
    piece_style: str = "slice"  # "slice" rounds, "chunk" cubes
    pile: bool = False  # pieces heaped (in a bowl/on a plate) instead of in a row
    peeled: float = 0.0  # 0..1
    spread: float = 0.0  # 0..1 coverage of a spread (bread)
    spread_color: Colour = (250, 220, 120)
    brown: float = 0.0  # toasting of the visible side, 0..1
    brown_under: float = 0.0  # toasting of the side facing the pan
    squash: float = 1.0  # vertical scale while turning over in the air
    cracked: bool = False  # egg: opened (drawn as yolk or a fried egg)
    fill: float = 0.0  # container contents, 0..1
    fill_color: Colour = (240, 240, 240)
    froth: float = 0.0
    speckle: float = 0.0
    speckle_color: Colour = (250, 250, 250)
    stirred: bool = False  # pan/plate contents broken into curds
    swirl: float = 0.0  # phase of the stirring swirl, radians (0 = none)
    content_z: float = 0.0  # contents lifted out of a pan while flipping
    content_squash: float = 1.0
    crack_line: bool = False
    split: float = 0.0  # egg shell halves apart, 0..1
    cooks: bool = False  # pan contents that brown with heat (batter, egg)


@dataclass
class Hand:
    """A hand: ``x, y`` wrist on the counter, ``z`` height, ``angle`` finger direction (0 = up)."""

    side: str  # "left" or "right"
    x: float
    y: float
    z: float = 0.0
    angle: float = 0.0
    grip: float = 0.0  # 0 open, 1 closed
    wiggle: float = 0.0  # finger rub phase for sprinkling, radians


def axes_of(angle_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors (along, across) for a clockwise angle where 0 points up the image."""
    a = math.radians(angle_deg)
    d = np.array([math.sin(a), -math.cos(a)])
    n = np.array([math.cos(a), math.sin(a)])
    return d, n


def local(origin: tuple[float, float], angle_deg: float, uv: np.ndarray) -> np.ndarray:
    """Map local ``(u along, v across)`` points (N, 2) to design coordinates (N, 2)."""
    d, n = axes_of(angle_deg)
    uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
    return np.asarray(origin, dtype=np.float64) + uv[:, :1] * d + uv[:, 1:] * n


def ellipse_pts(cx: float, cy: float, rx: float, ry: float, angle_deg: float = 0.0,
                start: float = 0.0, end: float = 360.0, n: int = 28) -> np.ndarray:
    """Points (n, 2) on an ellipse arc (degrees, clockwise from +x like OpenCV)."""
    t = np.radians(np.linspace(start, end, n))
    a = math.radians(angle_deg)
    x, y = rx * np.cos(t), ry * np.sin(t)
    return np.stack([cx + x * math.cos(a) - y * math.sin(a), cy + x * math.sin(a) + y * math.cos(a)], 1)


@dataclass
class Canvas:
    """An RGB image (H, W, 3) uint8 drawn in design pixels, recording a box per tracked key."""

    image: np.ndarray
    boxes: dict[int, list[float]] = field(default_factory=dict)  # key -> design xyxy
    _key: int | None = None
    _rot: tuple[float, float, float, float] | None = None  # (cx, cy, cos, sin) applied to all points

    def __post_init__(self) -> None:
        h, w = self.image.shape[:2]
        self.sx, self.sy = w / DESIGN_SIZE[0], h / DESIGN_SIZE[1]

    @contextlib.contextmanager
    def track(self, key: int) -> Iterator[None]:
        """Attribute everything drawn inside the block to ``key``'s box."""
        prev, self._key = self._key, key
        try:
            yield
        finally:
            self._key = prev

    @contextlib.contextmanager
    def rotated(self, cx: float, cy: float, angle_deg: float) -> Iterator[None]:
        """Rotate everything drawn inside the block clockwise by ``angle_deg`` about ``(cx, cy)``."""
        prev = self._rot
        a = math.radians(angle_deg)
        self._rot = (cx, cy, math.cos(a), math.sin(a))
        try:
            yield
        finally:
            self._rot = prev

    def _tf(self, pts: np.ndarray) -> np.ndarray:
        pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        if self._rot is None:
            return pts
        cx, cy, c, s = self._rot
        x, y = pts[:, 0] - cx, pts[:, 1] - cy
        return np.stack([cx + x * c - y * s, cy + x * s + y * c], 1)

    def _grow(self, pts: np.ndarray, pad: float = 0.0) -> None:
        if self._key is None:
            return
        x0, y0 = pts.min(0) - pad
        x1, y1 = pts.max(0) + pad
        box = self.boxes.get(self._key)
        if box is None:
            self.boxes[self._key] = [x0, y0, x1, y1]
        else:
            box[0], box[1] = min(box[0], x0), min(box[1], y0)
            box[2], box[3] = max(box[2], x1), max(box[3], y1)

    def _fix(self, pts: np.ndarray) -> np.ndarray:
        p = np.asarray(pts, dtype=np.float64).reshape(-1, 2) * (self.sx, self.sy)
        return np.round(p * _ONE).astype(np.int32)

    def _width(self, w: float) -> int:
        return max(1, int(round(w * (self.sx + self.sy) / 2)))

    def poly(self, pts: np.ndarray, color: Colour, outline: Colour | None = None,
             width: float = 1.0) -> None:
        """Filled polygon with an optional outline."""
        pts = self._tf(pts)
        fp = self._fix(pts)
        cv2.fillPoly(self.image, [fp], color, cv2.LINE_AA, _SHIFT)
        if outline is not None:
            cv2.polylines(self.image, [fp], True, outline, self._width(width), cv2.LINE_AA, _SHIFT)
        self._grow(pts, width / 2 if outline is not None else 0.0)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, color: Colour,
                outline: Colour | None = None, width: float = 1.0, angle: float = 0.0) -> None:
        """Filled (rotated) ellipse centred at ``(cx, cy)`` with radii ``rx, ry``."""
        self.poly(ellipse_pts(cx, cy, rx, ry, angle), color, outline, width)

    def line(self, pts: np.ndarray, color: Colour, width: float, closed: bool = False) -> None:
        """Polyline of ``width`` design pixels with round joins."""
        pts = self._tf(pts)
        w = self._width(width)
        fp = self._fix(pts)
        if len(fp) == 1 or (w > 2 and len(fp) == 2):
            for a, b in zip(fp[:-1], fp[1:]) if len(fp) > 1 else [(fp[0], fp[0])]:
                cv2.line(self.image, tuple(a), tuple(b), color, w, cv2.LINE_AA, _SHIFT)
        else:
            cv2.polylines(self.image, [fp], closed, color, w, cv2.LINE_AA, _SHIFT)
        self._grow(pts, width / 2)
