"""The training corpus: what pretraining and evaluation read from a library, and the samples.

``corpus.jsonl`` (written by the indexer beside a library's feature files) holds a header line
``{"format": "actbert-corpus-1", "verbs": [...], "region_classes": [...]}`` (plus what the writer
records, e.g. ``min_verb_count``: how many clips' narrations a verb needed) and one line per video:
``{"video_id", "features" (path, relative to the corpus file), "split", "task", "task_instance",
"narrations": [per clip], "verbs": [[lemmas] per clip], "narrated": [per clip: made from
narration (false: a window over a stretch nobody talks over; absent in corpora written before
whole-video coverage: every clip narrated)], "steps": [{"start_sec", "end_sec", "description",
"verb"}]}``.

A pretraining sample is a group of K adjacent narrated clips of one video (the paper uses K = 10;
the unnarrated windows between them are skipped: they have no text to learn from) with their
narration; its negative for cross-modal matching is a clip group of another video, of the same task
when one exists (harder), chosen deterministically from (seed, epoch, sample index) so that the
data do not depend on batching or on the number of distributed ranks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from .atomic import atomic_path
from .data import ClipInputs, VideoFeatures, clip_inputs

FORMAT = "actbert-corpus-1"


@dataclass(frozen=True)
class CorpusVideo:
    video_id: str
    features: Path
    narrations: tuple[str, ...]
    verbs: tuple[tuple[str, ...], ...]
    split: str | None = None
    task: str | None = None
    task_instance: str | None = None
    steps: tuple[dict, ...] = ()
    narrated: tuple[bool, ...] = ()  # per clip; empty: every clip narrated (older corpora)

    def is_narrated(self, clip: int) -> bool:
        """Whether clip ``clip`` was made from narration (False: an unnarrated window)."""
        return not self.narrated or self.narrated[clip]

    def narrated_clips(self) -> list[int]:
        """The indices of the clips made from narration, in time order."""
        return [c for c in range(len(self.narrations)) if self.is_narrated(c)]


@dataclass(frozen=True)
class Corpus:
    videos: tuple[CorpusVideo, ...]
    verbs: tuple[str, ...]
    region_classes: tuple[str, ...] = ()
    meta: dict = field(default_factory=dict)

    def split(self, name: str | None) -> "Corpus":
        """Videos of one split (``None``: all)."""
        if name is None:
            return self
        return Corpus(tuple(v for v in self.videos if v.split == name), self.verbs,
                      self.region_classes, self.meta)

    def verb_targets(self, verbs: tuple[str, ...]) -> np.ndarray:
        """l1-normalised multi-hot over the verb vocabulary; all zeros when no known verb."""
        index = {v: i for i, v in enumerate(self.verbs)}
        target = np.zeros(len(self.verbs), np.float32)
        for verb in verbs:
            if verb in index:
                target[index[verb]] = 1.0
        total = target.sum()
        return target / total if total else target


def write_corpus(path: str | Path, videos: list[CorpusVideo], verbs: list[str],
                 region_classes: list[str] = (), **meta) -> None:
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w") as handle:
        handle.write(json.dumps({"format": FORMAT, "verbs": list(verbs),
                                 "region_classes": list(region_classes), **meta}) + "\n")
        for v in videos:
            features = Path(v.features)
            try:
                features = features.relative_to(path.parent)
            except ValueError:
                pass
            handle.write(json.dumps({
                "video_id": v.video_id, "features": str(features), "split": v.split,
                "task": v.task, "task_instance": v.task_instance,
                "narrations": list(v.narrations), "verbs": [list(x) for x in v.verbs],
                **({"narrated": [bool(f) for f in v.narrated]} if v.narrated else {}),
                "steps": list(v.steps)}) + "\n")


def read_corpus(path: str | Path) -> Corpus:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no corpus file (the indexer writes it after ingest: "
                                "`python -m indexer ingest ...`)")
    lines = path.read_text().splitlines()
    header = json.loads(lines[0]) if lines else {}
    if header.get("format") != FORMAT:
        raise ValueError(f"{path}: not an {FORMAT} file")
    videos = []
    for number, line in enumerate(lines[1:], start=2):
        d = json.loads(line)
        try:
            features = Path(d["features"])
            videos.append(CorpusVideo(
                video_id=d["video_id"], features=features if features.is_absolute() else path.parent / features,
                narrations=tuple(d["narrations"]), verbs=tuple(tuple(v) for v in d["verbs"]),
                split=d.get("split"), task=d.get("task"), task_instance=d.get("task_instance"),
                steps=tuple(d.get("steps", ())), narrated=_narrated_flags(d, path)))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not a corpus video ({type(exc).__name__}: {exc})") from exc
    if "verbs" not in header:
        raise ValueError(f"{path}: its header names no verbs")
    meta = {k: v for k, v in header.items() if k not in ("format", "verbs", "region_classes")}
    return Corpus(tuple(videos), tuple(header["verbs"]), tuple(header.get("region_classes", ())), meta)


def _narrated_flags(line: dict, path: Path) -> tuple[bool, ...]:
    flags = line.get("narrated", [])
    if not isinstance(flags, list) or (flags and (len(flags) != len(line["narrations"])
                                                  or not all(isinstance(f, bool) for f in flags))):
        raise ValueError(f"{path}: video {line['video_id']!r}: 'narrated' is not one true/false per clip")
    return tuple(flags)


def reads_step_text(seed: int, epoch: int, item: int, clip_position: int, share: float) -> bool:
    """Whether row ``clip_position`` of sample ``item`` reads its step text in ``epoch``: a draw
    from (seed, epoch, item, position), so the choice depends on neither batching nor ranks."""
    if share <= 0.0:
        return False
    return bool(np.random.default_rng([seed, epoch, item, clip_position, 7]).random() < share)


@lru_cache(maxsize=256)
def _load_features(path: str) -> VideoFeatures:
    return VideoFeatures.load(path)


@dataclass(frozen=True)
class Sample:
    """One group of adjacent clips: the narration of each clip (``""`` for none), the video inputs
    and the verb targets (K, V)."""

    sentences: tuple[str, ...]
    video: ClipInputs
    verb_targets: torch.Tensor
    video_index: int
    task: str | None

    @property
    def text(self) -> str:
        """The narration of the group as one string."""
        return " ".join(t for t in self.sentences if t)


class ClipGroups(torch.utils.data.Dataset):
    """Groups of K adjacent narrated clips (non-overlapping, the last group may be shorter; the
    unnarrated windows are left out), each returned with a negative group for the matching
    objective. ``items[i]``: (video index, first clip index, the group's clip indices)."""

    def __init__(self, corpus: Corpus, clips_per_sample: int = 10, max_regions: int = 36,
                 seed: int = 0, min_clips: int = 1, hard_negatives: float = 0.5,
                 video_negatives: float = 0.0) -> None:
        self.corpus = corpus
        for name, share in (("hard_negatives", hard_negatives), ("video_negatives", video_negatives)):
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"{name} is a share in [0, 1], got {share}")
        if hard_negatives + video_negatives > 1.0:
            raise ValueError(f"hard_negatives + video_negatives is a share: {hard_negatives} + "
                             f"{video_negatives} > 1")
        self.hard_negatives = hard_negatives
        self.video_negatives = video_negatives
        self.k = clips_per_sample
        self.max_regions = max_regions
        self.seed = seed
        self.epoch = 0
        self.items = []
        for vi, video in enumerate(corpus.videos):
            narrated = video.narrated_clips()
            for start in range(0, len(narrated), clips_per_sample):
                clips = tuple(narrated[start:start + clips_per_sample])
                if len(clips) >= min_clips:
                    self.items.append((vi, clips[0], clips))
        by_task: dict[str | None, list[int]] = {}
        by_video: dict[int, list[int]] = {}
        for i, (vi, _, _) in enumerate(self.items):
            by_task.setdefault(corpus.videos[vi].task, []).append(i)
            by_video.setdefault(vi, []).append(i)
        self._by_task, self._by_video = by_task, by_video
        self._kept: dict[int, Sample] | None = None
        self.step_texts: dict[tuple[int, int], str] = {}  # (video, clip) -> step text (step_list.py)
        self.step_share = 0.0  # share of the rows with a step text that read it instead, per epoch

    def keep_samples(self) -> None:
        """From now on keep every sample in memory once built (its corpus, verbs and region limit
        are final): an epoch then reads no feature file again. Training turns it on; a feature
        file holds every region of a video, so rebuilding a sample costs a whole file read."""
        self._kept = {}

    def __len__(self) -> int:
        return len(self.items)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def sample(self, item: int) -> Sample:
        if self._kept is not None:
            if item not in self._kept:
                self._kept[item] = self._build(item)
            return self._kept[item]
        return self._build(item)

    def _build(self, item: int) -> Sample:
        vi, _, group = self.items[item]
        video = self.corpus.videos[vi]
        features = _load_features(str(video.features))
        clips = list(group)
        sentences = tuple(video.narrations[c] or "" for c in clips)
        targets = np.stack([self.corpus.verb_targets(video.verbs[c]) for c in clips]) \
            if self.corpus.verbs else np.zeros((len(clips), 0), np.float32)
        return Sample(sentences, clip_inputs(features, clips, self.max_regions),
                      torch.from_numpy(targets), vi, video.task)

    def negative_for(self, item: int) -> int:
        """The group shown against this group's text when the matching objective wants a mismatch:
        with probability ``video_negatives`` another group of the same video (other steps of the
        same recipe, the hardest case), with ``hard_negatives`` a group of another video of the
        same task when the task is known, otherwise a group of any other video."""
        vi = self.items[item][0]
        rng = np.random.default_rng([self.seed, self.epoch, item])
        same_task = [j for j in self._by_task.get(self.corpus.videos[vi].task, [])
                     if self.items[j][0] != vi] if self.corpus.videos[vi].task else []
        same_video = [j for j in self._by_video[vi] if j != item]
        other = [j for j in range(len(self.items)) if self.items[j][0] != vi]
        draw = rng.random()
        if same_video and draw < self.video_negatives:
            return int(same_video[rng.integers(len(same_video))])
        pool = same_task if same_task and draw - self.video_negatives < self.hard_negatives else other
        if not pool:
            raise ValueError("matching negatives need at least two videos in the corpus")
        return int(pool[rng.integers(len(pool))])

    def __getitem__(self, item: int) -> tuple[int, Sample, Sample]:
        return item, self.with_step_texts(item, self.sample(item)), self.sample(self.negative_for(item))

    def with_step_texts(self, item: int, sample: Sample) -> Sample:
        """The sample with each clip that has a step text reading it instead of its narration,
        drawn per epoch with probability ``step_share`` (``step_list.reads_step_text``)."""
        if self.step_share <= 0.0 or not self.step_texts:
            return sample
        vi, _, group = self.items[item]
        sentences = tuple(
            self.step_texts[(vi, c)] if (vi, c) in self.step_texts
            and reads_step_text(self.seed, self.epoch, item, k, self.step_share) else s
            for k, (c, s) in enumerate(zip(group, sample.sentences)))
        return sample if sentences == sample.sentences else replace(sample, sentences=sentences)
