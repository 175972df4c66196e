"""ASR-like narration for SynthKitchen videos, with ground truth of which lines are aligned.

A narration line is *aligned* when it is on topic (it describes a step of the task) and its
midpoint lies inside the interval of a step with the same verb and objects, i.e. a viewer
watching the video at the time of the line would see what it says. Everything else (chatter,
lines said well before or after their step) is *unaligned*; steps without any line are *missing*.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import webvtt


@dataclass(frozen=True)
class NarrationNoise:
    """Noise rates of the narration track; the defaults are fixed before any model is evaluated.

    Published inspections of HowTo100M agree that much of its narration does not match what is on
    screen: Miech et al. (ICCV 2019, "HowTo100M") note that narrations are often unrelated to, or
    out of sync with, the visible action; Han, Xie & Zisserman (CVPR 2022, "Temporal Alignment
    Networks for Long-term Video") annotated 80 HowTo100M videos (HTM-Align) and found only a
    minority of sentences, about 30%, visually alignable; Tang et al. (NAACL 2021, DeCEMBERT) and
    Ko et al. (CVPR 2022, VT-TWINS) report similarly noisy, weak correspondence. The defaults
    aim at roughly 55% of lines unaligned (:attr:`expected_unaligned_share`): as noisy as most
    counts, slightly kinder than HTM-Align so that small demo corpora still carry signal.

    Attributes:
        p_missing: probability that a step gets no narration line.
        p_shifted: probability that an on-topic line is said entirely before or after its step.
        shift_sec: (min, max) distance in seconds between a shifted line and its step.
        jitter_sec: standard deviation, seconds, of the start offset of a line kept in its step.
        p_offtopic: expected off-topic lines per step (Bernoulli per step).
        p_filler: probability that a line gets a filler ("um", "you know", ...).
        p_word_error: per-word probability of an ASR substitution (homophone or near miss).
        p_word_drop: per-word probability that the recogniser drops the word.
    """

    p_missing: float = 0.2
    p_shifted: float = 0.35
    shift_sec: tuple[float, float] = (0.5, 3.0)
    jitter_sec: float = 0.4
    p_offtopic: float = 0.35
    p_filler: float = 0.35
    p_word_error: float = 0.04
    p_word_drop: float = 0.03

    def __post_init__(self) -> None:
        for name in ("p_missing", "p_shifted", "p_offtopic", "p_filler", "p_word_error", "p_word_drop"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not 0.0 <= self.shift_sec[0] <= self.shift_sec[1]:
            raise ValueError(f"shift_sec must be (min, max) with 0 <= min <= max, got {self.shift_sec}")

    @property
    def expected_unaligned_share(self) -> float:
        """Expected fraction of narration lines that are not visually aligned (before timing clean-up)."""
        on_topic = 1.0 - self.p_missing
        total = on_topic + self.p_offtopic
        return (self.p_offtopic + on_topic * self.p_shifted) / total if total else 0.0


@dataclass(frozen=True)
class NarrationLine:
    """One subtitle cue: times in seconds, ASR-style text and its ground truth."""

    start_sec: float
    end_sec: float
    text: str
    step_index: int | None  # the step it talks about, None for off-topic chatter
    on_topic: bool
    aligned: bool


PARAPHRASES: dict[str, tuple[str, ...]] = {
    "place": ("put the {obj} {dst}", "now place your {obj} {dst}", "go ahead and move the {obj} over {dst}",
              "and the {obj} goes {dst}", "next we set the {obj} {dst}"),
    "cut": ("now we cut the {obj}", "go ahead and chop the {obj}", "chop up that {obj}",
            "cut the {obj} into little pieces", "we're gonna dice the {obj}"),
    "slice": ("slice up that {obj}", "now slice the {obj}", "cut the {obj} into thin slices",
              "go ahead and slice the {obj} nice and thin"),
    "peel": ("peel the {obj}", "now we peel the {obj}", "take the skin off the {obj}", "go ahead and peel that {obj}"),
    "pour": ("pour the {obj} {dst}", "add the {obj} {dst}", "now pour in the {obj}", "just a bit of {obj} {dst}"),
    "stir": ("stir the {obj}", "give the {obj} a good stir", "stir it all together", "mix the {obj} around"),
    "whisk": ("whisk the {obj}", "beat the {obj} until smooth", "give the {obj} a quick whisk", "whisk it all up"),
    "crack": ("crack the {obj} {dst}", "now crack an {obj} {dst}", "break the {obj} {dst}", "crack it right {dst}"),
    "flip": ("flip the {obj}", "now turn the {obj} over", "time to flip the {obj}", "give the {obj} a flip"),
    "spread": ("spread some {obj} {dst}", "now spread the {obj}", "cover it with {obj}", "a nice layer of {obj} {dst}"),
    "sprinkle": ("sprinkle some {obj} {dst}", "season with a little {obj}", "add a pinch of {obj}",
                 "a little bit of {obj} {dst}"),
}
OFF_TOPIC: tuple[str, ...] = (
    "don't forget to like and subscribe", "this is my grandma's recipe", "hi everyone welcome back to my kitchen",
    "let me know in the comments what you think", "i got this knife on sale last week", "my kids love this one",
    "the weather has been crazy here lately", "you can find the link in the description",
    "okay so today is gonna be a quick one", "i've been making this for years", "sorry my dog is barking",
    "thanks so much for watching", "if you're new here hit that bell", "this one is really easy i promise",
)
FILLERS: tuple[str, ...] = ("um", "uh", "so", "okay", "you know", "like", "alright", "and uh")
CONFUSIONS: dict[str, tuple[str, ...]] = {
    "two": ("to", "too"), "board": ("bored",), "pour": ("poor", "pore"), "flour": ("flower",), "bowl": ("ball", "bull"),
    "knife": ("night",), "whisk": ("whiskey", "risk"), "peel": ("pill", "meal"), "slice": ("slides", "nice"),
    "cut": ("cup", "cuts"), "egg": ("ache", "ag"), "eggs": ("ex",), "stir": ("store", "steer"),
    "flip": ("flap",), "the": ("a", "uh"), "tea": ("t",), "milk": ("melk",), "salt": ("sold",),
    "bread": ("bred",), "pan": ("pen",), "carrot": ("karat",), "cucumber": ("cucumbers",), "toast": ("toes",),
}


def _asr(text: str, rng: np.random.Generator, noise: NarrationNoise) -> str:
    """Lower-case, unpunctuated words with fillers, substitutions and drops."""
    words = text.lower().split()
    out = []
    for w in words:
        u = rng.random()
        if u < noise.p_word_drop and len(words) > 3:
            continue
        if u < noise.p_word_drop + noise.p_word_error:
            w = str(rng.choice(CONFUSIONS[w])) if w in CONFUSIONS else w[: max(2, len(w) - 1)]
        out.append(w)
    if rng.random() < noise.p_filler:
        out.insert(int(rng.integers(0, min(len(out), 3) + 1)), str(rng.choice(FILLERS)))
    return " ".join(out)


def narrate(steps: Sequence[dict], duration_sec: float, rng: np.random.Generator,
            noise: NarrationNoise) -> list[NarrationLine]:
    """Narration lines for a video of ``duration_sec`` seconds.

    ``steps`` are dicts with ``verb``, ``objects``, ``noun``, ``dest``, ``start_sec``, ``end_sec``.
    Lines are sorted, non-overlapping, inside ``[0, duration_sec]`` and at least 0.8 s long; the
    ``aligned`` flag is computed from the final times (see the module docstring).
    """
    raw: list[tuple[float, float, str, int | None]] = []
    for i, st in enumerate(steps):
        if rng.random() < noise.p_offtopic:
            t = float(rng.uniform(st["start_sec"], st["end_sec"]))
            chatter = _asr(str(rng.choice(OFF_TOPIC)), rng, noise)
            raw.append((t, min(1.2 + 0.28 * len(chatter.split()), 4.0), chatter, None))
        if rng.random() < noise.p_missing:
            continue
        template = str(rng.choice(PARAPHRASES[st["verb"]]))
        text = _asr(template.format(obj=st["noun"], dst=st["dest"]).replace("  ", " ").strip(), rng, noise)
        length = min(1.2 + 0.28 * len(text.split()), 4.0)
        if rng.random() < noise.p_shifted:
            gap = float(rng.uniform(*noise.shift_sec))
            start = st["start_sec"] - gap - length if rng.random() < 0.6 else st["end_sec"] + gap
        else:  # said while the step is on screen: its midpoint stays inside the step
            length = min(length, st["end_sec"] - st["start_sec"])
            start = st["start_sec"] + abs(float(rng.normal(0.0, noise.jitter_sec)))
            start = min(start, st["end_sec"] - length / 2 - 0.1)
        raw.append((start, length, text, i))
    raw.sort(key=lambda r: (r[0], -1 if r[3] is None else r[3]))

    lines: list[NarrationLine] = []
    prev_end = 0.0
    for k, (start, length, text, idx) in enumerate(raw):
        start = max(start, prev_end, 0.0)
        next_start = raw[k + 1][0] if k + 1 < len(raw) else duration_sec
        end = min(start + length, max(next_start, start + 0.8), duration_sec)
        if end - start < 0.8:
            continue
        mid = (start + end) / 2
        aligned = idx is not None and any(
            s["verb"] == steps[idx]["verb"] and s["objects"] == steps[idx]["objects"]
            and s["start_sec"] <= mid < s["end_sec"] for s in steps)
        start, end = math.ceil(start * 1000) / 1000, math.floor(end * 1000) / 1000  # whole ms inside the video
        lines.append(NarrationLine(start, end, text, idx, idx is not None, aligned))
        prev_end = end
    return lines


def _stamp(sec: float) -> str:
    ms = int(round(sec * 1000))
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def to_webvtt(lines: Sequence[NarrationLine]) -> str:
    """WebVTT text for the lines (one cue each), parsed back by ``webvtt-py`` to check it."""
    vtt = webvtt.WebVTT()
    for line in lines:
        vtt.captions.append(webvtt.Caption(_stamp(line.start_sec), _stamp(line.end_sec), line.text))
    text = vtt.content
    webvtt.from_buffer(io.StringIO(text))  # raises on a malformed file
    return text
