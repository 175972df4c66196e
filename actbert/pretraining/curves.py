"""The training curves of a pretraining run as a PNG: every loss term of ``train.jsonl`` against
the step (one panel per term, the matching loss with its chance level ln 2); ``run_files`` finds
a checkpoint's training outputs and ``training_run`` reads them (the report card and the
explorer's Model page draw them)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import atomic_path

TERMS = ("text", "action", "region", "match", "align", "total")


def read_log(path: str | Path) -> list[dict]:
    """The records of a ``train.jsonl`` (one JSON object per logged step)."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def plot_losses(log_path: str | Path, out_path: str | Path, title: str | None = None) -> Path:
    """Write the loss curves of ``log_path`` to ``out_path`` (PNG); returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_log(log_path)
    if not records:
        raise ValueError(f"{log_path}: no logged step to plot")
    terms = [t for t in TERMS if any(t in r for r in records)]
    columns = 3
    rows = math.ceil(len(terms) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 2.8 * rows), squeeze=False)
    for ax, term in zip(axes.flat, terms):
        steps = [r["step"] for r in records if term in r]
        ax.plot(steps, [r[term] for r in records if term in r], lw=1.2)
        if term == "match":
            ax.axhline(math.log(2), color="grey", ls="--", lw=1, label="chance (ln 2)")
            ax.legend(fontsize=8)
        ax.set_title(term)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(terms):]:
        ax.axis("off")
    fig.suptitle(title or f"pretraining losses ({Path(log_path).parent.name})")
    fig.tight_layout()
    out_path = Path(out_path)
    with atomic_path(out_path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return out_path


RUN_FILES = ("train.jsonl", "train_config.json", "loss_curve.png")


def run_files(checkpoint: str | Path) -> dict[str, Path]:
    """The training outputs of a checkpoint that exist ({name: path} of ``RUN_FILES``): in the
    checkpoint folder itself (a shipped model carries them, ``actbert ship``), else in its run
    folder (the checkpoint is ``RUN/last`` or ``RUN/step-N``); all from the same folder."""
    checkpoint = Path(checkpoint)
    for folder in (checkpoint, checkpoint.parent):
        found = {name: folder / name for name in RUN_FILES if (folder / name).is_file()}
        if found:
            return found
    return {}


@dataclass
class TrainingRun:
    """What a model's training left beside it (``run_files``): its label on the page, the
    checkpoint, the ``train.jsonl`` records and ``train_config.json`` (None when absent)."""

    label: str
    checkpoint: str
    records: list[dict] = field(default_factory=list)
    config: dict | None = None
    log_path: str | None = None


def training_run(label: str, checkpoint: str | Path) -> TrainingRun:
    """A checkpoint's training outputs (``run_files``) read into a ``TrainingRun``."""
    files = run_files(checkpoint)
    log_path = files.get("train.jsonl")
    config = files.get("train_config.json")
    return TrainingRun(label, str(checkpoint), read_log(log_path) if log_path else [],
                       json.loads(config.read_text()) if config else None,
                       str(log_path) if log_path else None)
