"""A small synthetic corpus on disk (random features with known structure) for training tests."""

import numpy as np

from actbert.corpus import CorpusVideo, write_corpus
from actbert.data import VideoFeatures

VERBS = ["cut", "pour", "stir", "peel"]
NOUNS = ["tomato", "milk", "soup", "carrot"]


def make_corpus(folder, videos=6, clips=4, action_size=20, region_size=24, classes=11, seed=0,
                ragged=False):
    """Each clip's action feature encodes its verb (one-hot block + noise), its narration names
    the verb, so the objectives have something learnable. ``ragged``: videos differ in their clip
    count (``clips`` + 0..2), region count per clip (0..4) and boxes, as real libraries do."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for v in range(videos):
        n_clips = clips + (v % 3 if ragged else 0)
        verbs = rng.integers(0, len(VERBS), n_clips)
        action = rng.normal(0, 0.1, (n_clips, action_size)).astype(np.float32)
        action[np.arange(n_clips), verbs] += 2.0
        per_clip = rng.integers(0, 5, n_clips) if ragged else np.full(n_clips, 3)
        n = int(per_clip.sum())
        corners = rng.uniform(0, 30, (n, 2)) if ragged else np.full((n, 2), 10.0)
        features = VideoFeatures(
            video_id=f"v{v}", clip_start_sec=np.arange(n_clips) * 4.0,
            clip_end_sec=np.arange(n_clips) * 4.0 + 4,
            action_features=action, action_scores=np.full((n_clips, 5), 0.2, np.float32),
            region_features=rng.random((n, region_size), dtype=np.float32),
            region_boxes_xyxy=np.concatenate([corners, corners + [40.0, 30.0]], 1).clip(0, 63),
            region_classes=rng.dirichlet(np.ones(classes), n).astype(np.float32),
            region_scores=rng.random(n, dtype=np.float32),
            region_clip=np.repeat(np.arange(n_clips), per_clip),
            region_time_sec=np.repeat(np.arange(n_clips) * 4.0 + 2, per_clip),
            frame_size=(64, 48))
        path = folder / f"v{v}.safetensors"
        features.save(path)
        records.append(CorpusVideo(
            video_id=f"v{v}", features=path,
            narrations=tuple(f"now {VERBS[k]} the {NOUNS[k]}" for k in verbs),
            verbs=tuple((VERBS[k],) for k in verbs), split="train", task=f"task{v % 2}"))
    write_corpus(folder / "corpus.jsonl", records, VERBS, [f"c{i}" for i in range(classes)])
    return folder / "corpus.jsonl"


FOODS = ["apple", "banana", "bean", "beet", "bread", "butter", "cabbage", "carrot", "celery",
         "cheese", "cherry", "chili", "corn", "cream", "cucumber", "egg", "fennel", "fig", "garlic",
         "ginger", "grape", "honey", "kale", "leek", "lemon", "lentil", "lime", "mango", "melon",
         "mushroom", "noodle", "oat", "olive", "onion", "orange", "pasta", "peach", "pear", "pepper",
         "plum", "potato", "pumpkin", "radish", "rice", "salmon", "spinach", "squash", "tofu"]
FILLERS = ["um okay so", "and that is about it", "right let me see", "you know what I mean"]


def make_eval_corpus(folder, train_videos=8, test_videos=4, clips=6, steps=3, clip_sec=4.0,
                     perfect_narration=True, action_size=20, region_size=24, classes=11, seed=0,
                     shared_instance=False, val_videos=0):
    """A corpus with splits, task instances and ground-truth steps for the evaluation tests.

    Every video has ``clips`` clips of ``clip_sec`` seconds and ``steps`` steps; step j lies on one
    clip c (interval [c*clip_sec + 0.5, (c+1)*clip_sec]) so c is its only overlapping clip, its
    target and its only clip whose centre lies inside. Descriptions are "<verb> the <food>" with a
    food unique to the step (up to 48 steps in all). The action feature of a step clip encodes the
    verb (a one-hot block + noise). With ``perfect_narration`` a step clip's narration IS the step
    description (other clips narrate fillers); otherwise every narration is a filler.
    ``shared_instance`` gives the first test video the task instance of the first train video.
    ``val_videos`` adds a val split (between train and test).
    Returns the corpus path; the ground truth is in the corpus itself.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    records, food = [], 0
    splits = ["train"] * train_videos + ["val"] * val_videos + ["test"] * test_videos
    for v, split in enumerate(splits):
        positions = np.sort(rng.choice(clips, steps, replace=False))
        verbs = rng.integers(0, len(VERBS), steps)
        action = rng.normal(0, 0.1, (clips, action_size)).astype(np.float32)
        step_list, narrations, clip_verbs = [], [], [()] * clips
        narrations = [FILLERS[(v + c) % len(FILLERS)] for c in range(clips)]
        for c, k in zip(positions, verbs):
            description = f"{VERBS[k]} the {FOODS[food]}"
            food += 1
            step_list.append({"start_sec": c * clip_sec + 0.5, "end_sec": (c + 1) * clip_sec,
                              "description": description, "verb": VERBS[k]})
            action[c, k] += 2.0
            clip_verbs[c] = (VERBS[k],)
            if perfect_narration:
                narrations[c] = description
        n = clips * 3
        features = VideoFeatures(
            video_id=f"{split}{v}", clip_start_sec=np.arange(clips) * clip_sec,
            clip_end_sec=(np.arange(clips) + 1) * clip_sec, action_features=action,
            region_features=rng.random((n, region_size), dtype=np.float32),
            region_boxes_xyxy=np.tile([[10.0, 10.0, 50.0, 40.0]], (n, 1)),
            region_classes=rng.dirichlet(np.ones(classes), n).astype(np.float32),
            region_scores=rng.random(n, dtype=np.float32),
            region_clip=np.repeat(np.arange(clips), 3),
            region_time_sec=np.repeat(np.arange(clips) * clip_sec + 1, 3), frame_size=(64, 48))
        path = folder / f"{split}{v}.safetensors"
        features.save(path)
        instance = f"instance{v}"
        if shared_instance and split == "test" and v == train_videos + val_videos:
            instance = "instance0"
        records.append(CorpusVideo(
            video_id=f"{split}{v}", features=path, narrations=tuple(narrations),
            verbs=tuple(clip_verbs), split=split, task=f"task{v % 2}", task_instance=instance,
            steps=tuple(step_list)))
    write_corpus(folder / "corpus.jsonl", records, VERBS, [f"c{i}" for i in range(classes)])
    return folder / "corpus.jsonl"
