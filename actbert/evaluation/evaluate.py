"""``python -m actbert evaluate``: the paper's five downstream evaluations on a held-out split, with
the baselines a user would try instead and the paper's ablation without region cues.

``evaluate --library LIB --json`` prints ``{task: {system: {metric: value}}}`` plus ``ci``,
``differences``, ``timings_s`` (seconds per task), ``notes`` (what was substituted, skipped or
worth knowing) and ``info``. Tasks and their metrics (data and protocols: ``tasks``):

- ``retrieval``: ``r1``, ``r5``, ``r10`` (percent), ``median_rank``: each ground-truth step
  description against every clip of the split. ActBERT's plain figures score every pair with the
  matching head (the paper's way); ``*_embedding`` rank by cosine of the text-only and video-only
  embeddings; ``*_rerank`` take the embedding top ``--rerank-k`` and reorder them by the matching head.
- ``retrieval_visual_only``: the same, over the queries whose step has no aligned narration line
  (the corpus steps' ``narrated`` flag, from SynthKitchen's ground truth), still against every
  clip: narration search cannot find them. Skipped, with a note, when no step carries the flag.
- ``step_localization``: ``recall`` (CrossTask, percent), zero-shot from step descriptions;
  ``recall_embedding`` with the embeddings.
- ``segmentation``: ``frame_accuracy`` (COIN, percent) of a softmax-regression probe trained on
  the TRAIN split's frames, no text given (its L2 penalty chosen by cross-validation over train
  videos, ``probe``); a frame's feature is the video-only forward of its
  clip: the action hidden state of the clip's [ACT] slot concatenated with the pooled region output.
- ``videoqa``: ``accuracy`` (percent) of picking the true step description among 5 candidates by
  the matching score; ``accuracy_embedding`` by cosine; ``accuracy_linear`` by a logistic probe on
  the fused pooled output, trained on TRAIN-split pairs (true / mismatched).
- ``captioning``: ``bleu3``, ``bleu4``, ``meteor``, ``rouge_l`` (percent) and ``cider`` (CIDEr-D,
  raw): the paper's scales, from ``captioning_metrics.caption_scores`` (pycocoevalcap), for a
  transformer decoder (``captioner``) trained on TRAIN-split clips and their step descriptions.
  ``actbert`` and ``actbert_no_regions`` follow the paper (4.2.2): the action transformer alone
  encodes the clip (no region inputs; memory = the [ACT] hidden state); ``actbert_with_regions``
  feeds the regions and adds the pooled region output to the memory.

Fine-tuned rows (``--finetuned DIR``, written by ``actbert finetune``, ``finetune``): the
system ``actbert_finetuned`` in ``retrieval`` (its embeddings), ``segmentation`` (its classifier)
and ``videoqa`` (its matching score). ``protocols[task][system][metric]`` names the protocol of
every figure: ``zero_shot``, ``probe`` or ``finetuned`` (``protocols``). ``--dataset`` evaluates a
paper benchmark's files (``benchmark_corpus``) and prints the paper's tables beside ours
(``benchmark_eval``; ``paper`` in the JSON).

- ``matching``: ``auc`` (ROC-AUC, percent; chance 50) of the matching head on held-out pairs: each
  clip that overlaps a step with its own step description vs the description of a step whose
  verb or objects differ; ``auc_same_task`` draws that step from the clip's own task;
  ``auc_embedding`` scores the pairs by cosine (``heads``).
- ``masked_action``: ``top1_masked`` (percent) of the action head on held-out clips with the
  clip's action feature masked and its narration as text (the paper's masked action objective),
  ``top1_video_only`` with the feature visible and no text, both over the label space of the
  held-out clips' step verbs; system ``majority`` always answers the held-out majority verb.

Systems: ``actbert`` (the checkpoint), ``actbert_no_regions`` (the checkpoint pretrained with
``use_regions=False``, fed no regions; without one, the full model with its region inputs removed,
said in ``notes``), ``bm25`` and ``minilm`` (the clips' NARRATIONS searched with BM25 and with MiniLM
sentence embeddings; not for segmentation or captioning, which give no text), ``random``.
Retrieval adds what search serves: ``actbert_vector`` (the index's embeddings alone, the same
ranks as ``actbert``'s ``*_embedding`` metrics) and ``actbert_hybrid`` (those embeddings and BM25
fused by reciprocal rank, ``fusion.rrf_grid``, as ``indexer search`` does in its hybrid mode).
Each clip is one model input (one action slot and its regions). Heads are trained only on the train
split; a train video sharing a task instance with the evaluated split is an error. Everything is
deterministic from ``--seed``.

Uncertainty (``intervals``): ``ci[task][system][metric] = [low, high]``, a 95% percentile bootstrap
(``--resamples``, default 1000) that resamples the task's units (retrieval: queries; step
localisation and segmentation: videos; video QA: questions) and recomputes each metric with the
same function as the point figure; captioning has none (corpus-level scores).
``ci[task]["diff:actbert-actbert_no_regions"]``, ``["diff:actbert-bm25"]`` and, for retrieval,
``["diff:actbert_vector-bm25"]``, ``["diff:actbert_hybrid-bm25"]`` and
``["diff:actbert_hybrid-actbert_vector"]`` are paired
intervals of the differences (one draw for both systems), for every metric both systems have;
``differences[task]["actbert-bm25"][metric]`` are the point differences.

With ``--split val`` the run also records, beside the model, whether the matching-head rerank
improves R@1 over the embeddings (``rerank_policy``): search's ``--rerank auto`` follows it.
``--plot DIR`` writes each task's table as a PNG bar chart with the intervals (``plot``);
``--report DIR`` the report card, one HTML page with the same charts (Plotly), the paper's numbers,
the training curves and the commands (``report``). Every run keeps its result beside the model as
``CHECKPOINT/evaluation_<split>.json`` (``record``), which the explorer's Model page shows.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..corpus import Corpus, read_corpus
from ..rerank_policy import make_policy, write_policy
from ..tokenizer import ActBertTokenizer
from .baselines import Bm25Scorer, MiniLMEncoder, MiniLMScorer, RandomScorer
from .captioner import Captioner, CaptionerConfig
from .captioning_metrics import caption_scores
from .finetune import FinetunedModel, load_finetuned
from .fusion import rrf_grid
from .heads import masked_action_outcomes, matching_pairs, roc_auc
from .intervals import LEVEL, RESAMPLES, Bootstrap, Figures, bootstrap
from .metrics import accuracy_from_counts, percent_correct, recall_from_counts
from .probe import LinearProbe
from .protocols import protocols
from .scorer import ModelScorer, load_checkpoint
from .tasks import (SplitClips, captioned_clips, check_disjoint, choice_outcomes, figures_from_ranks,
                    load_split, questions, rerank_grid, retrieval_outcomes, retrieval_queries,
                    score_grid, segmentation_accuracy, segmentation_frames, segmentation_labels,
                    segmentation_outcomes, step_outcomes)

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
DIFFERENCES = (("actbert", "actbert_no_regions"), ("actbert", "bm25"), ("actbert_vector", "bm25"),
               ("actbert_hybrid", "bm25"), ("actbert_hybrid", "actbert_vector"))


@dataclass(frozen=True)
class EvalConfig:
    corpus: str
    checkpoint: str
    ablation_checkpoint: str | None = None
    split: str = "test"
    train_split: str = "train"
    tasks: tuple[str, ...] = TASKS
    rerank_k: int = 10
    seed: int = 0
    batch_size: int = 64            # clips per forward
    max_text_tokens: int = 64
    max_train_clips: int = 800      # train clips for the video QA probe and the captioner
    caption_epochs: int = 15
    caption_min_steps: int = 400   # small training sets train at least this many updates
    meteor: bool = True
    device: str = "cpu"
    threads: int | None = None      # torch CPU threads (None: torch's default)
    resamples: int = RESAMPLES      # bootstrap resamples of the confidence intervals
    baselines: tuple[str, ...] = BASELINES  # narration baselines need narrations: not on benchmarks
    finetuned: tuple[str, ...] = () # ``actbert finetune`` output folders, reported as *_finetuned
    dataset: str | None = None      # a paper benchmark (``benchmark_corpus``); corpus = its label

    def __post_init__(self) -> None:
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown or not self.tasks:
            raise ValueError(f"unknown tasks {unknown}; choose from {','.join(TASKS)}")
        if self.rerank_k < 1:
            raise ValueError(f"--rerank-k must be positive, got {self.rerank_k}")
        if self.split == self.train_split:
            raise ValueError(f"the evaluated split {self.split!r} is the training split")
        if self.resamples < 1:
            raise ValueError(f"--resamples must be positive, got {self.resamples}")


@dataclass(frozen=True)
class Outcomes:
    """One task's per-unit outcomes: ``figures[system](unit indices)`` -> {metric: value}, the
    metrics of those units (repeats allowed), so the table and its bootstrap share one code path."""

    units: int
    unit: str                       # what is resampled: queries, videos, questions
    figures: dict[str, Figures]


def _over(outcomes: dict[str, object], summary) -> Figures:
    """figures(idx) = {metric: summary(outcome[idx])} for per-unit outcome arrays."""
    return lambda idx: {m: summary(np.asarray(o)[idx]) for m, o in outcomes.items()}


def _ranked(ranks: dict[str, dict[str, np.ndarray]], rows: list[int]) -> Outcomes:
    """Retrieval outcomes of the queries ``rows``: per system {suffix: (Q,) ranks}."""
    def figures(by_suffix: dict[str, np.ndarray]) -> Figures:
        return lambda idx: {f"{m}{suffix}": v for suffix, r in by_suffix.items()
                            for m, v in figures_from_ranks(r[idx]).items()}
    return Outcomes(len(rows), "queries", {system: figures({k: r[rows] for k, r in by_suffix.items()})
                                           for system, by_suffix in ranks.items()})


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
                "random": lambda: RandomScorer(self.config.seed),
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
            grid = bm25 if name == "bm25" else score_grid(self.baseline(name), texts, clips)
            ranks[name] = {"": retrieval_outcomes(grid, targets)}
        out = {"retrieval": _ranked(ranks, list(range(len(queries))))}
        visual = [i for i, q in enumerate(queries) if q.narrated is False]
        unknown = sum(q.narrated is None for q in queries)
        if unknown == len(queries):
            self.notes.append(f"{VISUAL_ONLY}: skipped: the corpus steps carry no 'narrated' flag "
                              "(export the library again; SynthKitchen ground truth knows it)")
        elif not visual:
            self.notes.append(f"{VISUAL_ONLY}: skipped: every query's step has an aligned "
                              "narration line")
        else:
            out[VISUAL_ONLY] = _ranked(ranks, visual)
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
            outcomes[name] = {"recall": step_outcomes(self.held, self.baseline(name))}
        # A video without an annotated step adds nothing to any task's recall: not a unit.
        videos = outcomes["actbert"]["recall"]
        recall_from_counts(videos)  # a task without any annotated step is an error
        units = [i for i, (_, _, total) in enumerate(videos) if total]

        def figures(by_metric):
            return lambda idx: {m: recall_from_counts([o[units[i]] for i in idx]).mean
                                for m, o in by_metric.items()}
        return {"step_localization": Outcomes(len(units), "videos",
                                              {s: figures(o) for s, o in outcomes.items()})}

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
            figure = segmentation_accuracy(lambda c: np.full(len(c), majority), test)
            self.notes.append(f"segmentation: majority class ({labels[majority]!r}) frame accuracy "
                              f"{figure:.2f}; {len(labels)} labels")
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
        rng = np.random.default_rng([self.config.seed, 13])
        out["random"] = {"frame_accuracy": segmentation_outcomes(
            lambda c: seen[rng.integers(len(seen), size=len(c))], test)}
        return {"segmentation": Outcomes(len(test), "videos",
                                         {s: _over(o, accuracy_from_counts) for s, o in out.items()})}

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
            out[name] = {"accuracy": choice_outcomes(qs, self.baseline(name))}
        return {"videoqa": Outcomes(len(qs), "questions",
                                    {s: _over(o, percent_correct) for s, o in out.items()})}

    # ---- the pretraining heads on held-out clips (heads) --------------------------------

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
            out[name] = {"auc": per_clip(self.baseline(name), False),
                         "auc_same_task": per_clip(self.baseline(name), True)}
        clips = len(pairs[False]) // 2
        self.notes.append(f"matching: {clips} held-out clips, each with its own step description "
                          "and one whose verb or objects differ")

        def auc(rows: np.ndarray) -> float:
            return 100.0 * roc_auc(np.concatenate([rows[:, 0], rows[:, 1]]),
                                   np.r_[np.ones(len(rows)), np.zeros(len(rows))])
        return {"matching": Outcomes(clips, "clips", {s: _over(o, auc) for s, o in out.items()})}

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
        space = sorted({verbs[v] for v in truth})
        self.notes.append(f"masked_action: {len(truth)} held-out clips whose step verb is one of "
                          f"the model's {len(verbs)} verbs; top-1 over the {len(space)} step verbs "
                          f"({', '.join(space)}); majority verb {verbs[majority]!r}")
        return {"masked_action": Outcomes(len(truth), "clips",
                                          {s: _over(o, percent_correct) for s, o in out.items()})}

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
            rng = np.random.default_rng([self.config.seed, 23])
            hypotheses["random"] = {c: captions[rng.integers(len(captions))] for c in clips}
        out = {}
        for system, hyps in hypotheses.items():
            scores = caption_scores(references, hyps, meteor=self.config.meteor)
            out[system] = {"bleu3": 100 * scores.bleu3, "bleu4": 100 * scores.bleu4,
                           "meteor": None if scores.meteor is None else 100 * scores.meteor,
                           "rouge_l": 100 * scores.rouge_l, "cider": scores.cider}
            note = scores.meteor_note
        if hypotheses:
            self.notes.append(f"captioning: BLEU, METEOR, ROUGE-L in percent, CIDEr-D raw; "
                              f"{scores.tokenizer}; {note}; no confidence intervals (corpus-level "
                              "scores: a bootstrap would rescore every resample)")
        return {"captioning": out}


def _round(value):
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_round(v) for v in value]
    return round(float(value), 4) if isinstance(value, (float, np.floating)) else value


def _pretraining_note(checkpoint: str, split: str) -> str | None:
    """A warning when the checkpoint's own training record says it saw the evaluated split."""
    for record in (Path(checkpoint) / "train_config.json", Path(checkpoint).parent / "train_config.json"):
        if record.is_file():
            trained_on = json.loads(record.read_text()).get("split")
            if trained_on is None or trained_on == split:
                return (f"WARNING: {record} says the model was pretrained on split "
                        f"{trained_on or 'all'}, which includes the evaluated split {split!r}")
            return None
    return None


def evaluate(config: EvalConfig, corpus: Corpus | None = None) -> dict:
    """Run the configured tasks; returns the result dictionary (see the module docstring).
    ``corpus``: the corpus already read (a benchmark's, ``benchmark_corpus``); default: read
    ``config.corpus``."""
    started = time.perf_counter()
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    corpus = corpus or read_corpus(config.corpus)
    held = load_split(corpus, config.split)
    train_part = corpus.split(config.train_split)
    check_disjoint(train_part, held.corpus)
    needs_train = {"segmentation", "videoqa", "captioning"} & set(config.tasks)
    train = (load_split(corpus, config.train_split)
             if train_part.videos and needs_train else None)
    notes = [n for n in [_pretraining_note(config.checkpoint, config.split)] if n]
    model = load_checkpoint(config.checkpoint, held, config.device)
    if config.ablation_checkpoint:
        ablation = load_checkpoint(config.ablation_checkpoint, held, config.device)
        notes += [n for n in [_pretraining_note(config.ablation_checkpoint, config.split)] if n]
    else:
        ablation = model
        notes.append("actbert_no_regions: no checkpoint pretrained without regions was given "
                     "(--ablation-checkpoint or library.json 'model_no_regions'); its rows are the "
                     "full model with the region inputs removed, not the paper's ablation")
    models = {"actbert": (model, True), "actbert_no_regions": (ablation, False)}
    run = Evaluation(config, held, train, models, ActBertTokenizer(max_length=config.max_text_tokens),
                     notes)
    for directory in config.finetuned:
        ft = load_finetuned(directory, held, config.device)
        run.finetuned.setdefault(ft.task, []).append(ft)
        if ft.task not in config.tasks:
            notes.append(f"{directory}: fine-tuned for {ft.task}, which this run does not evaluate")
    result: dict = {}
    intervals: dict = {}
    differences: dict = {}
    units: dict = {}
    timings = {"load": round(time.perf_counter() - started, 2)}
    for task in config.tasks:
        t0 = time.perf_counter()
        for name, produced in getattr(run, task)().items():
            if not isinstance(produced, Outcomes):  # captioning: corpus-level scores only
                result[name] = _round(produced)
                continue
            boot = bootstrap(produced.figures, produced.units,
                             seed=[config.seed, 29, RESULT_TASKS.index(name)],
                             resamples=config.resamples)
            result[name] = _round(boot.point)
            intervals[name], differences[name] = _intervals(boot)
            units[name] = f"{produced.units} {produced.unit}"
            if name == "retrieval" and config.split == "val":
                run.notes.append(_record_policy(config, boot, produced.units))
        timings[task] = round(time.perf_counter() - t0, 2)
        log.info("%s done in %.1f s", task, timings[task])
    result = {t: result[t] for t in RESULT_TASKS if t in result}
    result["protocols"] = protocols(result)
    result["ci"] = {t: intervals[t] for t in RESULT_TASKS if t in intervals}
    result["differences"] = {t: differences[t] for t in RESULT_TASKS if t in differences}
    result["timings_s"] = timings
    result["notes"] = run.notes
    result["info"] = {
        "split": config.split, "videos": len(held.corpus.videos), "clips": len(held.clips),
        "steps": len(held.queries), "train_videos": len(train.corpus.videos) if train else 0,
        "train_video_ids": sorted(v.video_id for v in train.corpus.videos) if train else [],
        "checkpoint": config.checkpoint, "ablation_checkpoint": config.ablation_checkpoint,
        "seed": config.seed, "rerank_k": config.rerank_k, "device": config.device,
        "dataset": config.dataset, "finetuned": {ft.system + ":" + t: ft.directory
                                                 for t, fts in run.finetuned.items() for ft in fts},
        "bootstrap": {"resamples": config.resamples, "level": LEVEL, "method": "percentile",
                      "resampled": units}}
    return result


def _intervals(boot: Bootstrap) -> tuple[dict, dict]:
    """ci[system][metric] and ci["diff:a-b"][metric] ([low, high]); differences["a-b"][metric]."""
    ci, point = _round(boot.intervals()), {}
    for a, b in DIFFERENCES:
        if a in boot.point and b in boot.point:
            diff, diff_ci = boot.difference(a, b)
            point[f"{a}-{b}"], ci[f"diff:{a}-{b}"] = _round(diff), _round(diff_ci)
    return ci, point


def _record_policy(config: EvalConfig, boot: Bootstrap, queries: int) -> str:
    """Write the checkpoint's rerank policy from val retrieval; returns a note."""
    figures = boot.point["actbert"]
    _, interval = boot.metric_difference("actbert", "r1_rerank", "r1_embedding")
    policy = make_policy(config.split, figures["r1_embedding"], figures["r1_rerank"], interval,
                         config.rerank_k, queries, config.corpus, config.checkpoint)
    try:
        path = write_policy(config.checkpoint, policy)
    except OSError as exc:
        return f"rerank policy not recorded: {exc}"
    return (f"rerank policy: the matching-head rerank of the top {policy.rerank_k} "
            f"{'improves' if policy.rerank_helps else 'does not improve'} val R@1 "
            f"({policy.r1_rerank:.1f} vs {policy.r1_embedding:.1f}, difference interval "
            f"[{interval[0]:.1f}, {interval[1]:.1f}]); recorded in {path}")


# ---- command line ------------------------------------------------------------------------------

def add_cli(subparsers) -> None:
    """The ``evaluate`` command (``cli``)."""
    from .cli import add_cli as add

    add(subparsers)
