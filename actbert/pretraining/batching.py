"""The order in which an epoch visits the pretraining samples.

Today's default is a uniform shuffle: a batch of 16 groups from a corpus of hundreds of videos holds
almost never two groups of one video, so the in-batch negatives of the alignment loss are other
recipes, and telling a recipe apart is all it asks. ``video_runs_order`` puts ``per_video`` groups of
one video next to each other (the runs themselves shuffled), so every batch holds other steps of
the same recipe as negatives: the within-video contrast of MIL-NCE (Miech et al., 2020) and of
temporal alignment work, with no change to the loss.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def video_runs_order(video_of: Sequence[int], per_video: int, seed: int) -> list[int]:
    """A permutation of ``range(len(video_of))`` (``video_of[i]``: item i's video) made of runs of
    up to ``per_video`` items of one video: each video's items shuffled and cut into runs, the runs
    shuffled. ``per_video`` 1 is a plain shuffle."""
    if per_video < 1:
        raise ValueError(f"per_video must be >= 1, got {per_video}")
    rng = np.random.default_rng(seed)
    by_video: dict[int, list[int]] = {}
    for item, video in enumerate(video_of):
        by_video.setdefault(int(video), []).append(item)
    runs = []
    for video in sorted(by_video):
        items = [by_video[video][i] for i in rng.permutation(len(by_video[video]))]
        runs += [items[i:i + per_video] for i in range(0, len(items), per_video)]
    return [item for r in rng.permutation(len(runs)) for item in runs[r]]
