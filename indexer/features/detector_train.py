"""Training a detector on frames with box annotations: ``train_detector(samples, class_names)`` trains
any architecture of :mod:`indexer.features.detector` and writes a checkpoint that
``RegionExtractor(detector=PATH)`` loads. Where the frames come from is the caller's business
(``synthkitchen.detection`` reads them from a SynthKitchen corpus for ``indexer train-detector``).

A sample is ``(frame (H, W, 3) uint8 RGB, boxes (G, 4) float32 xyxy pixels, labels (G,) int64 in 1..C)``.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

import numpy as np
import torch

from indexer.features.boxes import valid_boxes
from indexer.features.detector import build_detector, evaluate_map, save_detector

log = logging.getLogger(__name__)

Sample = tuple[np.ndarray, np.ndarray, np.ndarray]


def _to_tensors(sample: Sample, flip: bool, device: torch.device) -> tuple[torch.Tensor, dict]:
    frame, boxes, labels = sample
    image = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1).float().div(255)
    boxes = torch.as_tensor(np.asarray(boxes, np.float32).reshape(-1, 4))
    if flip:
        width = image.shape[-1]
        image = image.flip(-1)
        boxes = torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], 1)
    target = {"boxes": boxes.to(device), "labels": torch.as_tensor(np.asarray(labels), dtype=torch.int64).to(device)}
    return image.to(device), target


def _check_samples(samples: list[Sample], num_classes: int) -> list[Sample]:
    out = []
    for i, (frame, boxes, labels) in enumerate(samples):
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"sample {i}: frame must be (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        labels = np.asarray(labels, np.int64).reshape(-1)
        if len(boxes) != len(labels):
            raise ValueError(f"sample {i}: {len(boxes)} boxes but {len(labels)} labels")
        if len(labels) and (labels.min() < 1 or labels.max() >= num_classes):
            raise ValueError(f"sample {i}: labels must be in 1..{num_classes - 1}, got {labels.min()}..{labels.max()}")
        keep = valid_boxes(boxes, 1.0)  # torchvision refuses boxes without width or height
        out.append((frame, boxes[keep], labels[keep]))
    return out


def _lr_scale(step: int, warmup: int, total: int, started: float, max_train_sec: float | None) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 0 at step ``total``, or at
    ``max_train_sec`` after ``started`` when elapsed time is further along (a cut run ends annealed)."""
    if step < warmup:
        return (step + 1) / warmup
    done = (step - warmup) / max(1, total - warmup)
    if max_train_sec:
        done = max(done, (time.perf_counter() - started) / max_train_sec)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, done)))


def _train_step(model, params: list, optimizer, batch: list[tuple[torch.Tensor, dict]]) -> float:
    """One optimiser step on a batch of (image, target), gradients clipped to norm 10; the batch loss."""
    losses = model([b[0] for b in batch], [b[1] for b in batch])
    loss = sum(losses.values())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 10.0)
    optimizer.step()
    return float(loss.detach())


class _TrainingRun(NamedTuple):
    """What the training loop did: mean loss per epoch, steps taken and planned, elapsed seconds."""

    epoch_losses: list[float]
    steps: int
    planned_steps: int
    stopped_early: bool
    train_sec: float


def _train_epochs(model, samples: list[Sample], lr: float, *, epochs: int, batch_size: int,
                  hflip: bool, max_train_sec: float | None, rng: np.random.Generator,
                  device: torch.device) -> _TrainingRun:
    """AdamW (weight decay 1e-4) over ``epochs`` shuffled passes, the learning rate following
    ``_lr_scale``; stops after ``max_train_sec`` seconds."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    total = epochs * math.ceil(len(samples) / batch_size)
    warmup = min(50, max(1, total // 10))
    t0 = time.perf_counter()
    step = 0
    model.train()
    epoch_losses: list[float] = []
    stopped_early = False
    for epoch in range(epochs):
        order = rng.permutation(len(samples))
        running = []
        for start in range(0, len(order), batch_size):
            scale = _lr_scale(step, warmup, total, t0, max_train_sec)
            for group in optimizer.param_groups:
                group["lr"] = lr * scale
            batch = [_to_tensors(samples[i], hflip and bool(rng.random() < 0.5), device)
                     for i in order[start:start + batch_size]]
            running.append(_train_step(model, params, optimizer, batch))
            step += 1
            if max_train_sec and time.perf_counter() - t0 >= max_train_sec:
                stopped_early = True
                break
        epoch_losses.append(float(np.mean(running)))
        log.info("epoch %d/%d: loss %.4f (%.1f s, step %d)", epoch + 1, epochs, epoch_losses[-1],
                 time.perf_counter() - t0, step)
        if stopped_early:
            log.info("stopped after %d of %d steps: max_train_sec=%s reached", step, total, max_train_sec)
            break
    return _TrainingRun(epoch_losses, step, total, stopped_early, time.perf_counter() - t0)


def train_detector(samples: Iterable[Sample], class_names: Sequence[str], *, arch: str = "tiny",
                   epochs: int = 10, batch_size: int = 4, lr: float | None = None, seed: int = 0,
                   out_path: str | Path | None = None, val_samples: Iterable[Sample] | None = None,
                   min_size: int | None = None, max_size: int | None = None, hflip: bool = True,
                   pretrained_backbone: bool = False, max_train_sec: float | None = None, device: str = "cpu",
                   **build_options) -> dict:
    """Train ``arch`` from random initialisation (or an ImageNet backbone) on ``samples``.

    ``class_names`` name labels 1..C. AdamW (``lr`` default 1e-3 for ``tiny``, 1e-4 otherwise, weight
    decay 1e-4), linear warm-up then cosine decay, horizontal flips when ``hflip``. With
    ``max_train_sec`` training stops after that many seconds and the decay follows elapsed time
    when that is further along than the step count (so a cut run still ends annealed). Returns the
    training report (``train_sec``, ``epoch_losses``, ``val_map50`` when ``val_samples`` are given,
    ``model`` = the trained detector in eval mode, ``checkpoint`` = the path written when ``out_path``).
    """
    num_classes = len(class_names) + 1
    samples = _check_samples(list(samples), num_classes)
    if not samples:
        raise ValueError("train_detector needs at least one sample")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {epochs}, {batch_size}")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    dev = torch.device(device)
    model = build_detector(arch, num_classes, pretrained_backbone=pretrained_backbone, min_size=min_size,
                           max_size=max_size, **build_options).to(dev)
    lr = lr if lr is not None else (1e-3 if arch == "tiny" else 1e-4)
    run = _train_epochs(model, samples, lr, epochs=epochs, batch_size=batch_size, hflip=hflip,
                        max_train_sec=max_train_sec, rng=rng, device=dev)
    model.eval()
    report = {"arch": arch, "num_classes": num_classes, "class_names": list(class_names),
              "num_train_frames": len(samples), "epochs": epochs, "batch_size": batch_size, "lr": lr,
              "seed": seed, "steps": run.steps, "planned_steps": run.planned_steps,
              "stopped_early": run.stopped_early, "train_sec": round(run.train_sec, 2),
              "epoch_losses": run.epoch_losses,
              "min_size": int(model.transform.min_size[0]), "max_size": int(model.transform.max_size)}
    if val_samples is not None:
        val = list(val_samples)
        report["num_val_frames"] = len(val)
        report["val_map50"] = evaluate_map(model, val, iou=0.5) if val else None
    if out_path is not None:
        report["checkpoint"] = str(save_detector(model, out_path, arch=arch, class_names=class_names,
                                                 build_options=build_options, report=report))
    return {**report, "model": model}
