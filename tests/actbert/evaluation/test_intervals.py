"""Bootstrap intervals against hand-computed cases and normal-approximation references, by unit
and by video (whole videos resampled)."""

import numpy as np
import pytest

from actbert.evaluation.intervals import (bootstrap, percentile_interval, replicates, resample_groups,
                                         resample_indices)
from actbert.evaluation.metrics import (accuracy_from_counts, metrics_from_ranks, percent_correct,
                                        recall_from_counts)


def mean_of(outcomes):
    outcomes = np.asarray(outcomes, dtype=float)
    return lambda idx: {"accuracy": 100 * float(outcomes[idx].mean())}


def test_replicates_are_the_metric_on_each_drawn_row():
    draws = np.array([[0, 0, 1], [2, 2, 2], [1, 2, 0]])
    reps = replicates(mean_of([1, 0, 0]), draws)
    np.testing.assert_allclose(reps["accuracy"], [200 / 3, 0, 100 / 3])
    # Retrieval: ranks 0, 3, 7 drawn as (0, 0, 2): R@1 2/3, R@5 2/3, median rank floor(0 + 1) = 1.
    ranks = np.array([0, 3, 7])
    reps = replicates(lambda i: metrics_from_ranks(ranks[i]).as_dict(), np.array([[0, 0, 2]]))
    assert reps["r1"][0] == pytest.approx(200 / 3) and reps["r5"][0] == pytest.approx(200 / 3)
    assert reps["median_rank"][0] == 1.0 and reps["num_queries"][0] == 3


def test_percentile_interval_by_hand():
    assert percentile_interval(np.arange(101)) == pytest.approx([2.5, 97.5])
    assert percentile_interval(np.arange(11), level=0.8) == pytest.approx([1.0, 9.0])
    assert percentile_interval([4.0] * 7) == [4.0, 4.0]
    with pytest.raises(ValueError):
        percentile_interval([])


def test_resampling_is_uniform_with_replacement_and_seeded():
    draws = resample_indices(5, 4000, seed=[3, 1])
    assert draws.shape == (4000, 5) and draws.min() == 0 and draws.max() == 4
    assert np.abs(np.bincount(draws.ravel(), minlength=5) / draws.size - 0.2).max() < 0.01
    assert (draws == resample_indices(5, 4000, seed=[3, 1])).all()
    assert not (draws == resample_indices(5, 4000, seed=[3, 2])).all()


def test_interval_of_a_proportion_matches_the_normal_approximation():
    rng = np.random.default_rng(0)
    outcomes = rng.random(400) < 0.3
    p = outcomes.mean()
    half = 100 * 1.96 * np.sqrt(p * (1 - p) / 400)
    result = bootstrap({"a": mean_of(outcomes)}, 400, seed=0, resamples=4000)
    low, high = result.intervals()["a"]["accuracy"]
    assert result.point["a"]["accuracy"] == pytest.approx(100 * p)
    assert low == pytest.approx(100 * p - half, abs=0.8) and high == pytest.approx(100 * p + half, abs=0.8)


def test_paired_differences():
    rng = np.random.default_rng(1)
    a = rng.random(60) < 0.5
    systems = {"a": mean_of(a), "same": mean_of(a.copy()), "never": mean_of(np.zeros(60))}
    result = bootstrap(systems, 60, seed=7, resamples=500)
    point, ci = result.difference("a", "same")
    assert point == {"accuracy": 0.0} and ci == {"accuracy": [0.0, 0.0]}
    # Against a constant system the paired difference is a's own interval.
    point, ci = result.difference("a", "never")
    assert point["accuracy"] == pytest.approx(100 * a.mean())
    assert ci["accuracy"] == pytest.approx(result.intervals()["a"]["accuracy"])
    assert result.intervals()["never"]["accuracy"] == [0.0, 0.0]


def test_differences_cover_only_shared_metrics_and_within_system_metrics():
    ranks = np.array([0, 1, 2, 8, 20, 3])
    worse = ranks + 1
    systems = {"model": lambda i: {"r1": metrics_from_ranks(ranks[i]).r1,
                                   "r1_embedding": metrics_from_ranks(worse[i]).r1},
               "bm25": lambda i: {"r1": metrics_from_ranks(worse[i]).r1}}
    result = bootstrap(systems, 6, seed=0, resamples=300)
    point, ci = result.difference("model", "bm25")
    assert set(point) == set(ci) == {"r1"} and point["r1"] == pytest.approx(100 / 6)
    assert 0 <= ci["r1"][0] <= point["r1"] <= ci["r1"][1]
    assert result.metric_difference("model", "r1", "r1_embedding")[1] == ci["r1"]


@pytest.mark.parametrize("metric, outcomes", [
    (lambda o: percent_correct(o), np.array([1, 0, 1, 1, 0, 1, 1, 1], bool)),
    (lambda o: accuracy_from_counts(o), np.array([[3, 10], [9, 10], [0, 4], [5, 5]])),
    (lambda o: recall_from_counts(o).mean, [("a", 1, 3), ("a", 2, 2), ("b", 0, 1), ("b", 1, 2)]),
])
def test_interval_contains_the_point_and_is_deterministic(metric, outcomes):
    def figures(idx):
        return {"m": metric([outcomes[i] for i in idx] if isinstance(outcomes, list) else outcomes[idx])}

    first = bootstrap({"s": figures}, len(outcomes), seed=[0, 3], resamples=400)
    again = bootstrap({"s": figures}, len(outcomes), seed=[0, 3], resamples=400)
    low, high = first.intervals()["s"]["m"]
    assert low <= first.point["s"]["m"] <= high and low < high
    assert first.point["s"]["m"] == metric(outcomes)
    assert again.intervals() == first.intervals()


# ---- resampling whole videos ---------------------------------------------------------------------

def test_one_unit_per_video_is_the_unit_bootstrap():
    draws = resample_groups(np.arange(7), 50, seed=[4, 2])
    assert (np.stack(draws) == resample_indices(7, 50, seed=[4, 2])).all()


def test_a_video_resample_takes_whole_videos_by_hand():
    groups = np.array([5, 5, 9, 7, 7, 7])  # videos 5, 9, 7 (first-seen order) hold units 01, 2, 345
    members = {0: [0, 1], 1: [2], 2: [3, 4, 5]}
    outcomes = np.array([1, 1, 0, 0, 1, 0], float)
    video_draws = np.random.default_rng([1, 8]).integers(0, 3, size=(20, 3))
    draws = resample_groups(groups, 20, seed=[1, 8])
    result = bootstrap({"a": mean_of(outcomes)}, 6, seed=[1, 8], resamples=20, groups=groups)
    for row, drawn, replicate in zip(video_draws, draws, result.replicates["a"]["accuracy"]):
        by_hand = [u for v in row for u in members[v]]
        assert sorted(drawn.tolist()) == sorted(by_hand)
        assert replicate == pytest.approx(100 * outcomes[by_hand].mean())
    assert result.point["a"]["accuracy"] == pytest.approx(50.0)
    with pytest.raises(ValueError):
        bootstrap({"a": mean_of(outcomes)}, 6, seed=0, groups=groups[:5])


def test_clustered_units_give_the_wider_video_interval_of_the_cluster_means():
    """40 videos of 10 questions each, every question of a video answered alike (a video either
    fully right or fully wrong): 400 units but only 40 independent outcomes. The video interval
    matches the normal approximation over the 40 video means; the unit interval is ~sqrt(10)
    times narrower, which is what resampling the units alone claimed."""
    rng = np.random.default_rng(5)
    per_video = rng.random(40) < 0.5
    outcomes, groups = np.repeat(per_video, 10), np.repeat(np.arange(40), 10)
    by_unit = bootstrap({"a": mean_of(outcomes)}, 400, seed=1, resamples=4000)
    by_video = bootstrap({"a": mean_of(outcomes)}, 400, seed=1, resamples=4000, groups=groups)
    p = per_video.mean()
    half = 100 * 1.96 * np.sqrt(p * (1 - p) / 40)
    low, high = by_video.intervals()["a"]["accuracy"]
    assert low == pytest.approx(100 * p - half, abs=2.5) and high == pytest.approx(100 * p + half, abs=2.5)
    unit_low, unit_high = by_unit.intervals()["a"]["accuracy"]
    assert (high - low) > 2.5 * (unit_high - unit_low)


def test_paired_video_differences_use_one_draw():
    """Two systems that differ only on one video: every replicate's difference is that video's
    share of the drawn units (0 when it is not drawn), so the paired interval is never negative."""
    groups = np.repeat(np.arange(10), 3)
    a = np.ones(30)
    b = a.copy()
    b[groups == 4] = 0
    result = bootstrap({"a": mean_of(a), "b": mean_of(b)}, 30, seed=2, resamples=500, groups=groups)
    diffs = result.replicates["a"]["accuracy"] - result.replicates["b"]["accuracy"]
    draws = resample_groups(groups, 500, seed=2)
    np.testing.assert_allclose(diffs, [100 * np.mean(groups[d] == 4) for d in draws])
    assert result.difference("a", "b")[1]["accuracy"][0] >= 0
