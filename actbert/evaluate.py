"""``python -m actbert evaluate``: the paper's five downstream evaluations on a held-out split, with
the baselines a user would try instead and the paper's ablation without region cues.

``evaluate --library LIB --json`` prints ``{task: {system: {metric: value}}}`` plus ``timings_s``
(seconds per task), ``notes`` (what was substituted, skipped or worth knowing) and ``info``.
Tasks and their metrics (data and protocols: ``evaluate_tasks``):

- ``retrieval``: ``r1``, ``r5``, ``r10`` (percent), ``median_rank``: each ground-truth step
  description against every clip of the split. ActBERT's plain figures score every pair with the
  matching head (the paper's way); ``*_embedding`` rank by cosine of the text-only and video-only
  embeddings; ``*_rerank`` take the embedding top ``--rerank-k`` and reorder them by the matching head.
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

Systems: ``actbert`` (the checkpoint), ``actbert_no_regions`` (the checkpoint pretrained with
``use_regions=False``, fed no regions; without one, the full model with its region inputs removed,
said in ``notes``), ``bm25`` and ``minilm`` (the clips' NARRATIONS searched with BM25 and with MiniLM
sentence embeddings; not for segmentation or captioning, which give no text), ``random``.
Each clip is one model input (one action slot and its regions). Heads are trained only on the train
split; a train video sharing a task instance with the evaluated split is an error. Everything is
deterministic from ``--seed``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .baselines import Bm25Scorer, MiniLMEncoder, MiniLMScorer, RandomScorer
from .captioner import Captioner, CaptionerConfig
from .captioning_metrics import caption_scores
from .corpus import read_corpus
from .evaluate_tasks import (ModelScorer, SplitClips, captioned_clips, check_disjoint,
                             load_checkpoint, load_split, multiple_choice, questions, rerank_grid,
                             retrieval_figures, retrieval_queries, score_grid,
                             segmentation_accuracy, segmentation_frames, segmentation_labels,
                             step_localization)
from .probe import LinearProbe
from .tokenizer import ActBertTokenizer

log = logging.getLogger(__name__)

TASKS = ("retrieval", "step_localization", "segmentation", "videoqa", "captioning")
SYSTEMS = ("actbert", "actbert_no_regions", "bm25", "minilm", "random")
MODEL_SYSTEMS = ("actbert", "actbert_no_regions")
METRICS = {"retrieval": ("r1", "r5", "r10", "median_rank"), "step_localization": ("recall",),
           "segmentation": ("frame_accuracy",), "videoqa": ("accuracy",),
           "captioning": ("bleu3", "bleu4", "meteor", "rouge_l", "cider")}


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
    max_regions: int = 36
    max_text_tokens: int = 64
    max_train_clips: int = 800      # train clips for the video QA probe and the captioner
    caption_epochs: int = 15
    meteor: bool = True
    device: str = "cpu"
    threads: int | None = None      # torch CPU threads (None: torch's default)

    def __post_init__(self) -> None:
        unknown = [t for t in self.tasks if t not in TASKS]
        if unknown or not self.tasks:
            raise ValueError(f"unknown tasks {unknown}; choose from {','.join(TASKS)}")
        if self.rerank_k < 1:
            raise ValueError(f"--rerank-k must be positive, got {self.rerank_k}")
        if self.split == self.train_split:
            raise ValueError(f"the evaluated split {self.split!r} is the training split")


def _suffixed(figures: dict, suffix: str) -> dict:
    return {f"{k}_{suffix}": v for k, v in figures.items()}


@dataclass
class Evaluation:
    """One run: the evaluated and training splits, the scorers of every system, notes."""

    config: EvalConfig
    held: SplitClips
    train: SplitClips | None
    models: dict[str, tuple[torch.nn.Module, bool]]  # system -> (model, use_regions)
    tokenizer: ActBertTokenizer
    notes: list[str] = field(default_factory=list)
    _scorers: dict = field(default_factory=dict)  # scorers and the train-clip sample, built once

    def scorer(self, system: str, split: SplitClips | None = None) -> ModelScorer:
        split = split or self.held
        key = (system, split.name)
        if key not in self._scorers:
            model, use_regions = self.models[system]
            self._scorers[key] = ModelScorer(model, self.tokenizer, split, use_regions,
                                             self.config.batch_size, self.config.device)
        return self._scorers[key]

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
        out = {}
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
            out[system] = {**retrieval_figures(match, targets),
                           **_suffixed(retrieval_figures(embedding, targets), "embedding"),
                           **_suffixed(retrieval_figures(rerank, targets), "rerank")}
        for name in ("bm25", "minilm", "random"):
            out[name] = retrieval_figures(score_grid(self.baseline(name), texts, clips), targets)
        return out

    def step_localization(self) -> dict:
        out = {}
        for system in MODEL_SYSTEMS:
            s = self.scorer(system)
            out[system] = {"recall": step_localization(self.held, s.match),
                           "recall_embedding": step_localization(self.held, s.cosine)}
        for name in ("bm25", "minilm", "random"):
            out[name] = {"recall": step_localization(self.held, self.baseline(name))}
        return out

    def segmentation(self) -> dict:
        labels = segmentation_labels(self.held.corpus, *([self.train.corpus] if self.train else []))
        test = segmentation_frames(self.held, labels)
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
                out[system] = {"frame_accuracy": segmentation_accuracy(
                    lambda c, te=te, probe=probe: probe.predict(te.visual_features(c)), test)}
            seen = np.flatnonzero(counts)
        else:
            seen = np.arange(len(labels))
        rng = np.random.default_rng([self.config.seed, 13])
        out["random"] = {"frame_accuracy": segmentation_accuracy(
            lambda c: seen[rng.integers(len(seen), size=len(c))], test)}
        return out

    def videoqa(self) -> dict:
        qs = questions(self.held, self.config.seed)
        out = {}
        for system in MODEL_SYSTEMS:
            s = self.scorer(system)
            out[system] = {"accuracy": multiple_choice(qs, s.match),
                           "accuracy_embedding": multiple_choice(qs, s.cosine)}
        if self._need_train("videoqa linear probe", steps=True):
            pairs = self._train_pairs()
            for system in MODEL_SYSTEMS:
                tr, te = self.scorer(system, self.train), self.scorer(system)
                texts, clips, labels = zip(*pairs)
                probe = LinearProbe.cross_validated(tr.fused(texts, clips), np.array(labels), 2,
                                                    groups=clips)

                def margin(t, c, te=te, probe=probe):  # logit(match) - logit(mismatch)
                    return np.diff(probe.logits(te.fused(t, c)), axis=1)[:, 0]

                out[system]["accuracy_linear"] = multiple_choice(qs, margin)
        for name in ("bm25", "minilm", "random"):
            out[name] = {"accuracy": multiple_choice(qs, self.baseline(name))}
        return out

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
            for system in MODEL_SYSTEMS:
                tr, te = self.scorer(system, self.train), self.scorer(system)
                captioner = Captioner(self.tokenizer, CaptionerConfig(
                    epochs=self.config.caption_epochs, seed=self.config.seed))
                captioner.fit(tr.caption_memory([c for c, _ in train]), captions)
                hypotheses[system] = dict(zip(clips, captioner.generate(te.caption_memory(clips))))
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
                              f"{scores.tokenizer}; {note}")
        return out


def _round(value):
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
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


def evaluate(config: EvalConfig) -> dict:
    """Run the configured tasks; returns the result dictionary (see the module docstring)."""
    started = time.perf_counter()
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    corpus = read_corpus(config.corpus)
    held = load_split(corpus, config.split, config.max_regions)
    train_part = corpus.split(config.train_split)
    check_disjoint(train_part, held.corpus)
    needs_train = {"segmentation", "videoqa", "captioning"} & set(config.tasks)
    train = (load_split(corpus, config.train_split, config.max_regions)
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
    result: dict = {}
    timings = {"load": round(time.perf_counter() - started, 2)}
    for task in config.tasks:
        t0 = time.perf_counter()
        result[task] = _round(getattr(run, task)())
        timings[task] = round(time.perf_counter() - t0, 2)
        log.info("%s done in %.1f s", task, timings[task])
    result["timings_s"] = timings
    result["notes"] = run.notes
    result["info"] = {
        "split": config.split, "videos": len(held.corpus.videos), "clips": len(held.clips),
        "steps": len(held.queries), "train_videos": len(train.corpus.videos) if train else 0,
        "train_video_ids": sorted(v.video_id for v in train.corpus.videos) if train else [],
        "checkpoint": config.checkpoint, "ablation_checkpoint": config.ablation_checkpoint,
        "seed": config.seed, "rerank_k": config.rerank_k, "device": config.device}
    return result


# ---- command line ------------------------------------------------------------------------------

def _manifest_checkpoint(library: Path, manifest: dict, key: str) -> str | None:
    entry = manifest.get(key)
    path = entry.get("checkpoint") if isinstance(entry, dict) else entry
    if not path:
        return None
    path = Path(path)
    return str(path if path.is_absolute() else library / path)


def config_from_args(args: argparse.Namespace) -> EvalConfig:
    """Resolve the corpus and checkpoints (flags first, then the library's manifest)."""
    manifest: dict = {}
    if args.library:
        library = Path(args.library)
        corpus = library / "corpus.jsonl"
        if (library / "library.json").is_file():
            manifest = json.loads((library / "library.json").read_text())
    else:
        library, corpus = Path(args.corpus).parent, Path(args.corpus)
    checkpoint = args.checkpoint or _manifest_checkpoint(library, manifest, "model")
    if not checkpoint:
        raise ValueError(f"no --checkpoint given and {library / 'library.json'} names no model "
                         "(\"model\": {\"checkpoint\": ...})")
    ablation = args.ablation_checkpoint or _manifest_checkpoint(library, manifest, "model_no_regions")
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    return EvalConfig(
        corpus=str(corpus), checkpoint=str(checkpoint), ablation_checkpoint=ablation,
        split=args.split, tasks=tuple(t.strip() for t in args.tasks.split(",") if t.strip()),
        rerank_k=args.rerank_k, seed=args.seed,
        batch_size=args.batch_size or (64 if device == "cpu" else 512),
        max_train_clips=args.max_train_clips, caption_epochs=args.caption_epochs,
        meteor=not args.no_meteor, device=device, threads=args.threads)


def _table(result: dict) -> str:
    lines = []
    for task in TASKS:
        if task not in result:
            continue
        lines.append(f"{task} ({result['timings_s'][task]:.1f} s)")
        for system, figures in result[task].items():
            shown = ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                              for k, v in figures.items())
            lines.append(f"  {system:<20} {shown}")
    lines += [f"note: {n}" for n in result["notes"]]
    return "\n".join(lines)


def run_evaluate(args: argparse.Namespace) -> int:
    """``python -m actbert evaluate``: print the figures (a table, or one JSON object)."""
    result = evaluate(config_from_args(args))
    print(json.dumps(result) if args.json else _table(result))
    sys.stdout.flush()
    return 0


def add_cli(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="the paper's five evaluations on the held-out split, "
                                               "with baselines and the no-regions ablation")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--library", help="library folder (reads LIBRARY/corpus.jsonl and the model "
                                          "named in LIBRARY/library.json)")
    source.add_argument("--corpus", help="a corpus.jsonl file")
    p.add_argument("--checkpoint", help="the model (a save_pretrained folder); default: the library's")
    p.add_argument("--ablation-checkpoint", help="the model pretrained with --no-regions; default: "
                                                 "library.json 'model_no_regions'")
    p.add_argument("--split", default="test", choices=["test", "val"])
    p.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated subset of {','.join(TASKS)}")
    p.add_argument("--rerank-k", type=int, default=10, help="embedding top K reranked by matching")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, help="clips per forward (default: 64 on CPU, 512 on "
                                                  "a GPU)")
    p.add_argument("--max-train-clips", type=int, default=800,
                   help="train clips for the video QA probe and the captioner")
    p.add_argument("--caption-epochs", type=int, default=15)
    p.add_argument("--no-meteor", action="store_true", help="skip METEOR (Java, ~10 s per system)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--threads", type=int, help="torch CPU threads (1 is fastest on a busy machine)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=run_evaluate)
