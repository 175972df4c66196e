"""Pretraining: the four paper objectives plus the alignment loss, on one CPU or many GPUs.

``python -m actbert train --library LIB --preset mini --out DIR`` (or under ``torchrun`` for
DistributedDataParallel: NCCL on GPUs, gloo on CPUs). Adam with warmup and a linear or cosine
schedule, bf16/fp16 autocast (bf16 by default on GPUs and on CPUs with AMX-BF16 matrix units),
gradient accumulation, checkpoint and resume, a JSONL log (``OUT/train.jsonl``), its loss curves
(``OUT/loss_curve.png``) and a progress bar with every loss term.

Masking and negatives are drawn per sample from (seed, epoch, sample index), and every loss is
normalised by its global count across ranks, so a 2-rank run and a 1-rank run with the same global
batch compute the same losses.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

from ..atomic import atomic_write
from ..checkpoint import save_pretrained
from ..device import cpu_has_bf16_matrix_units
from ..corpus import ClipGroups, Corpus, Sample, read_corpus
from ..layers import BertLayer
from ..model import ActBertForPretraining, build_model
from ..tangled import TangledBlock
from ..tokenizer import ActBertTokenizer
from .batching import video_runs_order
from .collator import MATCH_ON, Collator
from .curves import plot_losses
from .objectives import PretrainingBatch, PretrainingObjective
from .step_list import corpus_step_texts
from .verbs import restrict_action_head, without_verbs

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    corpus: str
    out: str
    preset: str = "mini"
    init: str | None = None            # a save_pretrained dir to start from
    text_init: str | None = None       # an HF-format BERT dir for the text stream (paper 4.1);
                                       # None: the preset's default (mini: the packaged MiniLM)
    split: str | None = "train"
    clips_per_sample: int = 10
    hard_negatives: float = 0.5        # share of matching negatives drawn from the same task
    video_negatives: float = 0.0       # share drawn from the same video (other steps of it)
    mined_negatives: bool = False      # matching negatives drawn from the batch by the alignment's
                                       # similarity (ALBEF) instead of the collator's
    groups_per_video: int = 1          # runs of N samples of one video in the epoch's order
                                       # (batching.py; 1: a plain shuffle)
    max_regions: int | None = None     # region limit of a fresh model (its config's, default 36)
    match_on: str = "clean"            # clean: matching on unmasked pairs | masked: the paper's
    match_input: str | None = None     # a fresh model's matching input: cls (paper) | fused (Paddle)
    match_weight: float = 1.0          # weight of the matching loss in the total
    match_alignment_weight: float | None = None  # the model's matching score: head margin + w x
                                       # the alignment cosine (ActBertConfig; None: keep the model's)
    freeze_text_layers: int = 0        # keep the text embeddings and the first N text layers fixed
    max_text_tokens: int = 64
    batch_size: int = 16               # global batch (all ranks, before accumulation)
    accumulate: int = 1
    steps: int = 1000
    max_seconds: float | None = None   # stop (and checkpoint) after this much training time
    lr: float = 1e-5                   # the paper's learning rate
    warmup_steps: int = 100
    schedule: str = "linear"           # linear | cosine | constant
    weight_decay: float = 0.0
    seed: int = 0
    precision: str = "auto"            # auto (bf16 on GPUs and AMX CPUs) | fp32 | bf16 | fp16 (GPU)
    checkpoint_every: int = 500
    keep_every: int = 0                # also keep the model every N steps in OUT/step-N (0: never)
    log_every: int = 10
    dropout: float | None = None       # override every dropout (0 for exact comparisons)
    use_alignment: bool = True
    use_regions: bool = True           # False: the paper's ablation without region cues
    action_video_weight: float = 0.0   # weight of the video-only action term (objectives.py)
    ignore_verbs: tuple[str, ...] = () # verbs that are not actions (verbs.py): no target, no class
    step_list_share: float = 0.0       # share of the rows whose narration matches a step of its
                                       # task's list that read that step's description (step_list.py)
    step_list_threshold: float = 0.4   # the MiniLM cosine a narration needs to match a step
    num_workers: int = 0
    progress: bool = True


def lr_factor(step: int, config: TrainConfig) -> float:
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    if config.schedule == "constant":
        return 1.0
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    if config.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return max(0.0, 1.0 - progress)


def training_verbs(corpus: Corpus) -> tuple[str, ...]:
    """A fresh model's verb classes: the corpus header's verbs (in its order) that the narrations
    of *this* corpus (the training split) use in at least ``min_verb_count`` clips, the header's
    own threshold (1 when it records none). The header is built from every split's narrations,
    so without this a class could exist only because held-out videos talk about it."""
    need = int(corpus.meta.get("min_verb_count", 1))
    clips = Counter(v for video in corpus.videos for clip in video.verbs for v in set(clip))
    return tuple(v for v in corpus.verbs if clips[v] >= need)


def model_for_corpus(config: TrainConfig, corpus: Corpus, sample: Sample) -> ActBertForPretraining:
    """A fresh (or initialised) model sized to the corpus' features and vocabularies (verb
    classes: ``training_verbs``)."""
    if config.init:
        model = ActBertForPretraining.from_pretrained(config.init)
        if config.match_input is not None and config.match_input != model.config.match_input:
            # the matching head keeps its weights and reads the other input from now on
            model.config = model.actbert.config = replace(model.config, match_input=config.match_input)
        if config.match_alignment_weight is not None:  # the score only: training reads the logits
            model.config = model.actbert.config = replace(
                model.config, match_alignment_weight=float(config.match_alignment_weight))
        return model
    verbs = training_verbs(corpus)
    changes: dict[str, dict] = {
        "action": {"feature_size": int(sample.video.action_features.shape[1]),
                   "num_classes": max(1, len(verbs))},
        "region": {"feature_size": int(sample.video.region_features.shape[1]),
                   "num_classes": max(1, int(sample.video.region_classes.shape[1]))},
        "text": {},
    }
    if config.dropout is not None:
        for stream in changes.values():
            stream.update(hidden_dropout=config.dropout, attention_dropout=config.dropout)
        changes["tangled"] = {"attention_dropout": config.dropout}
    if config.max_regions is not None:
        changes["max_regions"] = config.max_regions
    if config.match_input is not None:
        changes["match_input"] = config.match_input
    if config.match_alignment_weight is not None:
        changes["match_alignment_weight"] = float(config.match_alignment_weight)
    # The heads' class names travel with the model (a library evaluated or browsed with it may
    # have built another verb vocabulary from its own narrations).
    changes["extra"] = {"verbs": list(verbs), "region_classes": list(corpus.region_classes)}
    return build_model(config.preset, text_init=config.text_init or "auto", **changes)


def targets_for_model(corpus: Corpus, model: ActBertForPretraining) -> Corpus:
    """The corpus with the action head's own verb classes as its target vocabulary. A model
    started from ``--init`` (or resumed) keeps the classes it was trained with, in their order,
    whatever verbs this corpus' header lists; its narration verbs outside them get no target."""
    verbs = tuple(model.config.extra.get("verbs", ()))
    classes = model.config.action.num_classes
    if verbs and len(verbs) != classes:
        raise ValueError(f"the model names {len(verbs)} verbs but its action head has {classes} classes")
    if not verbs:
        if len(corpus.verbs) != classes:
            raise ValueError(f"the model's action head has {classes} classes and names none, but the "
                             f"corpus has {len(corpus.verbs)} verbs: its targets cannot be matched")
        return corpus
    if verbs == corpus.verbs:
        return corpus
    unknown = sorted({v for video in corpus.videos for clip in video.verbs for v in clip} - set(verbs))
    log.info("verb targets: the model's %d classes (the corpus lists %d); %d narration verbs "
             "outside them get no target%s", len(verbs), len(corpus.verbs), len(unknown),
             f" ({', '.join(unknown[:10])})" if unknown else "")
    return replace(corpus, verbs=verbs)  # Corpus.verb_targets drops verbs outside them


def check_fits(model: ActBertForPretraining, clips_per_sample: int) -> None:
    """A clip group's segment ids (one per clip) must exist in every stream's segment table."""
    for stream in ("text", "action", "region"):
        cfg = model.config.stream(stream)
        if cfg.use_segment_embedding and cfg.type_vocab_size < clips_per_sample:
            raise ValueError(f"--clips-per-sample {clips_per_sample} needs {clips_per_sample} "
                             f"segment ids but the {stream} stream has {cfg.type_vocab_size}")


def frozen_text_modules(model: ActBertForPretraining, layers: int) -> list[torch.nn.Module]:
    """The word embeddings and the first ``layers`` text layers (none when ``layers`` is 0)."""
    if layers <= 0:
        return []
    if layers > model.config.text.num_layers:
        raise ValueError(f"cannot freeze {layers} text layers: the text stream has "
                         f"{model.config.text.num_layers}")
    return [model.actbert.embeddings["text"], *model.actbert.encoder.layers["text"][:layers]]


def freeze_text(model: ActBertForPretraining, layers: int) -> list[str]:
    """Keep the word embeddings and the first ``layers`` text layers fixed (no gradient)."""
    names = []
    for module in frozen_text_modules(model, layers):
        for name, param in module.named_parameters():
            param.requires_grad_(False)
            names.append(name)
    return names


def _distributed() -> tuple[int, int, torch.device]:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    rank = dist.get_rank() if dist.is_initialized() else 0
    world = dist.get_world_size() if dist.is_initialized() else 1
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return rank, world, torch.device("cuda", local)
    return rank, world, torch.device("cpu")


def _to(batch: PretrainingBatch, device: torch.device) -> PretrainingBatch:
    move = lambda d: {k: v.to(device) for k, v in d.items()}  # noqa: E731
    return PretrainingBatch(
        inputs=move(batch.inputs), text_labels=batch.text_labels.to(device),
        action_targets=batch.action_targets.to(device), region_targets=batch.region_targets.to(device),
        region_labels=batch.region_labels.to(device), match_labels=batch.match_labels.to(device),
        action_selected=batch.action_selected.to(device), clean=move(batch.clean),
        match_inputs=move(batch.match_inputs) if batch.match_inputs is not None else None,
        clean_action_targets=(batch.clean_action_targets.to(device)
                              if batch.clean_action_targets is not None else None))


def _prepare_model(config: TrainConfig, corpus: Corpus, dataset: ClipGroups, resume: Path,
                   device: torch.device) -> ActBertForPretraining:
    """The model to train (resumed from ``resume`` when it holds one, else ``model_for_corpus``),
    checked against the clip groups, its frozen text layers fixed, in training mode."""
    model = (ActBertForPretraining.from_pretrained(resume) if (resume / "model.safetensors").is_file()
             else model_for_corpus(config, corpus, dataset.sample(0))).to(device)
    model = restrict_action_head(model, tuple(config.ignore_verbs))
    dataset.max_regions = model.config.max_regions  # the clip contract: the model's own limit
    dataset.corpus = targets_for_model(dataset.corpus, model)
    check_fits(model, config.clips_per_sample)
    dataset.keep_samples()
    freeze_text(model, config.freeze_text_layers)
    model.train()
    # The fixed layers compute features, as a frozen backbone does: no dropout in them (dropout's
    # random draws were a tenth of a CPU step), so the same words give the same state every step.
    for module in frozen_text_modules(model, config.freeze_text_layers):
        module.eval()
    pack_layers(model, device)
    return model


def pack_layers(model: torch.nn.Module, device: torch.device) -> None:
    """On CPUs the layers skip the padding's multiply-adds (``BertLayer.packed``: the same numbers
    at every real position); on GPUs padding is cheap and finding the positions would synchronise."""
    for module in model.modules():
        if isinstance(module, (BertLayer, TangledBlock)):
            module.packed = device.type == "cpu"


def adamw(parameters, config: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with the fused kernel (one pass over all parameters) on CPUs and GPUs: the same
    update as the per-tensor loop, which took a twentieth of a 2-core CPU step."""
    return torch.optim.AdamW(list(parameters), lr=config.lr, weight_decay=config.weight_decay,
                             fused=device.type in ("cpu", "cuda"))


def _optimizer(config: TrainConfig, model: ActBertForPretraining, resume: Path, device: torch.device
               ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR, dict]:
    """AdamW over the trainable parameters and its learning-rate schedule, resumed from
    ``resume/trainer.pt`` when present; with the step and epoch reached."""
    optimizer = adamw((p for p in model.parameters() if p.requires_grad), config, device)
    state = {"step": 0, "epoch": 0, "epoch_step": 0}
    if (resume / "trainer.pt").is_file():
        saved = torch.load(resume / "trainer.pt", map_location="cpu", weights_only=True)
        optimizer.load_state_dict(saved["optimizer"])
        for group in optimizer.param_groups:  # a state saved by the per-tensor loop resumes fused
            group["fused"] = optimizer.defaults["fused"]
        # epoch_step and rng: absent in states saved before resumes continued the epoch's order
        state = {"step": int(saved["step"]), "epoch": int(saved["epoch"]),
                 "epoch_step": int(saved.get("epoch_step", 0))}
        if "rng" in saved:
            state["rng"] = saved["rng"]
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, config),
                                                  last_epoch=state["step"] - 1)
    return optimizer, scheduler, state


def _precision(config: TrainConfig, device: torch.device
               ) -> tuple[torch.dtype | None, torch.amp.GradScaler | None]:
    """The autocast dtype (None: fp32; ``auto`` is bf16 on GPUs and on CPUs with bf16 matrix units)
    and, for fp16, a gradient scaler."""
    precision = config.precision
    if precision == "auto":
        fast_bf16 = device.type == "cuda" or (device.type == "cpu" and cpu_has_bf16_matrix_units())
        precision = "bf16" if fast_bf16 else "fp32"
    autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
    return autocast_dtype, scaler


@dataclass
class _Run:
    """One pretraining run's pieces, shared by the steps of its loop."""

    config: TrainConfig
    rank: int
    world: int
    device: torch.device
    dataset: ClipGroups
    collator: Collator
    model: ActBertForPretraining
    net: torch.nn.Module                # the objective, DDP-wrapped with several ranks
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    state: dict                         # {"step", "epoch", "epoch_step"}: what a checkpoint
                                        # resumes from (with the random state, "rng")
    autocast_dtype: torch.dtype | None
    scaler: torch.amp.GradScaler | None
    history: list[dict] = field(default_factory=list)
    started: float = 0.0
    samples_seen: int = 0

    @property
    def out(self) -> Path:
        return Path(self.config.out)

    @property
    def resume(self) -> Path:
        return self.out / "last"

    @property
    def log_path(self) -> Path:
        return self.out / "train.jsonl"

    def out_of_time(self) -> bool:  # never before this run's first step, so a checkpoint exists
        return (self.config.max_seconds is not None and self.samples_seen > 0
                and time.perf_counter() - self.started > self.config.max_seconds)


def train(config: TrainConfig) -> dict:
    """Run pretraining; returns a summary (final losses, samples/s, checkpoint path)."""
    rank, world, device = _distributed()
    torch.manual_seed(config.seed)
    if config.batch_size % world:
        raise ValueError(f"global batch {config.batch_size} is not divisible by {world} ranks")
    if config.match_on not in MATCH_ON:
        raise ValueError(f"match_on must be one of {MATCH_ON}, got {config.match_on!r}")
    corpus = without_verbs(read_corpus(config.corpus).split(config.split), tuple(config.ignore_verbs))
    dataset = ClipGroups(corpus, config.clips_per_sample, config.max_regions or 36, config.seed,
                         hard_negatives=config.hard_negatives,
                         video_negatives=config.video_negatives)
    if len(dataset) < 2:
        raise ValueError(f"{config.corpus}: {len(dataset)} training samples; need at least 2")
    if config.step_list_share > 0:
        distant_supervision(dataset, config)
    tok = ActBertTokenizer(max_length=config.max_text_tokens)
    out = Path(config.out)
    resume = out / "last"
    model = _prepare_model(config, corpus, dataset, resume, device)
    objective = PretrainingObjective(model, config.use_alignment, tok.cls_id, tok.sep_id, world,
                                     match_weight=config.match_weight,
                                     action_video_weight=config.action_video_weight,
                                     mined_negatives=config.mined_negatives)
    net = (torch.nn.parallel.DistributedDataParallel(
        objective, find_unused_parameters=not config.use_alignment) if world > 1 else objective)
    optimizer, scheduler, state = _optimizer(config, model, resume, device)
    collator = Collator(tok, config.seed, config.use_regions, config.match_on)
    if len(dataset) < config.batch_size * config.accumulate:
        raise ValueError(f"{len(dataset)} samples cannot fill one step of "
                         f"{config.batch_size} x {config.accumulate}")
    run = _Run(config, rank, world, device, dataset, collator, model, net, optimizer, scheduler,
               state, *_precision(config, device))
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "train_config.json").write_text(json.dumps(asdict(config), indent=2))
    bar = tqdm(total=config.steps, initial=state["step"], disable=rank != 0 or not config.progress,
               desc="pretrain", dynamic_ncols=True)
    if rank == 0:
        keep_logged_steps(run.log_path, state["step"])
    if "rng" in state:  # the dropout draws go on where the checkpoint left them (the CPU's
        # generator: on GPUs the CUDA generator is not saved, so a resume there is not bitwise)
        torch.set_rng_state(state.pop("rng"))
    run.started = time.perf_counter()
    while state["step"] < config.steps and not run.out_of_time():
        if _epoch(run, bar):
            state["epoch"] += 1
            state["epoch_step"] = 0
    bar.close()
    if rank == 0 and run.log_path.is_file():
        plot_losses(run.log_path, out / "loss_curve.png")
    if world > 1:
        dist.barrier()
    history = run.history
    return {"steps": state["step"], "final": history[-1] if history else {},
            "history": history, "checkpoint": str(resume), "world_size": world,
            "samples_per_s": history[-1]["samples_per_s"] if history else 0.0}


def distant_supervision(dataset: ClipGroups, config: TrainConfig) -> None:
    """Give the dataset its step texts (``step_list``): each narrated clip matched to its task's
    step list (the training videos' step descriptions) by MiniLM, read with ``step_list_share``."""
    if not 0.0 < config.step_list_share <= 1.0:
        raise ValueError(f"step_list_share is a share in (0, 1], got {config.step_list_share}")
    lists, dataset.step_texts = corpus_step_texts(dataset.corpus, config.step_list_threshold,
                                                  config.corpus)
    dataset.step_share = config.step_list_share
    clips = sum(len(v.narrated_clips()) for v in dataset.corpus.videos)
    log.info("step lists: %d tasks, %d steps; %d of %d narrated clips matched a step (cosine >= %.2f), "
             "read with probability %.2f", len(lists), sum(map(len, lists.values())),
             len(dataset.step_texts), clips, config.step_list_threshold, config.step_list_share)


def _epoch(run: _Run, bar: tqdm) -> bool:
    """The steps of one epoch (a fresh shuffle of the samples); False when the run stops inside it
    (its steps done or its time spent)."""
    config, state = run.config, run.state
    run.dataset.set_epoch(state["epoch"])
    run.collator.epoch = state["epoch"]
    if config.groups_per_video > 1:
        order = video_runs_order([vi for vi, _, _ in run.dataset.items], config.groups_per_video,
                                 config.seed + state["epoch"])
    else:
        order = torch.randperm(len(run.dataset), generator=torch.Generator().manual_seed(
            config.seed + state["epoch"])).tolist()
    per_step = config.batch_size * config.accumulate
    done = state["epoch_step"] * per_step  # a resumed run goes on inside its epoch's order
    for first in range(done, len(order) - per_step + 1, per_step):
        if state["step"] >= config.steps or run.out_of_time():
            return False
        totals = _step(run, order, first)
        state["step"] += 1
        state["epoch_step"] += 1
        run.samples_seen += per_step
        totals = _mean_over_ranks(totals, run.world, run.device)
        record = {"step": state["step"], "lr": run.scheduler.get_last_lr()[0],
                  **{k: round(v, 5) for k, v in totals.items()},
                  "samples_per_s": round(run.samples_seen / (time.perf_counter() - run.started), 2)}
        run.history.append(record)
        if run.rank == 0:
            _log_step(run, bar, record, totals)
    return True


def _step(run: _Run, order: list[int], first: int) -> dict[str, float]:
    """One optimizer step over ``accumulate`` micro-batches of the global batch starting at
    ``order[first]`` (this rank's share of each); returns the loss terms averaged over them."""
    config = run.config
    local_batch = config.batch_size // run.world
    run.optimizer.zero_grad(set_to_none=True)
    totals: dict[str, float] = {}
    for micro in range(config.accumulate):
        start = first + micro * config.batch_size + run.rank * local_batch
        items = [run.dataset[i] for i in order[start:start + local_batch]]
        batch = _to(run.collator(items), run.device)
        with torch.autocast(run.device.type, dtype=run.autocast_dtype,
                            enabled=run.autocast_dtype is not None):
            terms = run.net(batch)
        loss = terms["total"] / config.accumulate
        (run.scaler.scale(loss) if run.scaler else loss).backward()
        for k, v in terms.items():
            totals[k] = totals.get(k, 0.0) + float(v.detach()) / config.accumulate
    if run.scaler:
        run.scaler.step(run.optimizer)
        run.scaler.update()
    else:
        run.optimizer.step()
    run.scheduler.step()
    return totals


def _mean_over_ranks(totals: dict[str, float], world: int, device: torch.device) -> dict[str, float]:
    """The loss terms averaged over the ranks (unchanged with one rank)."""
    if world <= 1:
        return totals
    reduced = torch.tensor(list(totals.values()), device=device)
    dist.all_reduce(reduced)
    return dict(zip(totals, (reduced / world).tolist()))


def _log_step(run: _Run, bar: tqdm, record: dict, totals: dict[str, float]) -> None:
    """Rank 0 after a step: the progress bar, the JSONL log, the checkpoint and kept copies."""
    config, step = run.config, run.state["step"]
    bar.update(1)
    bar.set_postfix({k: f"{v:.3f}" for k, v in totals.items()})
    if step % config.log_every == 0 or step == config.steps:
        with open(run.log_path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
    if step % config.checkpoint_every == 0 or step == config.steps or run.out_of_time():
        _checkpoint(run.model, run.optimizer, run.state, run.resume)
    if config.keep_every and step % config.keep_every == 0:
        save_pretrained(run.model, run.out / f"step-{step}")


def _checkpoint(model: ActBertForPretraining, optimizer, state: dict, directory: Path) -> None:
    save_pretrained(model, directory)
    atomic_write(directory / "trainer.pt",
                 lambda tmp: torch.save({"optimizer": optimizer.state_dict(), **state,
                                         "rng": torch.get_rng_state()}, tmp))


def keep_logged_steps(log: Path, step: int) -> None:
    """A resumed run's log keeps the steps up to its checkpoint's: the records an interrupted run
    wrote after it are done again and would be logged twice."""
    if not log.is_file():
        return
    lines = log.read_text().splitlines()
    kept = [line for line in lines if line.strip() and json.loads(line).get("step", 0) <= step]
    if len(kept) < len(lines):
        atomic_write(log, lambda tmp: Path(tmp).write_text("".join(f"{line}\n" for line in kept)))
