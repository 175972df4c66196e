"""The evaluated split as the paper's five evaluations see it, and the protocols that score them.

Definitions (times in seconds; every choice deterministic):

- clips: every narrated clip of every video of the split, in corpus order; a clip's global index
  is its position in ``SplitClips.clips``. Retrieval searches all of them. ``load_split(...,
  unnarrated=True)`` also keeps the windows over stretches nobody talks over (the corpus clips
  flagged ``narrated: false``): the split that ``retrieval_visual_only_all_steps`` searches.
- step queries: one per ground-truth step, its text the step's ``description`` (never a narration).
  Its target (THE positive of R@K) is the clip of the same video whose span overlaps the step's
  interval the most (ties: the earliest clip); a step that no clip overlaps has no target and is
  left out of retrieval. ``narrated`` copies the corpus step's flag (an aligned narration line
  describes the step; None when the corpus does not know): the ``visual_only`` queries are those
  whose step has none.
- step localisation: clip c "lies inside" step k when c's centre time lies in [start_sec, end_sec]
  (CrossTask picks one time per step; ours are clip centres). A step with no clip centre inside
  it is not counted (``metrics.step_hits``).
- segmentation frames: t = 0, 1, 2, ... (1 FPS) while t < the video's last clip end. A frame's
  clip is the clip whose span holds t (the nearest centre among several; the nearest clip when t
  falls in a gap); its label is 1 + the index of the verb of the step holding t in the label list
  (``segmentation_labels``), or 0 (background).
- questions (video QA, captioning): every clip that overlaps some step. The answer is the
  description of the step overlapping it most; the candidates are the answer and 4 other distinct
  descriptions of the same split (none of a step overlapping the clip), shuffled with the seed;
  the captioning references are the descriptions of every step overlapping the clip (the
  most-overlapping first).

A scorer is any ``score_pairs(texts, clips) -> (P,)`` callable: the score of text i against clip
index i of the split, higher = better match. ``scorer.ModelScorer`` gives ActBERT's (matching
head, embeddings) and its per-clip visual outputs; the probes of segmentation and video QA are
``probe.LinearProbe``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..corpus import Corpus
from ..data import ClipInputs, VideoFeatures, clip_inputs
from .metrics import (
    accuracy_from_counts,
    frame_counts,
    metrics_from_ranks,
    multiple_choice_correct,
    percent_correct,
    recall_from_counts,
    retrieval_ranks,
    step_hits,
)

log = logging.getLogger(__name__)

ScorePairs = Callable[[Sequence[str], Sequence[int]], np.ndarray]
NUM_CANDIDATES = 5


@dataclass(frozen=True)
class Clip:
    video: int          # index of the video in the split
    index: int          # clip index inside the video's feature file
    start_sec: float
    end_sec: float
    narration: str

    @property
    def centre_sec(self) -> float:
        return 0.5 * (self.start_sec + self.end_sec)


@dataclass(frozen=True)
class StepQuery:
    video: int
    description: str
    verb: str
    start_sec: float
    end_sec: float
    target: int | None  # global clip index, None when no clip overlaps the step
    narrated: bool | None = None  # an aligned narration line describes the step (None: unknown)


@dataclass(frozen=True)
class Question:
    """A clip, its shuffled candidate descriptions, the right one's index, and its references."""

    clip: int
    candidates: tuple[str, ...]
    answer: int
    references: tuple[str, ...]


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


@dataclass
class SplitClips:
    """The clips, step queries and features of one split of a corpus."""

    name: str
    corpus: Corpus
    features: list[VideoFeatures]
    clips: list[Clip]
    video_clips: list[list[int]]
    queries: list[StepQuery]
    _inputs: dict[tuple[int, int], ClipInputs] = field(default_factory=dict, repr=False)

    @property
    def narrations(self) -> list[str]:
        return [c.narration for c in self.clips]

    def inputs(self, clip: int, max_regions: int) -> ClipInputs:
        """Single-clip model inputs (one action slot, its regions) through the clip contract
        (``data.clip_inputs``), cached; ``max_regions`` is the scoring model's own limit."""
        if (clip, max_regions) not in self._inputs:
            c = self.clips[clip]
            self._inputs[(clip, max_regions)] = clip_inputs(self.features[c.video], [c.index], max_regions)
        return self._inputs[(clip, max_regions)]

    def clip_steps(self, clip: int) -> list[dict]:
        """The steps of the clip's video that overlap it, the most-overlapping first."""
        c = self.clips[clip]
        steps = self.corpus.videos[c.video].steps
        scored = [(_overlap(c.start_sec, c.end_sec, s["start_sec"], s["end_sec"]), i)
                  for i, s in enumerate(steps)]
        return [steps[i] for o, i in sorted(scored, key=lambda x: (-x[0], x[1])) if o > 0]


def _check_step(video_id: str, step: dict) -> None:
    missing = [k for k in ("start_sec", "end_sec", "description") if k not in step]
    if missing:
        raise ValueError(f"{video_id}: a ground-truth step lacks {missing}: {step}")
    if not float(step["end_sec"]) > float(step["start_sec"]):
        raise ValueError(f"{video_id}: step {step['description']!r} ends before it starts")


UNNARRATED_SUFFIX = "+unnarrated"


def load_split(corpus: Corpus, split: str, unnarrated: bool = False) -> SplitClips:
    """Read the feature files of one split and build its clips and step queries. The clips are the
    narrated ones (the meaning every task had before whole-video coverage); ``unnarrated=True``
    keeps every clip, and the split is named ``<split>+unnarrated``."""
    part = corpus.split(split)
    if not part.videos:
        raise ValueError(f"the corpus has no videos in split {split!r} (splits present: "
                         f"{sorted({str(v.split) for v in corpus.videos})})")
    features, clips, video_clips, queries = [], [], [], []
    for vi, video in enumerate(part.videos):
        feats = VideoFeatures.load(video.features)
        if feats.num_clips != len(video.narrations):
            raise ValueError(f"{video.video_id}: {feats.num_clips} clips in {video.features} but "
                             f"{len(video.narrations)} narrations in the corpus")
        features.append(feats)
        first = len(clips)
        for ci in range(feats.num_clips) if unnarrated else video.narrated_clips():
            clips.append(Clip(vi, ci, float(feats.clip_start_sec[ci]), float(feats.clip_end_sec[ci]),
                              video.narrations[ci] or ""))
        video_clips.append(list(range(first, len(clips))))
        for step in video.steps:
            _check_step(video.video_id, step)
            s0, s1 = float(step["start_sec"]), float(step["end_sec"])
            overlaps = [_overlap(clips[c].start_sec, clips[c].end_sec, s0, s1) for c in video_clips[-1]]
            best = int(np.argmax(overlaps)) if overlaps else 0
            target = video_clips[-1][best] if overlaps and overlaps[best] > 0 else None
            narrated = step.get("narrated")
            queries.append(StepQuery(vi, str(step["description"]), str(step.get("verb") or ""),
                                     s0, s1, target, None if narrated is None else bool(narrated)))
    return SplitClips(f"{split}{UNNARRATED_SUFFIX}" if unnarrated else split, part, features, clips,
                      video_clips, queries)


def task_instances(corpus: Corpus) -> set[str]:
    """The task instances of a corpus (a video without one is its own instance)."""
    return {v.task_instance or f"video:{v.video_id}" for v in corpus.videos}


def check_disjoint(train: Corpus, held_out: Corpus) -> None:
    """Raise ``ValueError`` when the two corpora share a video or a task instance."""
    shared = task_instances(train) & task_instances(held_out)
    shared |= {v.video_id for v in train.videos} & {v.video_id for v in held_out.videos}
    if shared:
        raise ValueError(f"the held-out split shares task instances or videos with the training "
                         f"split: {sorted(shared)[:5]}")


def score_grid(score_pairs: ScorePairs, texts: Sequence[str], clips: Sequence[int]) -> np.ndarray:
    """(T, C) scores of every text against every clip through a pair scorer."""
    t = [text for text in texts for _ in clips]
    c = [clip for _ in texts for clip in clips]
    return np.asarray(score_pairs(t, c), dtype=np.float64).reshape(len(texts), len(clips))


# ---- text-to-video clip retrieval --------------------------------------------------------------

def retrieval_queries(split: SplitClips) -> list[StepQuery]:
    return [q for q in split.queries if q.target is not None]


def retrieval_outcomes(similarity: np.ndarray, targets: Sequence[int]) -> np.ndarray:
    """(Q,) 0-based rank of each query's target clip in a (Q, C) similarity."""
    return retrieval_ranks(similarity, np.asarray(targets, dtype=np.int64))


def figures_from_ranks(ranks: np.ndarray) -> dict[str, float]:
    """R@1, R@5, R@10 (percent) and median rank (1-based) of 0-based ranks."""
    m = metrics_from_ranks(ranks)
    return {"r1": m.r1, "r5": m.r5, "r10": m.r10, "median_rank": m.median_rank}


def retrieval_figures(similarity: np.ndarray, targets: Sequence[int]) -> dict[str, float]:
    """R@1, R@5, R@10 (percent) and median rank (1-based) of a (Q, C) similarity."""
    return figures_from_ranks(retrieval_outcomes(similarity, targets))


def rerank_grid(first_stage: np.ndarray, rerank_pairs: ScorePairs, queries: Sequence[str],
                k: int) -> np.ndarray:
    """Two-stage scores: each query's top ``k`` clips by ``first_stage`` (Q, C), rescored by
    ``rerank_pairs`` (in [0, 1]) and placed above every other clip (which keep their order)."""
    top = np.argsort(-first_stage, axis=1, kind="stable")[:, :k]
    texts = [queries[q] for q in range(len(queries)) for _ in range(top.shape[1])]
    scores = np.asarray(rerank_pairs(texts, top.reshape(-1).tolist())).reshape(top.shape)
    # float64: 1 + a float32 probability keeps every distinction the probabilities make (in
    # float32, close probabilities would tie after the shift, an order search does not serve)
    out = first_stage.astype(np.float64) - float(first_stage.max()) - 1.0  # below every reranked score
    np.put_along_axis(out, top, 1.0 + scores.astype(np.float64), axis=1)
    return out


# ---- action step localisation ------------------------------------------------------------------

def step_localization(split: SplitClips, score_pairs: ScorePairs) -> float:
    """CrossTask recall (percent, mean over tasks) of picking each step's best clip in its video."""
    return recall_from_counts(step_outcomes(split, score_pairs)).mean


def step_truths(split: SplitClips) -> list[tuple[int, list[StepQuery], np.ndarray]]:
    """Per video with steps and clips: (video, its steps, truth (clips, steps) bool: the clip's
    centre lies inside the step)."""
    out = []
    for vi, clips in enumerate(split.video_clips):
        steps = [q for q in split.queries if q.video == vi]
        if not steps or not clips:
            continue
        centres = np.array([split.clips[c].centre_sec for c in clips])
        out.append((vi, steps, np.stack([(centres >= q.start_sec) & (centres <= q.end_sec)
                                         for q in steps], 1)))
    return out


def step_outcomes(split: SplitClips, score_pairs: ScorePairs) -> list[tuple[str, int, int]]:
    """Per video with steps and clips: (task, hits, annotated steps) (``metrics.step_hits``)."""
    videos = []
    for vi, steps, truth in step_truths(split):
        scores = score_grid(score_pairs, [q.description for q in steps], split.video_clips[vi]).T
        videos.append((split.corpus.videos[vi].task or "all", *step_hits(scores, truth)))
    return videos


# ---- action segmentation -----------------------------------------------------------------------

def segmentation_labels(*corpora: Corpus) -> list[str]:
    """["background"] + the corpus verb vocabulary + any other step verb (sorted)."""
    verbs = list(corpora[0].verbs)
    extra = sorted({s.get("verb") for c in corpora for v in c.videos for s in v.steps
                    if s.get("verb") and s.get("verb") not in verbs})
    return ["background", *verbs, *extra]


def segmentation_frames(split: SplitClips, labels: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per video: (frame clip indices (T,), frame labels (T,)) at 1 FPS (see module docstring)."""
    index = {name: i for i, name in enumerate(labels)}
    out = []
    for vi, clips in enumerate(split.video_clips):
        if not clips:
            continue
        start = np.array([split.clips[c].start_sec for c in clips])
        end = np.array([split.clips[c].end_sec for c in clips])
        centre = 0.5 * (start + end)
        times = np.arange(0.0, end.max(), 1.0)
        inside = (times[:, None] >= start) & (times[:, None] < end)
        gap = np.maximum(start - times[:, None], times[:, None] - end).clip(min=0)
        cost = np.where(inside, np.abs(times[:, None] - centre), 1e9 + gap)
        frame_clips = np.asarray(clips)[cost.argmin(1)]
        frame_labels = np.zeros(len(times), np.int64)
        for step in split.corpus.videos[vi].steps:
            holds = (times >= float(step["start_sec"])) & (times < float(step["end_sec"]))
            frame_labels[holds] = index.get(step.get("verb") or "", 0)
        out.append((frame_clips, frame_labels))
    return out


def segmentation_accuracy(predict: Callable[[np.ndarray], np.ndarray],
                          frames: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Frame accuracy (percent) of ``predict(clip indices (T,)) -> labels (T,)``."""
    return accuracy_from_counts(segmentation_outcomes(predict, frames))


def segmentation_outcomes(predict: Callable[[np.ndarray], np.ndarray],
                          frames: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Per video of ``frames``: (correct frames, frames), (V, 2)."""
    return frame_counts([predict(c) for c, _ in frames], [y for _, y in frames])


# ---- multiple-choice video QA and captioning ---------------------------------------------------

def questions(split: SplitClips, seed: int, num_candidates: int = NUM_CANDIDATES) -> list[Question]:
    """One question per clip that overlaps a step (see module docstring)."""
    pool = sorted({q.description for q in split.queries})
    if len(pool) < num_candidates:
        raise ValueError(f"multiple choice needs {num_candidates} distinct step descriptions in "
                         f"split {split.name!r}; it has {len(pool)}")
    rng = np.random.default_rng([seed, 7])
    out = []
    for clip, references in captioned_clips(split):
        others = [d for d in pool if d not in references]
        if len(others) < num_candidates - 1:
            raise ValueError(f"split {split.name!r}: too few step descriptions to draw "
                             f"{num_candidates - 1} wrong answers for clip {clip}")
        picks = [others[i] for i in rng.choice(len(others), num_candidates - 1, replace=False)]
        order = rng.permutation(num_candidates)
        candidates = [references[0], *picks]
        out.append(Question(clip, tuple(candidates[i] for i in order), int(np.argmin(order)),
                            references))
    return out


def captioned_clips(split: SplitClips) -> list[tuple[int, tuple[str, ...]]]:
    """Every clip that overlaps a step, with the descriptions of the steps overlapping it (the
    most-overlapping first, duplicates removed)."""
    out = []
    for clip in range(len(split.clips)):
        steps = split.clip_steps(clip)
        if steps:
            out.append((clip, tuple(dict.fromkeys(str(s["description"]) for s in steps))))
    return out


def multiple_choice(qs: Sequence[Question], score_pairs: ScorePairs) -> float:
    """Accuracy (percent) of picking the highest-scoring candidate of each question."""
    return percent_correct(choice_outcomes(qs, score_pairs))


def choice_outcomes(qs: Sequence[Question], score_pairs: ScorePairs) -> np.ndarray:
    """(Q,) bool: the highest-scoring candidate of each question is its answer."""
    texts = [c for q in qs for c in q.candidates]
    clips = [q.clip for q in qs for _ in q.candidates]
    scores = np.asarray(score_pairs(texts, clips), dtype=np.float64).reshape(len(qs), -1)
    return multiple_choice_correct(scores, np.array([q.answer for q in qs], dtype=np.int64))
