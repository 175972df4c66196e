"""The task runners of ``evaluate`` (what each task measures: ``evaluate``'s docstring).

``Evaluation`` holds one run: the evaluated and training splits, the models and baselines as
scorers (built once, ``scorer.ModelScorer``), the fine-tuned models and the notes; it has one
method per task of ``TASKS``, each returning ``{task: Outcomes}`` (the per-unit outcomes that the
figures and their bootstrap share; captioning's units are its captions, and its METEOR a
corpus-level figure without an interval).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..tokenizer import ActBertTokenizer
from .baselines import Bm25Scorer, MiniLMEncoder, MiniLMScorer
from .captioner import Captioner, CaptionerConfig
from .captioning_metrics import caption_scores
from .finetune import FinetunedModel
from .fusion import rrf_grid
from .heads import masked_action_outcomes, matching_pairs, roc_auc, verb_clips
from . import chance
from .intervals import Figures
from .metrics import accuracy_from_counts, recall_from_counts
from .probe import LinearProbe
from .scorer import ModelScorer
from .tasks import (SplitClips, captioned_clips, choice_outcomes, figures_from_ranks, questions,
                    rerank_grid, retrieval_outcomes, retrieval_queries, score_grid,
                    segmentation_frames, segmentation_labels,
                    segmentation_outcomes, step_outcomes, step_truths)

if TYPE_CHECKING:
    from .evaluate import EvalConfig

log = logging.getLogger(__name__)

TASKS = ("retrieval", "step_localization", "segmentation", "videoqa", "captioning", "matching",
         "masked_action")
SYSTEMS = ("actbert", "actbert_no_regions", "bm25", "minilm", "random")
MODEL_SYSTEMS = ("actbert", "actbert_no_regions")
BASELINES = ("bm25", "minilm", "random")
# captioning row -> (model, with regions): the paper's protocol has no region transformer (4.2.2)
CAPTION_SYSTEMS = {"actbert": ("actbert", False), "actbert_no_regions": ("actbert_no_regions", False),
                   "actbert_with_regions": ("actbert", True)}
METRICS = {"retrieval": ("r1", "r5", "r10", "median_rank"), "step_localization": ("recall",),
           "segmentation": ("frame_accuracy",), "videoqa": ("accuracy",),
           "captioning": ("bleu3", "bleu4", "meteor", "rouge_l", "cider"),
           "matching": ("auc", "auc_same_task"), "masked_action": ("top1_masked", "top1_video_only")}
VISUAL_ONLY = "retrieval_visual_only"  # reported with "retrieval": its queries without narration
RESULT_TASKS = ("retrieval", VISUAL_ONLY, *TASKS[1:])


@dataclass(frozen=True)
class Outcomes:
    """One task's per-unit outcomes: ``figures[system](unit indices)`` -> {metric: value}, the
    metrics of those units (repeats allowed), so the table and its bootstrap share one code path.
    ``videos[i]`` is the held-out video of unit i: the bootstrap resamples whole videos."""

    units: int
    unit: str                       # what a unit is: queries, videos, questions, clips, captions
    figures: dict[str, Figures]
    videos: np.ndarray              # (units,) video index of each unit
    fixed: dict[str, dict] = field(default_factory=dict)  # point figures without an interval

    def __post_init__(self) -> None:
        if len(self.videos) != self.units:
            raise ValueError(f"{len(self.videos)} video labels for {self.units} {self.unit}")


def _over(outcomes: dict[str, object], summary) -> Figures:
    """figures(idx) = {metric: summary(outcome[idx])} for per-unit outcome arrays."""
    return lambda idx: {m: summary(np.asarray(o)[idx]) for m, o in outcomes.items()}


def _percent(outcomes: np.ndarray) -> float:
    """Mean of per-unit outcomes in percent: right (1) / wrong (0), or chance's probabilities."""
    outcomes = np.asarray(outcomes, np.float64)
    if outcomes.size == 0:
        raise ValueError("no items to evaluate")
    return 100.0 * float(outcomes.mean())


def _constant(figures: dict[str, float]) -> Figures:
    """A chance row that is the same on every resample (it depends on no unit's outcome)."""
    return lambda idx: dict(figures)


def _ranked(ranks: dict[str, dict[str, np.ndarray]], rows: list[int], videos: np.ndarray,
            clips: int | None = None) -> Outcomes:
    """Retrieval outcomes of the queries ``rows``: per system {suffix: (Q,) ranks}; ``videos``:
    the video of every query; ``clips``: the searched clips, for the ``random`` row (chance's
    expectation, ``chance.retrieval_figures``; None: no random row)."""
    chance_row = {} if clips is None else {
        "random": _constant(chance.retrieval_figures(clips, len(rows)))}
    def figures(by_suffix: dict[str, np.ndarray]) -> Figures:
        return lambda idx: {f"{m}{suffix}": v for suffix, r in by_suffix.items()
                            for m, v in figures_from_ranks(r[idx]).items()}
    return Outcomes(len(rows), "queries", {**{system: figures({k: r[rows] for k, r in by_suffix.items()})
                                              for system, by_suffix in ranks.items()}, **chance_row},
                    np.asarray(videos)[rows])


@dataclass
class Evaluation:
    """One run: the evaluated and training splits, the scorers of every system, notes."""

    config: EvalConfig
    held: SplitClips
    train: SplitClips | None
    models: dict[str, tuple[torch.nn.Module, bool]]  # system -> (model, use_regions)
    tokenizer: ActBertTokenizer
    notes: list[str] = field(default_factory=list)
    finetuned: dict[str, list[FinetunedModel]] = field(default_factory=dict)  # task -> models
    _scorers: dict = field(default_factory=dict)  # scorers and the train-clip sample, built once

    def scorer(self, system: str, split: SplitClips | None = None,
               use_regions: bool | None = None) -> ModelScorer:
        """The system's scorer on a split (default: the held-out one); ``use_regions=False``
        feeds the full model without regions (captioning's action-transformer-only protocol)."""
        split = split or self.held
        model, own = self.models[system]
        use_regions = own if use_regions is None else use_regions and own
        key = (system, split.name, use_regions)
        if key not in self._scorers:
            self._scorers[key] = ModelScorer(model, self.tokenizer, split, use_regions,
                                             self.config.batch_size, self.config.device)
        return self._scorers[key]

    def finetuned_scorers(self, task: str):
        """(system, the fine-tuned model, its scorer on the held-out split) for ``task``."""
        for ft in self.finetuned.get(task, []):
            yield ft.system, ft, ft.scorer(self.tokenizer, self.held, self.config.batch_size,
                                           self.config.device)

    def baseline(self, name: str):
        if name not in self._scorers:
            narrations = self.held.narrations
            self._scorers[name] = {
                "bm25": lambda: Bm25Scorer(narrations),
                "minilm": lambda: MiniLMScorer(MiniLMEncoder(device=self.config.device), narrations),
            }[name]()
        return self._scorers[name]

    def _need_train(self, task: str, steps: bool = False) -> bool:
        """Whether the train split can train this task's heads (a note when it cannot)."""
        usable = self.train is not None and (not steps or bool(self._train_clips()))
        if not usable:
            self.notes.append(f"{task}: the {self.config.train_split!r} split has no videos"
                              f"{' with ground-truth steps' if steps else ''} to train on: "
                              "the actbert rows are left out")
        return usable

    # ---- the five tasks -----------------------------------------------------------------------

    def retrieval(self) -> dict:
        queries = retrieval_queries(self.held)
        if len(queries) < len(self.held.queries):
            self.notes.append(f"retrieval: {len(self.held.queries) - len(queries)} steps overlap no "
                              "clip and are left out")
        if not queries:
            raise ValueError(f"split {self.held.name!r} has no ground-truth step that overlaps a clip")
        texts, targets = [q.description for q in queries], [q.target for q in queries]
        videos_of: dict[str, set[int]] = {}
        for q in queries:
            videos_of.setdefault(q.description, set()).add(q.video)
        shared = sum(len(videos_of[t]) > 1 for t in texts)
        if shared:
            self.notes.append(f"retrieval: {shared} of {len(texts)} queries share their description "
                              "with a step of another held-out video; only the query's own target "
                              "clip counts as a hit")
        clips = list(range(len(self.held.clips)))
        ranks: dict[str, dict[str, np.ndarray]] = {}
        bm25 = score_grid(self.baseline("bm25"), texts, clips) if "bm25" in self.config.baselines \
            else None
        for system in MODEL_SYSTEMS:
            s = self.scorer(system)
            started = time.perf_counter()
            log.info("retrieval: %s: %d x %d pairs through the matching head", system, len(texts),
                     len(clips))
            match = score_grid(s.match, texts, clips)
            self.notes.append(f"retrieval: {system} matching head scored {len(texts)} x "
                              f"{len(clips)} pairs in {time.perf_counter() - started:.1f} s")
            embedding = score_grid(s.cosine, texts, clips)
            rerank = rerank_grid(embedding, s.match, texts, self.config.rerank_k)
            ranks[system] = {"": retrieval_outcomes(match, targets),
                             "_embedding": retrieval_outcomes(embedding, targets),
                             "_rerank": retrieval_outcomes(rerank, targets)}
            if system == "actbert":  # what search serves: the index alone, and fused with BM25
                ranks["actbert_vector"] = {"": ranks[system]["_embedding"]}
            if system == "actbert" and bm25 is not None:
                ranks["actbert_hybrid"] = {"": retrieval_outcomes(
                    rrf_grid([embedding, bm25], [None, bm25 > 0]), targets)}
        for system, _, s in self.finetuned_scorers("retrieval"):  # TVJE+FT: the embeddings
            ranks[system] = {"": retrieval_outcomes(score_grid(s.cosine, texts, clips), targets)}
        for name in self.config.baselines:
            if name != "random":
                grid = bm25 if name == "bm25" else score_grid(self.baseline(name), texts, clips)
                ranks[name] = {"": retrieval_outcomes(grid, targets)}
        videos = np.array([q.video for q in queries])
        searched = len(clips) if "random" in self.config.baselines else None
        out = {"retrieval": _ranked(ranks, list(range(len(queries))), videos, searched)}
        visual = [i for i, q in enumerate(queries) if q.narrated is False]
        unknown = sum(q.narrated is None for q in queries)
        if unknown == len(queries):
            self.notes.append(f"{VISUAL_ONLY}: skipped: the corpus steps carry no 'narrated' flag "
                              "(export the library again; SynthKitchen ground truth knows it)")
        elif not visual:
            self.notes.append(f"{VISUAL_ONLY}: skipped: every query's step has an aligned "
                              "narration line")
        else:
            out[VISUAL_ONLY] = _ranked(ranks, visual, videos, searched)
            self.notes.append(f"{VISUAL_ONLY}: {len(visual)} of {len(queries)} queries, those whose "
                              f"step has no aligned narration line, against all {len(clips)} clips"
                              + (f"; {unknown} queries of unknown narration left out" if unknown else ""))
        return out

    def step_localization(self) -> dict:
        outcomes = {}
        for system in MODEL_SYSTEMS:
            s = self.scorer(system)
            outcomes[system] = {"recall": step_outcomes(self.held, s.match),
                                "recall_embedding": step_outcomes(self.held, s.cosine)}
        for name in self.config.baselines:
            outcomes[name] = {"recall": [(self.held.corpus.videos[vi].task or "all",
                                          *chance.step_hits(truth))
                                         for vi, _, truth in step_truths(self.held)]
                              if name == "random" else step_outcomes(self.held, self.baseline(name))}
        # A video without an annotated step adds nothing to any task's recall: not a unit.
        videos = outcomes["actbert"]["recall"]
        recall_from_counts(videos)  # a task without any annotated step is an error
        units = [i for i, (_, _, total) in enumerate(videos) if total]

        def figures(by_metric):
            return lambda idx: {m: recall_from_counts([o[units[i]] for i in idx]).mean
                                for m, o in by_metric.items()}
        return {"step_localization": Outcomes(len(units), "videos",
                                              {s: figures(o) for s, o in outcomes.items()},
                                              np.arange(len(units)))}

    def segmentation(self) -> dict:
        labels = segmentation_labels(self.held.corpus, *([self.train.corpus] if self.train else []))
        test = [(c, y) for c, y in segmentation_frames(self.held, labels) if len(y)]
        out = {}
        if self._need_train("segmentation"):
            train = segmentation_frames(self.train, labels)
            y_train = np.concatenate([y for _, y in train])
            groups = np.concatenate([np.full(len(y), v) for v, (_, y) in enumerate(train)])
            counts = np.bincount(y_train, minlength=len(labels))
            majority = int(counts.argmax())
            out["majority"] = {"frame_accuracy": segmentation_outcomes(
                lambda c: np.full(len(c), majority), test)}
            self.notes.append(f"segmentation: majority class of the train frames: "
                              f"{labels[majority]!r}; {len(labels)} labels")
            # Frames of one clip share its features: one weighted row per (clip, label).
            rows, repeats = np.unique(np.stack([np.concatenate([c for c, _ in train]), y_train,
                                               groups]), axis=1, return_counts=True)
            for system in MODEL_SYSTEMS:
                tr, te = self.scorer(system, self.train), self.scorer(system, self.held)
                probe = LinearProbe.cross_validated(tr.visual_features(rows[0]), rows[1],
                                                    len(labels), rows[2], weights=repeats)
                self.notes.append(f"segmentation probe ({system}): l2 {probe.l2:g} chosen by "
                                  f"3-fold cross-validation over train videos")
                out[system] = {"frame_accuracy": segmentation_outcomes(
                    lambda c, te=te, probe=probe: probe.predict(te.visual_features(c)), test)}
            for system, ft, _ in self.finetuned_scorers("segmentation"):
                out[system] = {"frame_accuracy": segmentation_outcomes(
                    lambda c, ft=ft: ft.segment(self.tokenizer, self.held, c, labels), test)}
            seen = np.flatnonzero(counts)
        else:
            seen = np.arange(len(labels))
        out["random"] = {"frame_accuracy": np.array([(chance.uniform_correct(y, seen), len(y))
                                                     for _, y in test])}
        return {"segmentation": Outcomes(len(test), "videos",
                                         {s: _over(o, accuracy_from_counts) for s, o in out.items()},
                                         np.arange(len(test)))}

    def videoqa(self) -> dict:
        qs = questions(self.held, self.config.seed)
        out = {}
        for system in MODEL_SYSTEMS:
            s = self.scorer(system)
            out[system] = {"accuracy": choice_outcomes(qs, s.match),
                           "accuracy_embedding": choice_outcomes(qs, s.cosine)}
        if self._need_train("videoqa linear probe", steps=True):
            pairs = self._train_pairs()
            for system in MODEL_SYSTEMS:
                tr, te = self.scorer(system, self.train), self.scorer(system)
                texts, clips, labels = zip(*pairs)
                probe = LinearProbe.cross_validated(tr.fused(texts, clips), np.array(labels), 2,
                                                    groups=clips)

                def margin(t, c, te=te, probe=probe):  # logit(match) - logit(mismatch)
                    return np.diff(probe.logits(te.fused(t, c)), axis=1)[:, 0]

                out[system]["accuracy_linear"] = choice_outcomes(qs, margin)
        for system, _, s in self.finetuned_scorers("videoqa"):  # the fine-tuned matching score
            out[system] = {"accuracy": choice_outcomes(qs, s.match)}
        for name in self.config.baselines:
            out[name] = {"accuracy": np.array([1 / len(q.candidates) for q in qs])
                         if name == "random" else choice_outcomes(qs, self.baseline(name))}
        return {"videoqa": Outcomes(len(qs), "questions",
                                    {s: _over(o, _percent) for s, o in out.items()},
                                    self._videos_of([q.clip for q in qs]))}

    # ---- the pretraining heads on held-out clips (heads) --------------------------------------

    def matching(self) -> dict:
        """ROC-AUC of each pair scorer: a clip's own step description vs a step whose verb or
        objects differ (``auc``; ``auc_same_task``: that step from the clip's own task)."""
        seed = self.config.seed
        pairs = {False: matching_pairs(self.held, seed), True: matching_pairs(self.held, seed, True)}
        if not pairs[False]:
            raise ValueError(f"split {self.held.name!r}: no clip overlaps a ground-truth step")

        def per_clip(score_pairs, same: bool) -> np.ndarray:  # (clips, 2): matched, mismatched
            chosen = pairs[same]
            scores = score_pairs([t for t, _, _ in chosen], [c for _, c, _ in chosen])
            return np.asarray(scores, np.float64).reshape(-1, 2)

        out = {}
        for system in MODEL_SYSTEMS:
            s = self.scorer(system)
            out[system] = {"auc": per_clip(s.match, False), "auc_same_task": per_clip(s.match, True),
                           "auc_embedding": per_clip(s.cosine, False)}
        for name in self.config.baselines:
            if name != "random":
                out[name] = {"auc": per_clip(self.baseline(name), False),
                             "auc_same_task": per_clip(self.baseline(name), True)}
        clips = len(pairs[False]) // 2
        self.notes.append(f"matching: {clips} held-out clips, each with its own step description "
                          "and one whose verb or objects differ")

        def auc(rows: np.ndarray) -> float:
            return 100.0 * roc_auc(np.concatenate([rows[:, 0], rows[:, 1]]),
                                   np.r_[np.ones(len(rows)), np.zeros(len(rows))])
        figures = {s: _over(o, auc) for s, o in out.items()}
        if "random" in self.config.baselines:
            figures["random"] = _constant({"auc": chance.AUC, "auc_same_task": chance.AUC})
        return {"matching": Outcomes(clips, "clips", figures,
                                     self._videos_of([c for _, c, _ in pairs[False][::2]]))}

    def masked_action(self) -> dict:
        """Top-1 of the action head on held-out clips (``heads.masked_action_outcomes``) beside
        always answering the held-out majority verb."""
        vocabularies = {tuple(m.config.extra.get("verbs") or self.held.corpus.verbs)
                        for m, _ in self.models.values()}
        if len(vocabularies) > 1:
            raise ValueError("masked_action: the full model and its ablation have different verb "
                             "vocabularies (pretrained on different corpora)")
        verbs = list(vocabularies.pop())  # the model's own verbs, recorded at pretraining
        out, truth, majority = {}, None, None
        for system, (model, use_regions) in self.models.items():
            truth, majority, out[system] = masked_action_outcomes(
                model, self.tokenizer, self.held, verbs, use_regions, self.config.batch_size)
        out["majority"] = {"top1_masked": truth == majority, "top1_video_only": truth == majority}
        uniform = np.full(len(truth), 1.0 / len(np.unique(truth)))  # a guess in the label space
        out["random"] = {"top1_masked": uniform, "top1_video_only": uniform}
        space = sorted({verbs[v] for v in truth})
        self.notes.append(f"masked_action: {len(truth)} held-out clips whose step verb is one of "
                          f"the model's {len(verbs)} verbs; top-1 over the {len(space)} step verbs "
                          f"({', '.join(space)}); majority verb {verbs[majority]!r}")
        clips = [c for c, _ in verb_clips(self.held, verbs)]  # the labelled clips, in order
        return {"masked_action": Outcomes(len(truth), "clips",
                                          {s: _over(o, _percent) for s, o in out.items()},
                                          self._videos_of(clips))}

    def _videos_of(self, clips) -> np.ndarray:
        """(N,) the held-out video index of each clip (the bootstrap's resampling unit)."""
        return np.array([self.held.clips[c].video for c in clips], dtype=np.int64)

    def _train_clips(self) -> list[tuple[int, tuple[str, ...]]]:
        """Train clips that overlap a step, at most ``max_train_clips`` (a seeded sample)."""
        if "train_clips" not in self._scorers:
            items = captioned_clips(self.train)
            if len(items) > self.config.max_train_clips:
                rng = np.random.default_rng([self.config.seed, 17])
                keep = np.sort(rng.choice(len(items), self.config.max_train_clips, replace=False))
                self.notes.append(f"video QA probe and captioner trained on {len(keep)} of "
                                  f"{len(items)} train clips (--max-train-clips)")
                items = [items[i] for i in keep]
            self._scorers["train_clips"] = items
        return self._scorers["train_clips"]

    def _train_pairs(self) -> list[tuple[str, int, int]]:
        """(text, train clip, 1 = its own step description / 0 = another's) pairs."""
        items = self._train_clips()
        pool = sorted({q.description for q in self.train.queries})
        rng = np.random.default_rng([self.config.seed, 19])
        pairs = []
        for clip, refs in items:
            pairs.append((refs[0], clip, 1))
            others = [d for d in pool if d not in refs]
            if others:
                pairs.append((others[rng.integers(len(others))], clip, 0))
        return pairs

    def captioning(self) -> dict:
        test = captioned_clips(self.held)
        if not test:
            raise ValueError(f"split {self.held.name!r} has no clip that overlaps a step")
        references = {clip: list(refs) for clip, refs in test}
        clips = [clip for clip, _ in test]
        hypotheses = {}
        if self._need_train("captioning", steps=True):
            train = self._train_clips()
            captions = [refs[0] for _, refs in train]
            for system, (model_system, regions) in CAPTION_SYSTEMS.items():
                tr, te = (self.scorer(model_system, split, regions) for split in (self.train, None))
                memory = (lambda s: s.caption_memory) if regions else (lambda s: s.action_memory)
                captioner = Captioner(self.tokenizer, CaptionerConfig(
                    epochs=self.config.caption_epochs, min_steps=self.config.caption_min_steps,
                    seed=self.config.seed))
                captioner.fit(memory(tr)([c for c, _ in train]), captions)
                hypotheses[system] = dict(zip(clips, captioner.generate(memory(te)(clips))))
            self.notes.append("captioning: actbert and actbert_no_regions follow the paper (4.2.2): "
                              "the action transformer alone encodes the clip (no region inputs; "
                              "memory = the [ACT] hidden state); actbert_with_regions adds the "
                              "region inputs and the pooled region output to the memory")
        figures, meteor = {}, {}
        for system, hyps in hypotheses.items():
            scores = caption_scores(references, hyps, meteor=self.config.meteor)
            figures[system] = scores.units.figures
            meteor[system] = {"meteor": None if scores.meteor is None else 100 * scores.meteor}
        if not hypotheses:
            return {"captioning": {}}
        figures["random"], _ = chance.random_captions(references, captions, self.config.seed)
        meteor["random"] = {"meteor": None}
        self.notes.append(f"captioning: BLEU, METEOR, ROUGE-L in percent, CIDEr-D raw; "
                          f"{scores.tokenizer}; {scores.meteor_note}; intervals resample the "
                          f"{len(clips)} captions (BLEU re-aggregated exactly; ROUGE-L and CIDEr-D "
                          "averaged per caption, CIDEr-D with the whole set's document "
                          "frequencies); METEOR has none (a corpus-level score)")
        return {"captioning": Outcomes(len(clips), "captions", figures, self._videos_of(clips),
                                       fixed=meteor)}
