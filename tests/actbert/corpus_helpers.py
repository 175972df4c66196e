"""A small synthetic corpus on disk (random features with known structure) for training tests."""

import numpy as np

from actbert.corpus import CorpusVideo, write_corpus
from actbert.data import VideoFeatures

VERBS = ["cut", "pour", "stir", "peel"]
NOUNS = ["tomato", "milk", "soup", "carrot"]


def make_corpus(folder, videos=6, clips=4, action_size=20, region_size=24, classes=11, seed=0):
    """Each clip's action feature encodes its verb (one-hot block + noise), its narration names
    the verb, so the objectives have something learnable."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for v in range(videos):
        verbs = rng.integers(0, len(VERBS), clips)
        action = rng.normal(0, 0.1, (clips, action_size)).astype(np.float32)
        action[np.arange(clips), verbs] += 2.0
        regions_per_clip = 3
        n = clips * regions_per_clip
        features = VideoFeatures(
            video_id=f"v{v}", clip_start_sec=np.arange(clips) * 4.0,
            clip_end_sec=np.arange(clips) * 4.0 + 4,
            action_features=action, action_scores=np.full((clips, 5), 0.2, np.float32),
            region_features=rng.random((n, region_size), dtype=np.float32),
            region_boxes_xyxy=np.tile([[10.0, 10.0, 50.0, 40.0]], (n, 1)),
            region_classes=rng.dirichlet(np.ones(classes), n).astype(np.float32),
            region_scores=rng.random(n, dtype=np.float32),
            region_clip=np.repeat(np.arange(clips), regions_per_clip),
            region_time_sec=np.repeat(np.arange(clips) * 4.0 + 2, regions_per_clip),
            frame_size=(64, 48))
        path = folder / f"v{v}.safetensors"
        features.save(path)
        records.append(CorpusVideo(
            video_id=f"v{v}", features=path,
            narrations=tuple(f"now {VERBS[k]} the {NOUNS[k]}" for k in verbs),
            verbs=tuple((VERBS[k],) for k in verbs), split="train", task=f"task{v % 2}"))
    write_corpus(folder / "corpus.jsonl", records, VERBS, [f"c{i}" for i in range(classes)])
    return folder / "corpus.jsonl"
