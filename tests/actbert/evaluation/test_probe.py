"""The linear probe: optimal for its objective, and its penalty chosen on training videos."""

import numpy as np
import pytest
import torch

from actbert.evaluation.probe import LinearProbe, group_folds


def test_separates_separable_classes_deterministically():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 5, (3, 8))
    y = np.repeat(np.arange(3), 20)
    x = centres[y] + rng.normal(0, 0.5, (60, 8))
    probe = LinearProbe(x, y, 3, l2=1e-3)
    assert (probe.predict(x + rng.normal(0, 0.1, x.shape)) == y).all()
    np.testing.assert_array_equal(probe.logits(x), LinearProbe(x, y, 3, l2=1e-3).logits(x))


def test_fit_reaches_the_optimum_of_its_objective():
    # Reference: the objective's gradient written out by hand vanishes at the fitted weights.
    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 5))
    y = rng.integers(0, 3, 80)
    probe = LinearProbe(x, y, 3, l2=0.3)
    z = (x - probe.mean.numpy()) / probe.std.numpy()
    w, b = probe.weight.numpy(), probe.bias.numpy()
    logits = z @ w.T + b
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    residual = (p - np.eye(3)[y]) / len(y)
    grad_w = residual.T @ z + 0.3 * w
    grad_b = residual.sum(0)
    assert np.abs(grad_w).max() < 1e-6 and np.abs(grad_b).max() < 1e-6
    # And the strong penalty shrinks the weights: larger l2 -> smaller norm.
    assert np.linalg.norm(LinearProbe(x, y, 3, l2=3.0).weight) < np.linalg.norm(w)


def test_group_folds_keep_groups_whole():
    groups = [7, 7, 3, 3, 3, 9, 1, 1]
    folds = group_folds(groups, 3)
    for g in set(groups):
        assert len({folds[i] for i, h in enumerate(groups) if h == g}) == 1
    assert folds.tolist() == [0, 0, 1, 1, 1, 2, 0, 0]
    with pytest.raises(ValueError, match="at least 2 groups"):
        group_folds([4, 4], 3)


def test_cross_validation_prefers_a_strong_penalty_when_features_are_noise():
    # 600 frames of 12 "videos"; the label is constant per video-segment and unrelated to the
    # (many) features. An unregularised probe memorises the training videos and drops below the
    # majority class on new videos; the cross-validated one stays near it.
    rng = np.random.default_rng(2)
    videos = np.repeat(np.arange(12), 50)
    segment_feature = rng.normal(size=(12 * 5, 200))
    segment = np.repeat(np.arange(60), 10)
    x = segment_feature[segment] + 0.01 * rng.normal(size=(600, 200))
    y = rng.choice(4, size=60, p=[0.55, 0.15, 0.15, 0.15])[segment]
    test_x = rng.normal(size=(400, 200))
    test_y = rng.choice(4, size=400, p=[0.55, 0.15, 0.15, 0.15])
    chosen = LinearProbe.cross_validated(x, y, 4, groups=videos)
    assert chosen.l2 >= 1.0, chosen.cv_accuracy
    assert set(chosen.cv_accuracy) == {1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0}
    loose = LinearProbe(x, y, 4, l2=1e-4)
    majority = float((test_y == 0).mean())
    assert (chosen.predict(test_x) == test_y).mean() >= majority - 0.05
    assert (loose.predict(test_x) == test_y).mean() < (chosen.predict(test_x) == test_y).mean()


def test_cross_validation_keeps_a_weak_penalty_when_features_carry_the_label():
    rng = np.random.default_rng(3)
    videos = np.repeat(np.arange(9), 30)
    y = rng.integers(0, 3, 270)
    x = np.eye(3)[y] * 2.0 + rng.normal(0, 0.3, (270, 3))
    chosen = LinearProbe.cross_validated(x, y, 3, groups=videos)
    assert max(chosen.cv_accuracy.values()) > 0.95
    assert (chosen.predict(x) == y).mean() > 0.95


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match=r"\(N, F\) features"):
        LinearProbe(np.zeros((3, 2)), np.zeros(4, int), 2)
    with pytest.raises(ValueError, match="labels must lie"):
        LinearProbe(np.zeros((3, 2)), np.array([0, 1, 2]), 2)
    assert torch.get_default_dtype() == torch.float32  # the probe never changes global state


def test_weights_are_repeated_rows():
    # Reference: the same data with each row repeated weight-many times.
    rng = np.random.default_rng(4)
    x = rng.normal(size=(30, 4))
    y = rng.integers(0, 3, 30)
    w = rng.integers(1, 5, 30)
    weighted = LinearProbe(x, y, 3, l2=0.1, weights=w)
    repeated = LinearProbe(np.repeat(x, w, axis=0), np.repeat(y, w), 3, l2=0.1)
    np.testing.assert_allclose(weighted.logits(x), repeated.logits(x), atol=1e-6)
    groups = np.arange(30) // 5
    a = LinearProbe.cross_validated(x, y, 3, groups, weights=w)
    b = LinearProbe.cross_validated(np.repeat(x, w, axis=0), np.repeat(y, w), 3, np.repeat(groups, w))
    assert a.cv_accuracy == pytest.approx(b.cv_accuracy) and a.l2 == b.l2
    with pytest.raises(ValueError, match="weights"):
        LinearProbe(x, y, 3, weights=-w)
