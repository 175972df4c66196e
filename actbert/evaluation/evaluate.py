"""``python -m actbert evaluate``: the paper's five downstream evaluations on a held-out split, with
the baselines a user would try instead and the paper's ablation without region cues.

``evaluate --library LIB --json`` prints ``{task: {system: {metric: value}}}`` plus ``ci``,
``differences``, ``timings_s`` (seconds per task), ``notes`` (what was substituted, skipped or
worth knowing) and ``info``: the JSON of the ``EvaluationResult`` that ``evaluate`` returns
(``result``). Tasks and their metrics (data and protocols: ``tasks``; the run of
each task: ``runners``):

- ``retrieval``: ``r1``, ``r5``, ``r10`` (percent), ``median_rank``: each ground-truth step
  description against every clip of the split. ActBERT's plain figures score every pair with the
  matching head (the paper's way); ``*_embedding`` rank by cosine of the text-only and video-only
  embeddings; ``*_rerank`` take the embedding top ``--rerank-k`` and reorder them by the matching head.
- ``retrieval_visual_only``: the same, over the queries whose step has no aligned narration line
  (the corpus steps' ``narrated`` flag, from SynthKitchen's ground truth), still against every
  clip: narration search cannot find them. Skipped, with a note, when no step carries the flag.
  Every task searches the narrated clips only (the meaning these keys had before whole-video
  coverage), so a step that only an unnarrated window overlaps has no target here.
- ``retrieval_visual_only_all_steps``: every unnarrated step, searched among every clip of the
  split including the windows that whole-video coverage adds over stretches nobody talks over
  (the corpus clips flagged ``narrated: false``): what the library's visual search can reach.
  Skipped, with a note, on a corpus exported before whole-video coverage (no per-clip flags).
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

Fine-tuned rows (``--finetuned DIR``, written by ``actbert finetune``, ``finetuned``): the
system ``actbert_finetuned`` in ``retrieval`` (its embeddings), ``segmentation`` (its classifier)
and ``videoqa`` (its matching score). ``protocols[task][system][metric]`` names the protocol of
every figure: ``zero_shot``, ``probe`` or ``finetuned`` (``protocols``). ``--dataset`` evaluates a
paper benchmark's files (``actbert.benchmarks``) and prints the paper's tables beside ours
(``actbert.reporting.paper_tables``; ``paper`` in the JSON).

- ``matching``: ``auc`` (ROC-AUC, percent; chance 50) of the matching head on held-out pairs: each
  clip that overlaps a step with its own step description vs the description of a step whose
  verb or objects differ; ``auc_same_task`` draws that step from the clip's own task;
  ``auc_embedding`` scores the pairs by cosine (``heads``).
- ``attribution`` (only when named in ``--tasks``): not a table of systems, the entry
  ``attribution_summary.AttributionSummary`` writes: over a seeded sample of the retrieval pairs
  (``--attribution-pairs``, default 100), the mean faithfulness of every layer x head (and of the
  rollout) to the occlusion effects on the match probability, and the mean drop of the match
  probability and of the cosine when all words, all regions or the action are removed, with
  which stream the match depends on most. The report card and the Model page draw it.
- ``masked_action``: ``top1_masked`` (percent) of the action head on held-out clips with the
  clip's action feature masked and its narration as text (the paper's masked action objective),
  ``top1_video_only`` with the feature visible and no text, both over the label space of the
  held-out clips' step verbs; system ``majority`` always answers the held-out majority verb.
  ``top1_probe``: a linear probe on each system's video-only clip features fitted on the train
  clips' ground-truth step verbs (what the features carry, beside what the head reads).

Beside each probe (segmentation, video QA's ``accuracy_linear``, masked action's video-only verb
probe ``top1_probe``) the system ``raw_features`` runs the same probe on the features ActBERT is
fed (the clip's action feature ++ its mean region feature; video QA: their interaction with the
text's MiniLM embedding, ``raw_features``): a probe figure is ActBERT's only by what it adds.
``--dual-encoder DIR`` (``actbert train-dual``, ``dual_encoder``) adds the system ``dual_encoder``,
a contrastive text/video encoder on the same features and train split without the tangled
transformer: retrieval (and visual-only), step localisation, video QA and matching by cosine, the
segmentation and verb probes on its video vector; no captioning or action-head rows.

Systems: ``actbert`` (the checkpoint), ``actbert_no_regions`` (the checkpoint pretrained with
``use_regions=False``, fed no regions; without one, the full model with its region inputs removed,
said in ``notes``), ``bm25`` and ``minilm`` (the clips' NARRATIONS searched with BM25 and with MiniLM
sentence embeddings; not for segmentation or captioning, which give no text), ``random`` (chance's
EXPECTATION, not one draw: analytic where a closed form exists, captioning the mean of 100 seeded
draws, ``chance``; protocol ``chance``) and ``majority`` (segmentation, masked action: always the
majority label).
Retrieval adds what search serves: ``actbert_vector`` (the index's embeddings alone, the same
ranks as ``actbert``'s ``*_embedding`` metrics) and ``actbert_hybrid`` (those embeddings fused with
the narration's BM25 and, when the fusion policy chosen on val says so, MiniLM rankings by reciprocal
rank, ``fusion.hybrid_grid``, as ``indexer search`` does in its hybrid mode), with
``hybrid_narration_only``, the same fusion without the embeddings, beside it.
Each clip is one model input (one action slot and its regions). Heads are trained only on the train
split; a train video sharing a task instance with the evaluated split is an error. Everything is
deterministic from ``--seed``.

Uncertainty (``intervals``): ``ci[task][system][metric] = [low, high]``, a 95% percentile bootstrap
(``--resamples``, default 1000) that resamples WHOLE VIDEOS for every task: each unit (a retrieval
query, a video QA question, a matching pair's clip, a masked-action clip, a caption; step
localisation and segmentation score whole videos) belongs to a held-out video, a resample draws
the videos with replacement and takes all their units, and each metric is recomputed with the
same function as the point figure. Units of one video share its recipe, narrator and objects, so
resampling them one by one would give intervals that are too narrow. Captioning re-aggregates
its captions (``CaptionUnits``: BLEU exactly, ROUGE-L and CIDEr-D per caption) and its METEOR has
none (corpus-level). ``info["bootstrap"]["resampled"][task]`` says how many videos and units.
``ci[task]["diff:actbert-actbert_no_regions"]``, ``["diff:actbert-bm25"]`` and, for retrieval,
``["diff:actbert_vector-bm25"]``, ``["diff:actbert_hybrid-bm25"]`` and
``["diff:actbert_hybrid-actbert_vector"]``, ``["diff:actbert_hybrid-minilm"]``,
``["diff:actbert_hybrid-hybrid_narration_only"]`` (the hybrid's fusion without the video: what the
embeddings add to the narration signals), ``["diff:actbert-dual_encoder"]``,
``["diff:actbert_vector-dual_encoder"]`` and ``["diff:actbert-raw_features"]`` are paired
intervals of the differences (one draw for both systems), for every metric both systems have;
``differences[task]["actbert-bm25"][metric]`` are the point differences.

With ``--split val`` the run also records, beside the model, whether the matching-head rerank
improves R@1 over the embeddings (``rerank_policy``): search's ``--rerank auto`` follows it.
``--plot DIR`` writes each task's table as a PNG bar chart with the intervals
(``actbert.reporting.plot``); ``--report DIR`` the report card, one HTML page with the same charts
(Plotly), the paper's numbers, the training curves and the commands (``actbert.reporting.report``).
Every run keeps its result beside the model as
``CHECKPOINT/evaluation_<split>.json`` (``record``), which the explorer's Model page shows.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..corpus import Corpus, read_corpus
from ..fusion_policy import FusionPolicy, write_fusion
from ..rerank_policy import make_policy, write_policy
from ..tokenizer import ActBertTokenizer
from . import chance
from .config import RESULT_TASKS, VISUAL_ONLY_ALL_STEPS, EvalConfig
from .dual_encoder import DualEncoder
from .finetuned import load_finetuned
from .intervals import LEVEL, Bootstrap, bootstrap
from .protocols import protocols
from .result import DIFF, EvaluationResult
from .runners import Evaluation, Outcomes
from .scorer import load_checkpoint
from .tasks import SplitClips, check_disjoint, load_split

log = logging.getLogger(__name__)

DIFFERENCES = (("actbert", "actbert_no_regions"), ("actbert", "bm25"), ("actbert_vector", "bm25"),
               ("actbert_hybrid", "bm25"), ("actbert_hybrid", "actbert_vector"),
               ("actbert_hybrid", "minilm"), ("actbert_hybrid", "hybrid_narration_only"),
               ("actbert", "dual_encoder"), ("actbert_vector", "dual_encoder"),
               ("actbert", "raw_features"))
# The bootstrap's random stream per result task: tasks added later go last, so the intervals of
# the earlier ones stay what they were.
BOOTSTRAP_STREAMS = (*(t for t in RESULT_TASKS if t != VISUAL_ONLY_ALL_STEPS), VISUAL_ONLY_ALL_STEPS)


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


def _load_models(config: EvalConfig, held: SplitClips) -> tuple[dict, list[str]]:
    """{system: (model, uses regions)} of ``actbert`` and ``actbert_no_regions``, and the notes on
    them (a model pretrained on the evaluated split; no ablation checkpoint given)."""
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
    return {"actbert": (model, True), "actbert_no_regions": (ablation, False)}, notes


def _add_finetuned(config: EvalConfig, run: Evaluation, held: SplitClips) -> None:
    """The ``--finetuned`` models, by the task each was fine-tuned for (a note for a task this
    run does not evaluate)."""
    for directory in config.finetuned:
        ft = load_finetuned(directory, held, config.device)
        run.finetuned.setdefault(ft.task, []).append(ft)
        if ft.task not in config.tasks:
            run.notes.append(f"{directory}: fine-tuned for {ft.task}, which this run does not evaluate")


def _run_tasks(config: EvalConfig, run: Evaluation, timings: dict) -> tuple[dict, dict, dict, dict]:
    """Every configured task, timed into ``timings``: the point figures, their intervals and paired
    differences, and the units each task's bootstrap resampled (all by result task)."""
    result: dict = {}
    intervals: dict = {}
    differences: dict = {}
    units: dict = {}
    bar = tqdm(config.tasks, desc="evaluate", unit="task", disable=not config.progress, dynamic_ncols=True)
    for task in bar:
        bar.set_postfix_str(task)
        t0 = time.perf_counter()
        for name, produced in getattr(run, task)().items():
            if not isinstance(produced, Outcomes):  # a task with nothing to score
                result[name] = _round(produced)
                continue
            boot = bootstrap(produced.figures, produced.units,
                             seed=[config.seed, 29, BOOTSTRAP_STREAMS.index(name)],
                             resamples=config.resamples, groups=produced.videos)
            result[name] = _round({s: {**p, **produced.fixed.get(s, {})} for s, p in boot.point.items()})
            intervals[name], differences[name] = _intervals(boot)
            videos = len(np.unique(produced.videos))
            units[name] = f"{videos} videos" + ("" if produced.unit == "videos"
                                                else f" ({produced.units} {produced.unit})")
            if name == "retrieval" and config.split == "val":
                run.notes.append(_record_policy(config, boot, produced.units))
                if run.fusion is not None:
                    run.notes.append(_record_fusion(config, run.fusion))
        timings[task] = round(time.perf_counter() - t0, 2)
        log.info("%s done in %.1f s", task, timings[task])
    return result, intervals, differences, units


def _info(config: EvalConfig, held: SplitClips, train: SplitClips | None, run: Evaluation,
          units: dict) -> dict:
    """The result's ``info``: what was evaluated, with what, and how the intervals were drawn."""
    return {
        "split": config.split, "videos": len(held.corpus.videos), "clips": len(held.clips),
        "unnarrated_clips": len(run.held_all.clips) - len(held.clips) if run.held_all else None,
        "steps": len(held.queries), "train_videos": len(train.corpus.videos) if train else 0,
        "train_video_ids": sorted(v.video_id for v in train.corpus.videos) if train else [],
        "checkpoint": config.checkpoint, "ablation_checkpoint": config.ablation_checkpoint,
        "seed": config.seed, "rerank_k": config.rerank_k, "device": config.device,
        "dataset": config.dataset, "dual_encoder": config.dual_encoder, "finetuned": {ft.system + ":" + t: ft.directory
                                                 for t, fts in run.finetuned.items() for ft in fts},
        "bootstrap": {"resamples": config.resamples, "level": LEVEL, "method": "percentile",
                      "resampled": units},
        **({"fusion": asdict(run.fusion)} if run.fusion is not None else {})}


def evaluate(config: EvalConfig, corpus: Corpus | None = None) -> EvaluationResult:
    """Run the configured tasks; returns the result (its JSON: the module docstring).
    ``corpus``: the corpus already read (a benchmark's, ``benchmarks.corpus``); default: read
    ``config.corpus``."""
    started = time.perf_counter()
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    corpus = corpus or read_corpus(config.corpus)
    held = load_split(corpus, config.split)
    train_part = corpus.split(config.train_split)
    check_disjoint(train_part, held.corpus)
    needs_train = {"segmentation", "videoqa", "captioning", "masked_action"} & set(config.tasks)
    train = (load_split(corpus, config.train_split)
             if train_part.videos and needs_train else None)
    models, notes = _load_models(config, held)
    run = Evaluation(config, held, train, models, ActBertTokenizer(max_length=config.max_text_tokens),
                     notes)
    if "retrieval" in config.tasks and any(v.narrated for v in held.corpus.videos):  # clip flags known
        run.held_all = (load_split(corpus, config.split, unnarrated=True)
                        if any(not all(v.narrated) for v in held.corpus.videos) else held)
    _add_finetuned(config, run, held)
    if config.dual_encoder:
        run.dual_encoder = DualEncoder.from_pretrained(config.dual_encoder, config.device)
    timings = {"load": round(time.perf_counter() - started, 2)}
    result, intervals, differences, units = _run_tasks(config, run, timings)
    if "random" in config.baselines:
        run.notes.append(chance.NOTE)
    tables = {t: result[t] for t in RESULT_TASKS if t in result}
    return EvaluationResult(
        tables, protocols=protocols(tables),
        ci={t: intervals[t] for t in RESULT_TASKS if t in intervals},
        differences={t: differences[t] for t in RESULT_TASKS if t in differences},
        timings_s=timings, notes=run.notes, info=_info(config, held, train, run, units),
        attribution=result.get("attribution"))


def _intervals(boot: Bootstrap) -> tuple[dict, dict]:
    """ci[system][metric] and ci["diff:a-b"][metric] ([low, high]); differences["a-b"][metric]."""
    ci, point = _round(boot.intervals()), {}
    for a, b in DIFFERENCES:
        if a in boot.point and b in boot.point:
            diff, diff_ci = boot.difference(a, b)
            point[f"{a}-{b}"], ci[f"{DIFF}{a}-{b}"] = _round(diff), _round(diff_ci)
    return ci, point


def _record_fusion(config: EvalConfig, policy: FusionPolicy) -> str:
    """Write the checkpoint's fusion policy chosen on val retrieval; returns a note."""
    try:
        path = write_fusion(config.checkpoint, policy)
    except OSError as exc:
        return f"fusion policy not recorded: {exc}"
    return f"fusion policy: {policy.describe()}; recorded in {path}"


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
