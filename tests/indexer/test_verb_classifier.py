"""The verb classifier on synthetic features whose ground-truth verbs are known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from indexer.features.verb_classifier import (
    load_verb_classifier,
    predict_verbs,
    save_verb_classifier,
    soft_cross_entropy,
    train_verb_classifier,
)

VERBS = ["cut", "pour", "stir", "peel", "flip"]
# Verb frequencies of the generated clips: "cut" dominates, so the majority baseline is ~0.4.
FREQUENCIES = np.array([0.4, 0.2, 0.15, 0.15, 0.1])


def _dataset(n: int = 600, feature_size: int = 24, seed: int = 0, noise: float = 0.3):
    """Clips of one verb (features = the verb's centre + noise) and ~15 % of two verbs (the mean of the
    two centres; targets 0.5 / 0.5). Returns features, targets, has_verb, primary verb per clip."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((len(VERBS), feature_size)) * 2.0
    primary = rng.choice(len(VERBS), size=n, p=FREQUENCIES)
    secondary = (primary + 1 + rng.integers(0, len(VERBS) - 1, n)) % len(VERBS)
    two = rng.random(n) < 0.15
    targets = np.zeros((n, len(VERBS)), np.float32)
    targets[np.arange(n), primary] = 1.0
    targets[two] = 0.0
    targets[np.flatnonzero(two), primary[two]] = 0.5
    targets[np.flatnonzero(two), secondary[two]] = 0.5
    features = targets @ centres + noise * rng.standard_normal((n, feature_size))
    return features.astype(np.float32), targets, np.ones(n, bool), primary


def test_soft_cross_entropy_hand_computed():
    logits = torch.tensor([[0.0, math.log(3.0)], [0.0, 0.0]])  # probabilities (1/4, 3/4) and (1/2, 1/2)
    targets = torch.tensor([[0.5, 0.5], [1.0, 0.0]])
    expected = ((-0.5 * math.log(0.25) - 0.5 * math.log(0.75)) + (-math.log(0.5))) / 2
    assert soft_cross_entropy(logits, targets).item() == pytest.approx(expected, rel=1e-6)


def test_learns_separable_verbs_far_above_the_majority_baseline():
    features, targets, has_verb, primary = _dataset()
    classifier, report = train_verb_classifier(features, targets, has_verb,
                                               val_fraction=0.25, epochs=30, lr=1e-2, seed=0)
    assert report["n_train"] + report["n_val"] == len(features) and report["n_val"] == 150
    assert report["val_top1"] >= 0.97 and report["train_top1"] >= 0.97
    # Majority baseline: always "cut"; a hit when "cut" is among the clip's verbs (~0.4 + a share of pairs).
    assert report["majority_verb"] == 0
    assert 0.3 < report["majority_top1"] < 0.6
    assert report["val_top1"] - report["majority_top1"] > 0.35
    predictions = predict_verbs(classifier, features, top_k=1)
    single = targets.max(axis=1) == 1.0
    accuracy = np.mean([p[0][0] == v for p, v, s in zip(predictions, primary, single) if s])
    assert accuracy >= 0.97


def test_clips_without_verbs_are_left_out():
    """Same labelled clips plus unlabelled ones (garbage features, zero targets): identical model."""
    features, targets, has_verb, _ = _dataset(n=200, seed=1)
    rng = np.random.default_rng(5)
    extra = rng.standard_normal((50, features.shape[1])).astype(np.float32) * 100
    slots = np.sort(rng.choice(250, size=200, replace=False))  # labelled clips keep their order
    rest = np.setdiff1d(np.arange(250), slots)
    all_features = np.zeros((250, features.shape[1]), np.float32)
    all_targets = np.zeros((250, len(VERBS)), np.float32)
    all_has_verb = np.zeros(250, bool)
    all_features[slots], all_targets[slots], all_has_verb[slots] = features, targets, True
    all_features[rest] = extra
    kwargs = dict(val_fraction=0.2, epochs=5, lr=1e-2, seed=3)
    alone, alone_report = train_verb_classifier(features, targets, has_verb, **kwargs)
    mixed, mixed_report = train_verb_classifier(all_features, all_targets, all_has_verb, **kwargs)
    assert mixed_report["n_without_verbs"] == 50 and alone_report["n_without_verbs"] == 0
    assert mixed_report["n_train"] == alone_report["n_train"]
    for (name, a), (_, b) in zip(alone.state_dict().items(), mixed.state_dict().items()):
        torch.testing.assert_close(a, b, msg=name)


def test_groups_stay_on_one_side_of_the_split():
    features, targets, has_verb, _ = _dataset(n=120, seed=2)
    groups = np.repeat(np.arange(12), 10)  # 12 "videos" of 10 clips
    _, report = train_verb_classifier(features, targets, has_verb, val_fraction=0.25, epochs=1, groups=groups)
    assert report["n_val"] == 30  # 3 whole videos


def test_bad_targets_are_rejected():
    features, targets, has_verb, _ = _dataset(n=20)
    targets[3] = [1.0, 1.0, 0, 0, 0]  # not l1-normalised
    with pytest.raises(ValueError, match=r"sum to 1.*\[3\]"):
        train_verb_classifier(features, targets, has_verb, epochs=1)
    with pytest.raises(ValueError, match="no clip has a verb"):
        train_verb_classifier(features, targets, np.zeros(20, bool), epochs=1)
    with pytest.raises(ValueError, match="val_fraction"):
        train_verb_classifier(features, _dataset(n=20)[1], has_verb, epochs=1, val_fraction=1.0)


def test_predict_verbs_sorted_top_k():
    features, targets, has_verb, _ = _dataset(n=100)
    classifier, _ = train_verb_classifier(features, targets, has_verb, epochs=3, hidden=16)
    predictions = predict_verbs(classifier, features[:4], top_k=3)
    assert len(predictions) == 4
    for row in predictions:
        probs = [p for _, p in row]
        assert len(row) == 3 and probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6
        assert all(0 <= i < len(VERBS) for i, _ in row)
    assert len(predict_verbs(classifier, features[:1], top_k=50)[0]) == len(VERBS)
    with pytest.raises(ValueError, match=r"\(N, 24\)"):
        predict_verbs(classifier, features[:, :5])


def test_save_and_load_round_trip(tmp_path):
    features, targets, has_verb, _ = _dataset(n=100)
    classifier, report = train_verb_classifier(features, targets, has_verb, epochs=3, hidden=8)
    version = "i3d:kinetics400/f32-fps8-crop224-s256"
    save_verb_classifier(tmp_path, classifier, VERBS, feature_version=version, report=report)
    loaded = load_verb_classifier(tmp_path)
    assert loaded.vocabulary == VERBS
    assert loaded.feature_version == version
    assert predict_verbs(loaded.classifier, features, 2) == predict_verbs(classifier, features, 2)
    with pytest.raises(ValueError, match="vocabulary has 2 verbs"):
        save_verb_classifier(tmp_path, classifier, VERBS[:2])
    with pytest.raises(FileNotFoundError, match="verb_classifier"):
        load_verb_classifier(tmp_path / "nothing")
