"""What SynthKitchen renders, as plain records: a video's plan (``VideoPlan``: its props, steps,
narration and look) and its ground-truth record. ``corpus`` draws plans, ``render`` and ``motions``
draw them; this leaf module is what they share, so none of them imports another for a type."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from synthkitchen.narration import NarrationLine
from synthkitchen.tasks import ACTION_LABELS

GENERATOR_VERSION = "synthkitchen-1"


@dataclass(frozen=True)
class Prop:
    """An object instance in a video: ``uid`` is its track id, ``x, y`` its slot in design pixels."""

    uid: int
    role: str
    cls: str
    variant: str
    color: tuple[int, int, int]
    color2: tuple[int, int, int]
    x: float
    y: float
    angle: float = 0.0


@dataclass(frozen=True)
class StepPlan:
    """One step; frames are half-open ``[start_frame, end_frame)``, seconds = frame / fps."""

    verb: str
    objects: tuple[str, ...]  # object classes, patient first
    object_ids: tuple[int, ...]  # Prop uids (track ids) of those objects
    description: str
    noun: str
    dest: str
    start_frame: int
    end_frame: int
    start_sec: float
    end_sec: float
    substance: str = ""
    substance_color: tuple[int, int, int] = (255, 255, 255)


@dataclass(frozen=True)
class Look:
    """Per-instance appearance: colours (RGB), lighting gain/tint, camera shake (design px)."""

    wall: tuple[int, int, int]
    grout: tuple[int, int, int]
    counter: tuple[int, int, int]
    counter2: tuple[int, int, int]
    skin: tuple[int, int, int]
    sleeve: tuple[int, int, int]
    gain: float
    tint: tuple[float, float, float]
    jitter_px: float
    jitter_phase: float
    texture_seed: int

    def lut(self) -> np.ndarray:
        """Lookup table (1, 256, 3) uint8 applying gain and tint per channel."""
        v = np.arange(256, dtype=np.float32)[:, None] * self.gain * np.asarray(self.tint, np.float32)
        return np.clip(np.round(v), 0, 255).astype(np.uint8)[None]


@dataclass(frozen=True)
class VideoPlan:
    """Everything needed to render one video and its ground truth, without rendering it."""

    video_id: str
    index: int
    seed: int
    task: str
    title: str
    split: str
    fps: int
    width: int
    height: int
    n_frames: int
    props: tuple[Prop, ...]
    steps: tuple[StepPlan, ...]
    narration: tuple[NarrationLine, ...]
    look: Look
    substances: dict[str, str] = field(default_factory=dict)

    @property
    def duration_sec(self) -> float:
        return self.n_frames / self.fps

    def action_labels(self) -> np.ndarray:
        """(n_frames,) int16 index into ACTION_LABELS; 0 is background."""
        labels = np.zeros(self.n_frames, np.int16)
        for st in self.steps:
            labels[st.start_frame:st.end_frame] = ACTION_LABELS.index(st.verb)
        return labels

    def to_json(self) -> dict:
        """The ground-truth record (JSON-ready); per-frame arrays live in the .npz."""
        return {
            "video_id": self.video_id, "instance_id": self.video_id, "generator": GENERATOR_VERSION,
            "seed": self.seed, "index": self.index, "task": self.task, "task_title": self.title, "split": self.split,
            "fps": self.fps, "width": self.width, "height": self.height, "n_frames": self.n_frames,
            "duration_sec": self.duration_sec, "substances": self.substances,
            "props": [{"track_id": p.uid, "role": p.role, "class": p.cls, "variant": p.variant} for p in self.props],
            "steps": [{"verb": s.verb, "objects": list(s.objects), "track_ids": list(s.object_ids),
                       "description": s.description, "start_sec": s.start_sec, "end_sec": s.end_sec,
                       "start_frame": s.start_frame, "end_frame": s.end_frame} for s in self.steps],
            "narration": [asdict(n) for n in self.narration],
        }
