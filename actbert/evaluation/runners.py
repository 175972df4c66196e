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
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ..fusion_policy import FUSION_NAME, PLAIN_RRF, FusionPolicy, choose, fusion_for, make_policy, read_fusion
from ..rerank_policy import decide, rerank_helps
from ..tokenizer import ActBertTokenizer
from . import chance
from .baselines import Bm25Scorer, MiniLMEncoder, MiniLMScorer
from .caption_rows import captioning_outcomes
# what can be evaluated lives in the leaf ``config`` (the names stay importable from here)
from .config import (ANALYSES, BASELINES, METRICS, MODEL_SYSTEMS, RESULT_TASKS,  # noqa: F401
                     SYSTEMS, TASKS, VISUAL_ONLY, VISUAL_ONLY_ALL_STEPS, EvalConfig)
from .dual_encoder import DualEncoder, DualEncoderScorer
from .finetuned import FinetunedModel
from .fusion import Ranked, coverage_grid, hybrid_grid
from .heads import masked_action_outcomes, matching_pairs, roc_auc, verb_clips
from .metrics import accuracy_from_counts, recall_from_counts
from .outcomes import Outcomes, constant, over, percent, ranked
from .probe import LinearProbe, closed_set_correct
from .raw_features import BilinearPairs, RawFeatures
from .scorer import ModelScorer
from .tasks import (SplitClips, captioned_clips, choice_outcomes, questions,
                    rerank_grid, retrieval_outcomes, retrieval_queries, score_grid,
                    segmentation_frames, segmentation_labels,
                    segmentation_outcomes, step_outcomes, step_truths)

log = logging.getLogger(__name__)



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
    dual_encoder: DualEncoder | None = None  # the ``train-dual`` baseline (``--dual-encoder``)
    fusion: FusionPolicy | None = None  # the hybrid's fusion chosen on val (``_fusion``)
    served_rerank: int | None = None  # the rerank depth search serves with (``_served_vector``)
    held_all: SplitClips | None = None  # the held-out split with its unnarrated windows (None: held)
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

    @property
    def probe_systems(self) -> tuple[str, ...]:
        """The systems a probe reads the clips of: the models, the raw features, the dual encoder."""
        return MODEL_SYSTEMS + ("raw_features",) + (("dual_encoder",) if self.dual_encoder else ())

    def video_side(self, system: str, split: SplitClips | None = None):
        """What a probe reads of each clip (``visual_features(clips)``) on a split (default: the
        held-out one): ActBERT's video-only outputs, the raw features, or the dual encoder's
        video vector (which also scores pairs by ``cosine``)."""
        split = split or self.held
        if system in MODEL_SYSTEMS:
            return self.scorer(system, split)
        key = (system, split.name)
        if key not in self._scorers:
            self._scorers[key] = (
                RawFeatures(split, self.models["actbert"][0].config.max_regions)
                if system == "raw_features" else
                DualEncoderScorer(self.dual_encoder, split, self.config.batch_size, self.config.device))
        return self._scorers[key]

    def finetuned_scorers(self, task: str, split: SplitClips | None = None):
        """(system, the fine-tuned model, its scorer on a split (default: the held-out one)) for
        ``task``."""
        for ft in self.finetuned.get(task, []):
            yield ft.system, ft, ft.scorer(self.tokenizer, split or self.held, self.config.batch_size,
                                           self.config.device)

    def baseline(self, name: str, split: SplitClips | None = None):
        split = split or self.held
        key = (name, split.name)
        if key not in self._scorers:
            narrations = split.narrations
            self._scorers[key] = {
                "bm25": lambda: Bm25Scorer(narrations),
                "minilm": lambda: MiniLMScorer(MiniLMEncoder(device=self.config.device), narrations),
            }[name]()
        return self._scorers[key]

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
        texts = [q.description for q in queries]
        videos_of: dict[str, set[int]] = {}
        for q in queries:
            videos_of.setdefault(q.description, set()).add(q.video)
        shared = sum(len(videos_of[t]) > 1 for t in texts)
        if shared:
            self.notes.append(f"retrieval: {shared} of {len(texts)} queries share their description "
                              "with a step of another held-out video; only the query's own target "
                              "clip counts as a hit")
        ranks, searched = self._retrieval_ranks(self.held, queries)
        videos = np.array([q.video for q in queries])
        out = {"retrieval": ranked(ranks, list(range(len(queries))), videos, searched)}
        visual = [i for i, q in enumerate(queries) if q.narrated is False]
        unknown = sum(q.narrated is None for q in queries)
        if unknown == len(queries):
            self.notes.append(f"{VISUAL_ONLY}: skipped: the corpus steps carry no 'narrated' flag "
                              "(export the library again; SynthKitchen ground truth knows it)")
            return out
        if not visual:
            self.notes.append(f"{VISUAL_ONLY}: skipped: every query's step has an aligned "
                              "narration line")
        else:
            out[VISUAL_ONLY] = ranked(ranks, visual, videos, searched)
            self.notes.append(f"{VISUAL_ONLY}: {len(visual)} of {len(queries)} queries, those whose "
                              f"step has no aligned narration line, against all {len(self.held.clips)} "
                              "narrated clips"
                              + (f"; {unknown} queries of unknown narration left out" if unknown else ""))
        out.update(self._visual_only_all_steps(ranks, visual, videos, searched))
        return out

    def _visual_only_all_steps(self, ranks, visual, videos, searched) -> dict:
        """Every unnarrated step against every clip of the split, the unnarrated windows included
        (``held_all``); the narrated clips' ranks are reused when the split has no such window."""
        held = self.held_all
        if held is None:
            self.notes.append(f"{VISUAL_ONLY_ALL_STEPS}: skipped: the corpus has no per-clip 'narrated' "
                              "flags (exported before whole-video coverage: ingest and export again)")
            return {}
        steps = [q for q in held.queries if q.narrated is False]
        queries = [q for q in steps if q.target is not None]
        lost = f"; {len(steps) - len(queries)} overlap no clip and are left out" if len(queries) < len(steps) else ""
        if not queries:
            self.notes.append(f"{VISUAL_ONLY_ALL_STEPS}: skipped: no unnarrated step overlaps a clip")
            return {}
        if held is self.held:
            self.notes.append(f"{VISUAL_ONLY_ALL_STEPS}: narration covers every stretch of the split's "
                              f"videos (no unnarrated window): the {VISUAL_ONLY} queries{lost}")
            return {VISUAL_ONLY_ALL_STEPS: ranked(ranks, visual, videos, searched)}
        all_ranks, all_searched = self._retrieval_ranks(held, queries)
        self.notes.append(f"{VISUAL_ONLY_ALL_STEPS}: {len(queries)} of the {len(steps)} unnarrated steps "
                          f"against all {len(held.clips)} clips ({len(held.clips) - len(self.held.clips)} "
                          f"of them unnarrated windows){lost}")
        return {VISUAL_ONLY_ALL_STEPS: ranked(all_ranks, list(range(len(queries))),
                                              np.array([q.video for q in queries]), all_searched)}

    def _retrieval_ranks(self, split: SplitClips, queries) -> tuple[dict, int | None]:
        """Every system's (Q,) rank of each query's target among all clips of ``split`` (per
        system {suffix: ranks}), and the searched clip count for the random row (None: no row)."""
        texts, targets = [q.description for q in queries], [q.target for q in queries]
        clips = list(range(len(split.clips)))
        ranks: dict[str, dict[str, np.ndarray]] = {}
        grids: dict[str, np.ndarray] = {}  # baseline grids already gathered (MiniLM for the hybrid)
        bm25 = score_grid(self.baseline("bm25", split), texts, clips) if "bm25" in self.config.baselines \
            else None
        for system in MODEL_SYSTEMS:
            s = self.scorer(system, split)
            started = time.perf_counter()
            log.info("retrieval: %s: %d x %d pairs through the matching head", system, len(texts),
                     len(clips))
            match = score_grid(s.match, texts, clips)
            self.notes.append(f"retrieval: {system} matching head scored {len(texts)} x "
                              f"{len(clips)} pairs of split {split.name!r} in "
                              f"{time.perf_counter() - started:.1f} s")
            embedding = score_grid(s.cosine, texts, clips)
            rerank = rerank_grid(embedding, s.match, texts, self.config.rerank_k)
            ranks[system] = {"": retrieval_outcomes(match, targets),
                             "_embedding": retrieval_outcomes(embedding, targets),
                             "_rerank": retrieval_outcomes(rerank, targets)}
            if system != "actbert":
                continue
            # what search serves: the index alone (reranked when the rerank policy says so), and
            # fused with the narration (a shortlist is the served vector order's top N)
            served = self._served_vector(embedding, rerank, s, texts, ranks[system])
            ranks["actbert_vector"] = {"": retrieval_outcomes(served, targets)}
            if bm25 is not None:
                narrations = [split.clips[c].narration for c in clips]
                cover = coverage_grid(texts, narrations)
                def meaning() -> np.ndarray:  # the MiniLM grid, gathered once for the split
                    if "minilm" not in grids:
                        grids["minilm"] = score_grid(self.baseline("minilm", split), texts, clips)
                    return self.semantic_grid(split, clips, grids["minilm"])
                # chosen once, on the split's narrated queries; the all-steps queries reuse it
                policy = self.fusion or self._fusion(served, bm25, cover, meaning, targets, queries)
                semantic = meaning() if policy.semantic else None
                ranks["actbert_hybrid"] = {"": retrieval_outcomes(
                    hybrid_grid(served, bm25, cover, policy, semantic), targets)}
                if policy != PLAIN_RRF:  # what plain reciprocal rank fusion would give
                    ranks["actbert_hybrid_rrf"] = {"": retrieval_outcomes(
                        hybrid_grid(served, bm25, cover, PLAIN_RRF), targets)}
                if policy.alpha or policy.semantic:  # the same fusion without the video: the
                    # narration signals alone, so the table shows what the embeddings add
                    ranks["hybrid_narration_only"] = {"": retrieval_outcomes(
                        hybrid_grid(np.zeros_like(embedding), bm25, cover,
                                    replace(policy, shortlist=0), semantic), targets)}
        if self.dual_encoder:
            ranks["dual_encoder"] = {"": retrieval_outcomes(
                score_grid(self.video_side("dual_encoder", split).cosine, texts, clips), targets)}
        for system, _, s in self.finetuned_scorers("retrieval", split):  # TVJE+FT: the embeddings
            ranks[system] = {"": retrieval_outcomes(score_grid(s.cosine, texts, clips), targets)}
        for name in self.config.baselines:
            if name != "random":
                grid = bm25 if name == "bm25" else grids[name] if name in grids else \
                    score_grid(self.baseline(name, split), texts, clips)
                ranks[name] = {"": retrieval_outcomes(grid, targets)}
        return ranks, (len(clips) if "random" in self.config.baselines else None)

    def _served_vector(self, embedding: np.ndarray, rerank: np.ndarray, s: ModelScorer,
                       texts: list[str], outcomes: dict[str, np.ndarray]) -> np.ndarray:
        """The vector order search serves (``rerank_policy.decide``): on val, the matching-head
        rerank of the top ``rerank_k`` when its R@1 is above the embeddings' on these queries (the
        rule the val run records); on another split, what the model's recorded policy says.
        Decided once, on the first queries (the split's narrated steps)."""
        if self.served_rerank is None:
            if self.config.split == "val":
                r1 = {suffix: 100.0 * float((outcomes[suffix] < 1).mean()) for suffix in ("_rerank", "_embedding")}
                self.served_rerank = self.config.rerank_k if rerank_helps(r1["_rerank"], r1["_embedding"]) else 0
            else:
                self.served_rerank = decide("auto", self.config.checkpoint).rerank
            if self.served_rerank:
                self.notes.append(f"actbert_vector: served as the matching-head rerank of the "
                                  f"embeddings' top {self.served_rerank} (the rerank policy)")
        if not self.served_rerank:
            return embedding
        if self.served_rerank == self.config.rerank_k:
            return rerank
        return rerank_grid(embedding, s.match, texts, self.served_rerank)

    @staticmethod
    def semantic_grid(split: SplitClips, clips: list[int], minilm: np.ndarray) -> np.ndarray:
        """(Q, C) MiniLM cosines of the queries and the clips' narrations (``minilm``, the MiniLM
        baseline's grid), 0 for a clip without narration: the semantic narration signal of the
        hybrid (``fusion_policy``)."""
        narrated = np.array([bool(split.clips[c].narration.strip()) for c in clips])
        return minilm * narrated[None, :]

    def _fusion(self, vector: np.ndarray, bm25: np.ndarray, cover: np.ndarray,
                meaning, targets: list[int], queries: list) -> FusionPolicy:
        """The hybrid's fusion: on val, chosen here (``fusion_policy.choose``, recorded beside the
        model by ``evaluate``); on another split, the one the model recorded on val. ``vector``:
        the served vector order (``_served_vector``: a shortlist is its top N); ``meaning()`` gives
        the MiniLM cosine grid (computed only when needed)."""
        if self.config.split != "val":  # kept, so the all-steps queries reuse it (one note)
            self.fusion = fusion_for(self.config.checkpoint)
            self.notes.append(f"actbert_hybrid: {self.fusion.describe()}")
            if self.fusion.split is None and read_fusion(self.config.checkpoint) is not None:
                log.warning("actbert_hybrid: %s/%s was recorded for other weights: the hybrid row is "
                            "plain reciprocal rank fusion, not what search serves with this model "
                            "(run `actbert evaluate --split val` on these weights first)",
                            self.config.checkpoint, FUSION_NAME)
            return self.fusion
        visual = [i for i, q in enumerate(queries) if q.narrated is False]
        semantic = meaning()

        def recall(grid: np.ndarray, rows: list[int], n: int) -> float:
            ranks = retrieval_outcomes(grid, targets)[rows] if rows else np.zeros(0)
            return 100.0 * float((ranks < n).mean()) if len(ranks) else 0.0

        everyone = list(range(len(targets)))
        r5_vector = recall(vector, visual, 5)

        # ranked once: every setting fuses the same rankings
        ranked_vector, ranked_bm25, ranked_semantic = Ranked.of(vector), Ranked.of(bm25), Ranked.of(semantic)

        def measure(alpha: float, gamma: float, shortlist: int, weight: float) -> tuple[float, float]:
            grid = hybrid_grid(ranked_vector, ranked_bm25, cover,
                               FusionPolicy(alpha=alpha, gamma=gamma, shortlist=shortlist, semantic=weight),
                               ranked_semantic)
            return recall(grid, everyone, 1), recall(grid, visual, 5)

        chosen, tried = choose(measure, r5_vector if visual else 0.0)
        r1, r5 = measure(chosen["alpha"], chosen["gamma"], chosen["shortlist"], chosen["semantic"])
        self.fusion = make_policy(chosen["alpha"], chosen["gamma"], self.config.split, len(targets), r1, r5,
                                  r5_vector, tried, self.config.corpus, self.config.checkpoint,
                                  chosen["shortlist"], chosen["semantic"])
        self.notes.append(f"actbert_hybrid: {self.fusion.describe()}; {len(tried)} settings tried on "
                          f"{len(targets)} val queries ({len(visual)} visual-only)")
        return self.fusion

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
        if self.dual_encoder:
            outcomes["dual_encoder"] = {"recall": step_outcomes(
                self.held, self.video_side("dual_encoder").cosine)}
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
            for system in self.probe_systems:
                tr, te = self.video_side(system, self.train), self.video_side(system)
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
                                         {s: over(o, accuracy_from_counts) for s, o in out.items()},
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
            out["raw_features"] = {"accuracy_linear": self._raw_pair_probe(qs, pairs)}
        if self.dual_encoder:
            out["dual_encoder"] = {"accuracy": choice_outcomes(qs, self.video_side("dual_encoder").cosine)}
        for system, _, s in self.finetuned_scorers("videoqa"):  # the fine-tuned matching score
            out[system] = {"accuracy": choice_outcomes(qs, s.match)}
        for name in self.config.baselines:
            out[name] = {"accuracy": np.array([1 / len(q.candidates) for q in qs])
                         if name == "random" else choice_outcomes(qs, self.baseline(name))}
        return {"videoqa": Outcomes(len(qs), "questions",
                                    {s: over(o, percent) for s, o in out.items()},
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
        if self.dual_encoder:
            cosine = self.video_side("dual_encoder").cosine
            out["dual_encoder"] = {"auc": per_clip(cosine, False), "auc_same_task": per_clip(cosine, True)}
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
        figures = {s: over(o, auc) for s, o in out.items()}
        if "random" in self.config.baselines:
            figures["random"] = constant({"auc": chance.AUC, "auc_same_task": chance.AUC})
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
        if self.train is not None and verb_clips(self.train, verbs):
            for system in self.probe_systems:
                out.setdefault(system, {})["top1_probe"] = self._verb_probe(system, verbs, clips, truth)
            self.notes.append("masked_action: top1_probe is a linear probe on each system's "
                              "video-only clip features (no text), fitted on the train clips' "
                              "ground-truth step verbs (labels pretraining never sees): what the "
                              "features carry, not what the action head reads; dual_encoder has no "
                              "action head, so only its probe row")
        else:
            self._need_train("masked_action verb probe", steps=True)
        return {"masked_action": Outcomes(len(truth), "clips",
                                          {s: over(o, percent) for s, o in out.items()},
                                          self._videos_of(clips))}

    def _verb_probe(self, system: str, verbs: list[str], clips: list[int],
                    truth: np.ndarray) -> np.ndarray:
        """(N,) bool: a video-only verb probe's closed-set top-1 on the held-out labelled clips."""
        train = verb_clips(self.train, verbs)
        train_clips = [c for c, _ in train]
        groups = [self.train.clips[c].video for c in train_clips]
        correct, _ = closed_set_correct(
            self.video_side(system, self.train).visual_features(train_clips),
            np.array([v for _, v in train]), groups, self.video_side(system).visual_features(clips),
            truth, len(verbs))
        return correct

    def _raw_pair_probe(self, qs, pairs) -> np.ndarray:
        """Video QA's linear probe on raw pair features (``raw_features.BilinearPairs``: MiniLM
        text embedding x raw clip feature), trained on the same train pairs as ActBERT's."""
        texts, clips, labels = zip(*pairs)
        encoder = self.baseline("minilm").encoder
        tr, te = self.video_side("raw_features", self.train), self.video_side("raw_features")
        text_x, video_x = encoder.encode(list(texts)), tr.visual_features(clips)
        pair = BilinearPairs(text_x, video_x)
        probe = LinearProbe.cross_validated(pair(text_x, video_x), np.array(labels), 2, groups=clips)

        def margin(t, c):  # logit(match) - logit(mismatch)
            return np.diff(probe.logits(pair(encoder.encode(list(t)), te.visual_features(c))), axis=1)[:, 0]
        return choice_outcomes(qs, margin)

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
        return captioning_outcomes(self)

    def attribution(self) -> dict:
        """The full model's attribution and head faithfulness over a sample of the retrieval
        pairs (``attribution_summary``; a JSON entry, not ``Outcomes``)."""
        from .attribution_summary import note, summarize

        summary = summarize(self.models["actbert"][0], self.tokenizer, self.held,
                            self.config.attribution_pairs, self.config.seed,
                            resamples=self.config.resamples)
        self.notes.append(note(summary))
        return {"attribution": summary.to_json()}
