"""The epoch order of ``--groups-per-video``: a permutation made of runs of one video."""

import pytest

from actbert.pretraining.batching import video_runs_order


def test_runs_of_one_video_cover_every_item_once():
    video_of = [0] * 7 + [1] * 3 + [2] * 5 + [3]
    order = video_runs_order(video_of, per_video=3, seed=5)
    assert sorted(order) == list(range(len(video_of)))
    # cut back into runs: a run ends where the video changes or after 3 items
    runs, run = [], [order[0]]
    for item in order[1:]:
        if video_of[item] == video_of[run[-1]] and len(run) < 3:
            run.append(item)
        else:
            runs.append(run)
            run = [item]
    runs.append(run)
    # video 0 (7 items) makes runs of 3, 3, 1; video 1 one run of 3; video 2 runs of 3, 2; video 3 one
    sizes = sorted((video_of[r[0]], len(r)) for r in runs)
    assert sizes == [(0, 1), (0, 3), (0, 3), (1, 3), (2, 2), (2, 3), (3, 1)]
    assert order == video_runs_order(video_of, per_video=3, seed=5)
    assert order != video_runs_order(video_of, per_video=3, seed=6)


def test_one_per_video_is_a_plain_permutation_and_zero_is_refused():
    order = video_runs_order([0, 0, 1, 1, 2], per_video=1, seed=0)
    assert sorted(order) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="per_video must be >= 1"):
        video_runs_order([0], per_video=0, seed=0)
