"""The linear probe of the segmentation and video QA evaluations.

``LinearProbe`` is L2-regularised softmax regression on standardised features. The objective is
convex, so it is fitted to its optimum with full-batch L-BFGS from zero weights: the result
depends on the data and the penalty alone (no epochs, learning rate or seed to choose).

The penalty is the only free choice; ``LinearProbe.cross_validated`` picks it from a grid by
grouped K-fold cross-validation on the training data (groups = videos, so a fold never scores
frames of a video it trained on), then refits on all of it. Features of the held-out split are
never seen while choosing.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)


class LinearProbe:
    """``LinearProbe(features (N, F), labels (N,), num_classes, l2)``; ``predict``, ``logits``.

    Minimises mean cross-entropy + ``l2`` / 2 * ||W||^2 (the bias is not penalised) on features
    standardised with the training mean and standard deviation.
    """

    def __init__(self, features: np.ndarray, labels: np.ndarray, num_classes: int,
                 l2: float = 1e-2, max_iter: int = 300, weights: np.ndarray | None = None) -> None:
        x = torch.as_tensor(np.asarray(features), dtype=torch.float64)
        y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
        if x.ndim != 2 or len(x) != len(y) or len(x) == 0:
            raise ValueError(f"a linear probe needs (N, F) features and (N,) labels, got "
                             f"{tuple(x.shape)} and {tuple(y.shape)}")
        # Integer weights = repeated rows (frames of one clip share its features): same optimum.
        w = torch.ones(len(y), dtype=torch.float64) if weights is None else torch.as_tensor(
            np.asarray(weights), dtype=torch.float64)
        if w.shape != y.shape or bool((w < 0).any()) or float(w.sum()) <= 0:
            raise ValueError(f"weights must be (N,) non-negative with a positive sum, got {tuple(w.shape)}")
        self.weights = w / w.sum()
        if int(y.min()) < 0 or int(y.max()) >= num_classes:
            raise ValueError(f"labels must lie in [0, {num_classes}), got {int(y.min())}..{int(y.max())}")
        if l2 < 0:
            raise ValueError(f"l2 must be >= 0, got {l2}")
        self.l2 = float(l2)
        self.mean = self.weights @ x
        self.std = (self.weights @ (x - self.mean) ** 2).sqrt().clamp(min=1e-6)
        x = (x - self.mean) / self.std
        self.weight = torch.zeros(num_classes, x.shape[1], dtype=torch.float64, requires_grad=True)
        self.bias = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.LBFGS([self.weight, self.bias], lr=1, max_iter=max_iter,
                                      tolerance_grad=1e-9, tolerance_change=1e-12,
                                      history_size=20, line_search_fn="strong_wolfe")

        rows = torch.arange(len(y))

        @torch.no_grad()
        def closure() -> torch.Tensor:
            """The objective and its gradient by hand (softmax minus one-hot, weighted): the
            same numbers as autograd's, without its per-call overhead (hundreds of calls)."""
            log_p = torch.log_softmax(x @ self.weight.T + self.bias, dim=1)
            loss = -(self.weights @ log_p[rows, y]) + 0.5 * self.l2 * self.weight.pow(2).sum()
            residual = log_p.exp_()
            residual[rows, y] -= 1.0
            residual *= self.weights[:, None]
            self.weight.grad = residual.T @ x + self.l2 * self.weight
            self.bias.grad = residual.sum(0)
            return loss

        optimizer.step(closure)
        self.weight.requires_grad_(False)
        self.weight.grad = None
        self.bias.requires_grad_(False)
        self.bias.grad = None

    def objective(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The minimised loss on standardised features ``x``."""
        logits = x @ self.weight.T + self.bias
        nll = torch.nn.functional.cross_entropy(logits, y, reduction="none")
        return self.weights @ nll + 0.5 * self.l2 * self.weight.pow(2).sum()

    @torch.no_grad()
    def logits(self, features: np.ndarray) -> np.ndarray:
        """(N, F) -> (N, num_classes)."""
        x = (torch.as_tensor(np.asarray(features), dtype=torch.float64) - self.mean) / self.std
        return (x @ self.weight.T + self.bias).numpy()

    def predict(self, features: np.ndarray) -> np.ndarray:
        return self.logits(features).argmax(1)

    @classmethod
    def cross_validated(cls, features: np.ndarray, labels: np.ndarray, num_classes: int,
                        groups: Sequence[int], grid: Sequence[float] = L2_GRID,
                        folds: int = 3, weights: np.ndarray | None = None) -> "LinearProbe":
        """Choose ``l2`` from ``grid`` by grouped K-fold (weighted) accuracy, then fit on
        everything. The chosen probe carries ``cv_accuracy`` ({l2: mean held-out accuracy}); ties
        go to the stronger penalty."""
        features, labels = np.asarray(features), np.asarray(labels)
        weights = np.ones(len(labels)) if weights is None else np.asarray(weights, dtype=np.float64)
        fold_of = group_folds(groups, folds)
        scores = {}
        for l2 in grid:
            accuracies = []
            for k in np.unique(fold_of):
                train, held = fold_of != k, fold_of == k
                probe = cls(features[train], labels[train], num_classes, l2, weights=weights[train])
                hits = probe.predict(features[held]) == labels[held]
                accuracies.append(float(np.average(hits, weights=weights[held])))
            scores[float(l2)] = float(np.mean(accuracies))
        best = max(scores.values())
        l2 = max(value for value, score in scores.items() if score >= best - 1e-12)
        probe = cls(features, labels, num_classes, l2, weights=weights)
        probe.cv_accuracy = scores
        return probe


def group_folds(groups: Sequence[int], folds: int) -> np.ndarray:
    """Fold index per item: whole groups dealt round-robin in order of first appearance."""
    groups = np.asarray(groups)
    order = list(dict.fromkeys(groups.tolist()))
    if len(order) < 2:
        raise ValueError(f"cross-validation needs at least 2 groups, got {len(order)}")
    folds = min(folds, len(order))
    fold_of_group = {g: i % folds for i, g in enumerate(order)}
    return np.array([fold_of_group[g] for g in groups.tolist()], dtype=np.int64)


def closed_set_correct(train_features: np.ndarray, train_labels: np.ndarray, groups: Sequence[int],
                       test_features: np.ndarray, test_labels: np.ndarray,
                       num_classes: int) -> tuple[np.ndarray, "LinearProbe"]:
    """(N,) bool: a cross-validated probe's argmax over the TEST label space (the labels the
    test items carry, as the masked-action head is read) equals the test label; and the probe."""
    probe = LinearProbe.cross_validated(train_features, train_labels, num_classes, groups)
    space = np.unique(test_labels)
    picks = space[probe.logits(test_features)[:, space].argmax(1)]
    return picks == np.asarray(test_labels), probe
