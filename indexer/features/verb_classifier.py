"""The paper's verb classifier: a softmax over the verb vocabulary on top of the action backbone's feature.

ActBERT (sec. 4.1) labels each clip with the verbs of its narration and trains a classifier on the
action features whose target is the l1-normalised verb indicator (a clip narrated "cut and stir" has
targets 0.5 / 0.5), with a soft-target cross-entropy. Its predictions are the clip's "actions".

Everything here is a pure function of arrays (no catalog): ``train_verb_classifier`` fits and reports
top-1 accuracy against the majority-verb baseline, ``predict_verbs`` gives each clip's top verbs, and
``save_verb_classifier``/``load_verb_classifier`` store the weights (safetensors) beside a JSON holding
the verb vocabulary.

Top-1 is counted as a hit when the predicted verb is one of the clip's verbs (target > 0).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

log = logging.getLogger(__name__)

WEIGHTS_FILE = "verb_classifier.safetensors"
VOCABULARY_FILE = "verb_classifier.json"


class VerbClassifier(nn.Module):
    """Standardise the feature (train-split mean/std, kept as buffers), then Linear (``hidden=0``) or a
    small MLP (Linear -> ReLU -> Dropout -> Linear). ``forward(features (N, F)) -> logits (N, V)``."""

    def __init__(self, feature_size: int, num_verbs: int, hidden: int = 0, dropout: float = 0.1):
        super().__init__()
        if feature_size < 1 or num_verbs < 1 or hidden < 0:
            raise ValueError(f"need feature_size >= 1, num_verbs >= 1, hidden >= 0; "
                             f"got {feature_size}, {num_verbs}, {hidden}")
        self.feature_size, self.num_verbs, self.hidden = feature_size, num_verbs, hidden
        self.register_buffer("feature_mean", torch.zeros(feature_size))
        self.register_buffer("feature_std", torch.ones(feature_size))
        if hidden:
            self.head = nn.Sequential(nn.Linear(feature_size, hidden), nn.ReLU(), nn.Dropout(dropout),
                                      nn.Linear(hidden, num_verbs))
        else:
            self.head = nn.Sequential(nn.Linear(feature_size, num_verbs))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.head((features - self.feature_mean) / self.feature_std)


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over clips of ``-sum_v targets[v] * log_softmax(logits)[v]``; logits, targets (N, V)."""
    return -(targets * F.log_softmax(logits, dim=-1)).sum(dim=-1).mean()


def top1_hits(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(N,) bool: the highest-scoring verb of each clip is one of its verbs (target > 0)."""
    return targets[np.arange(len(targets)), np.argmax(scores, axis=1)] > 0


def _check_inputs(features: np.ndarray, targets: np.ndarray, has_verb: np.ndarray) -> None:
    if features.ndim != 2 or targets.ndim != 2 or has_verb.shape != (len(features),) or len(targets) != len(features):
        raise ValueError(f"need features (N, F), targets (N, V), has_verb (N,); got {features.shape}, "
                         f"{targets.shape}, {has_verb.shape}")
    if not np.isfinite(features).all():
        raise ValueError("features contain NaN or infinity")
    labelled = targets[has_verb]
    if (labelled < 0).any() or not np.allclose(labelled.sum(axis=1), 1.0, atol=1e-4):
        bad = np.flatnonzero(has_verb)[np.abs(labelled.sum(axis=1) - 1.0) > 1e-4][:5]
        raise ValueError(f"targets of clips with verbs must be non-negative and sum to 1 (l1-normalised); "
                         f"first bad rows: {bad.tolist()}")


def _split(n: int, val_fraction: float, groups: np.ndarray | None,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val) of n items; with ``groups`` (e.g. video ids) whole groups go one way."""
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    keys = np.arange(n) if groups is None else groups
    unique = rng.permutation(np.unique(keys))
    n_val = 0 if val_fraction == 0 or len(unique) < 2 else max(1, round(len(unique) * val_fraction))
    val = np.isin(keys, unique[:n_val])
    return np.flatnonzero(~val), np.flatnonzero(val)


def _standardised_classifier(x_train: torch.Tensor, feature_size: int, num_verbs: int, hidden: int,
                             seed: int) -> VerbClassifier:
    """A new classifier initialised from ``seed`` (without touching the global RNG) that standardises
    with the train split's mean and std."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = VerbClassifier(feature_size, num_verbs, hidden=hidden)
    model.feature_mean.copy_(x_train.mean(dim=0))
    model.feature_std.copy_(x_train.std(dim=0, unbiased=False).clamp_min(1e-6))
    return model


def _fit(model: VerbClassifier, x_train: torch.Tensor, y_train: torch.Tensor, *, epochs: int, lr: float,
         weight_decay: float, batch_size: int, seed: int) -> None:
    """AdamW on the soft cross-entropy, ``epochs`` passes in minibatches shuffled from ``seed``; leaves
    ``model`` in eval mode."""
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(x_train), generator=generator)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            loss = soft_cross_entropy(model(x_train[batch]), y_train[batch])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
        if epoch == 0 or (epoch + 1) % max(1, epochs // 5) == 0:
            log.info("verb classifier epoch %d/%d: batch loss %.4f", epoch + 1, epochs, loss.item())
    model.eval()


def _evaluate(model: VerbClassifier, features: np.ndarray, targets: np.ndarray,
              idx: np.ndarray) -> tuple[float | None, float | None]:
    """(top-1 accuracy, soft cross-entropy) of the clips ``idx``; (None, None) when there are none."""
    if len(idx) == 0:
        return None, None
    with torch.no_grad():
        logits = model(torch.from_numpy(features[idx]))
        loss = soft_cross_entropy(logits, torch.from_numpy(targets[idx])).item()
    return float(top1_hits(logits.numpy(), targets[idx]).mean()), loss


def train_verb_classifier(
    features: np.ndarray, targets: np.ndarray, has_verb: np.ndarray, *, val_fraction: float = 0.2,
    epochs: int = 100, lr: float = 1e-3, seed: int = 0, hidden: int = 0, weight_decay: float = 1e-4,
    batch_size: int = 256, groups: np.ndarray | None = None,
) -> tuple[VerbClassifier, dict]:
    """Fit a ``VerbClassifier`` on action features with soft (l1-normalised) verb targets.

    features (N, F) float; targets (N, V), each row with verbs summing to 1; has_verb (N,) bool: clips
    without verbs are left out of training and evaluation. ``groups`` (N,) optional ids (e.g. the video
    of each clip) keeps whole groups on one side of the train/val split. AdamW, minibatches of
    ``batch_size``, ``epochs`` passes; ``seed`` fixes the split, the initialisation and the shuffling.

    Returns the classifier (eval mode) and a report: ``train_top1``, ``val_top1`` (None without a
    validation split), ``majority_top1`` (always predicting the verb with the most target mass in the
    train split, scored on val, or on train when there is no val), ``train_loss``, ``val_loss``,
    ``n_train``, ``n_val``, ``n_without_verbs``.
    """
    features = np.asarray(features, np.float32)
    targets = np.asarray(targets, np.float32)
    has_verb = np.asarray(has_verb, bool)
    _check_inputs(features, targets, has_verb)
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise ValueError(f"need epochs >= 1, batch_size >= 1, lr > 0; got {epochs}, {batch_size}, {lr}")
    labelled = np.flatnonzero(has_verb)
    if len(labelled) == 0:
        raise ValueError("no clip has a verb: nothing to train the verb classifier on")
    rng = np.random.default_rng(seed)
    labelled_groups = None if groups is None else np.asarray(groups)[labelled]
    train_rel, val_rel = _split(len(labelled), val_fraction, labelled_groups, rng)
    train_idx, val_idx = labelled[train_rel], labelled[val_rel]

    x_train, y_train = torch.from_numpy(features[train_idx]), torch.from_numpy(targets[train_idx])
    model = _standardised_classifier(x_train, features.shape[1], targets.shape[1], hidden, seed)
    _fit(model, x_train, y_train, epochs=epochs, lr=lr, weight_decay=weight_decay,
         batch_size=batch_size, seed=seed)
    train_top1, train_loss = _evaluate(model, features, targets, train_idx)
    val_top1, val_loss = _evaluate(model, features, targets, val_idx)
    majority = int(np.argmax(targets[train_idx].sum(axis=0)))
    scored = val_idx if len(val_idx) else train_idx
    report = {
        "train_top1": train_top1, "val_top1": val_top1,
        "majority_top1": float((targets[scored, majority] > 0).mean()), "majority_verb": majority,
        "train_loss": train_loss, "val_loss": val_loss,
        "n_train": int(len(train_idx)), "n_val": int(len(val_idx)),
        "n_without_verbs": int(len(has_verb) - len(labelled)),
    }
    log.info("verb classifier: %s", report)
    return model, report


def predict_verbs(classifier: VerbClassifier, features: np.ndarray, top_k: int = 5) -> list[list[tuple[int, float]]]:
    """Each clip's ``top_k`` verbs as (verb_index, probability), most probable first; features (N, F)."""
    features = np.asarray(features, np.float32)
    if features.ndim != 2 or features.shape[1] != classifier.feature_size:
        raise ValueError(f"features must be (N, {classifier.feature_size}), got {features.shape}")
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    classifier.eval()
    with torch.no_grad():
        probs = torch.softmax(classifier(torch.from_numpy(features)), dim=-1)
        values, indices = probs.topk(min(top_k, classifier.num_verbs), dim=-1)
    return [[(int(i), float(p)) for i, p in zip(row_i, row_p)]
            for row_i, row_p in zip(indices.tolist(), values.tolist())]


class LoadedVerbClassifier(NamedTuple):
    classifier: VerbClassifier
    vocabulary: list[str]
    feature_version: str | None


def save_verb_classifier(directory: str | Path, classifier: VerbClassifier, vocabulary: Sequence[str],
                         feature_version: str | None = None, report: dict | None = None) -> None:
    """Write ``verb_classifier.safetensors`` and ``verb_classifier.json`` (vocabulary, sizes,
    ``feature_version``: the action extractor's ``version`` the features came from, and the report)."""
    if len(vocabulary) != classifier.num_verbs:
        raise ValueError(f"vocabulary has {len(vocabulary)} verbs, the classifier {classifier.num_verbs}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in classifier.state_dict().items()}, str(directory / WEIGHTS_FILE))
    meta = {"vocabulary": list(vocabulary), "feature_size": classifier.feature_size,
            "hidden": classifier.hidden, "feature_version": feature_version, "report": report}
    (directory / VOCABULARY_FILE).write_text(json.dumps(meta, indent=1))


def load_verb_classifier(directory: str | Path) -> LoadedVerbClassifier:
    """Read what ``save_verb_classifier`` wrote; the classifier is in eval mode."""
    directory = Path(directory)
    for name in (WEIGHTS_FILE, VOCABULARY_FILE):
        if not (directory / name).is_file():
            raise FileNotFoundError(f"no verb classifier in {directory}: {name} is missing")
    meta = json.loads((directory / VOCABULARY_FILE).read_text())
    model = VerbClassifier(int(meta["feature_size"]), len(meta["vocabulary"]), hidden=int(meta["hidden"]))
    model.load_state_dict(load_file(str(directory / WEIGHTS_FILE)), strict=True)
    return LoadedVerbClassifier(model.eval(), list(meta["vocabulary"]), meta.get("feature_version"))

