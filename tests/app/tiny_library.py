"""A tiny, complete library for the app's tests (built in seconds on a CPU).

Real parts: two SynthKitchen videos (real H.264 files, their WebVTT narration and true steps), the
real catalog, clip spans from the real narration, feature files in the real format, a real FAISS
index built by ``indexer.index.search.build_index``. RANDOM parts, for UI tests only and no claim of
quality: the action and region feature vectors, the region boxes/classes/scores (valid: boxes inside
the frame, class distributions from a Dirichlet), the backbone's action classes, the verb
classifier's predictions and the ActBERT weights (``tiny`` preset, random initialisation).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from actbert.config import ActBertConfig
from actbert.data import VideoFeatures
from actbert.model import ActBertForPretraining
from indexer.features.sampling import fixed_windows, narration_spans, sample_times
from indexer.features.transcripts import find_sidecar, load_transcript
from indexer.features.video import probe
from indexer.index.embed import set_library_model
from indexer.index.search import build_index
from indexer.library.catalog import ClipRecord
from indexer.library.discovery import fingerprint
from indexer.library.ground_truth import ground_truth_for
from indexer.library.store import Library
from synthkitchen.corpus import OBJECT_CLASSES, VERBS, generate
from synthkitchen.ground_truth import register

register()  # ingest and the corpus export read SynthKitchen's ground truth

REGION_CLASSES = ["background", *OBJECT_CLASSES]
ACTION_CLASSES = ["cooking egg", "cutting vegetables", "making pancakes", "pouring milk",
                  "stirring", "peeling potatoes"]
ACTION_FEATURES = 20
REGION_FEATURES = 24


def make_corpus(folder: Path, seed: int = 0) -> list[Path]:
    """Two short SynthKitchen videos (160x120, 12 FPS, ~25 s) with narration and ground truth."""
    return generate(folder, 2, seed, size=(160, 120), fps=12, step_sec=(2, 3))


def random_features(video_id: str, spans, width: int, height: int, rng: np.random.Generator,
                    action_width: int = ACTION_FEATURES, region_width: int = REGION_FEATURES) -> VideoFeatures:
    """Valid random features: 1-3 boxes per 1 FPS frame, inside the frame."""
    rows = []
    for clip, span in enumerate(spans):
        for t in sample_times(span.start_sec, span.end_sec, 1.0):
            for _ in range(rng.integers(1, 4)):
                x1, y1 = rng.uniform(0, width * 0.6), rng.uniform(0, height * 0.6)
                x2, y2 = x1 + rng.uniform(12, width * 0.4), y1 + rng.uniform(12, height * 0.4)
                rows.append(([x1, y1, min(x2, width - 1), min(y2, height - 1)], clip, float(t)))
    n = len(rows)
    return VideoFeatures(
        video_id=video_id,
        clip_start_sec=np.array([s.start_sec for s in spans]),
        clip_end_sec=np.array([s.end_sec for s in spans]),
        action_features=rng.normal(size=(len(spans), action_width)).astype(np.float32),
        action_scores=rng.dirichlet(np.ones(len(ACTION_CLASSES)), len(spans)).astype(np.float32),
        region_features=rng.normal(size=(n, region_width)).astype(np.float32),
        region_boxes_xyxy=np.array([r[0] for r in rows], np.float32),
        region_classes=rng.dirichlet(np.full(len(REGION_CLASSES), 0.3), n).astype(np.float32),
        region_scores=rng.uniform(0.4, 1.0, n).astype(np.float32),
        region_clip=np.array([r[1] for r in rows], np.int64),
        region_time_sec=np.array([r[2] for r in rows], np.float64),
        frame_size=(width, height),
        extractors={"actions": {"name": "random-test"}, "regions": {"name": "random-test"}},
    )


def tiny_model(kv_fusion: str = "stack", seed: int = 0, max_regions: int = 36) -> ActBertForPretraining:
    """The ``tiny`` preset sized to the fixture's features, RANDOM weights."""
    config = ActBertConfig.from_name(
        "tiny", action={"feature_size": ACTION_FEATURES, "num_classes": len(VERBS)},
        region={"feature_size": REGION_FEATURES, "num_classes": len(REGION_CLASSES)},
        tangled={"kv_fusion": kv_fusion}, max_regions=max_regions)
    torch.manual_seed(seed)
    return ActBertForPretraining(config).eval()


def build_tiny_library(root: Path, corpus: Path | None = None, kv_fusion: str = "stack",
                       seed: int = 0, max_regions: int = 36, model: Path | None = None) -> Path:
    """Build the library in ``root`` (videos generated into ``root/corpus`` unless ``corpus``, an
    existing SynthKitchen folder, is given; it is then registered as a source). ``model``: a saved
    model directory to use (features sized to its config) instead of a random ``tiny`` one.
    Returns ``root``."""
    rng = np.random.default_rng(seed)
    config = ActBertConfig.from_json((model / "config.json").read_text()) if model else None
    widths = (config.action.feature_size, config.region.feature_size) if config else \
        (ACTION_FEATURES, REGION_FEATURES)
    library = Library.create(root)
    if corpus is None:
        corpus = root / "corpus"
        videos = make_corpus(corpus, seed)
    else:
        videos = sorted((corpus / "videos").glob("*.mp4"))
        library.add_source(corpus / "videos")
    for path in videos:
        info = probe(path)
        cues = load_transcript(find_sidecar(path))
        spans = narration_spans(cues, info.duration_sec, 4.0, 8.0) or fixed_windows(info.duration_sec, 6.0)
        video_id = path.stem
        features = random_features(video_id, spans, info.width, info.height, rng, *widths)
        features.save(library.feature_path(video_id))
        truth = ground_truth_for(path)
        steps = list(truth.steps) if truth else []
        rowid = library.catalog.upsert_video(
            video_id, str(path), fingerprint(path), path.stat().st_size, duration_sec=info.duration_sec,
            fps=info.fps, width=info.width, height=info.height, rotation_deg=info.rotation_deg,
            codec=info.codec)
        order = np.argsort(-features.action_scores, 1)[:, :3]
        clips = [ClipRecord(i, s.start_sec, s.end_sec, s.text, (),
                            tuple((ACTION_CLASSES[j], float(features.action_scores[i, j])) for j in row))
                 for i, (s, row) in enumerate(zip(spans, order))]
        _, ids = library.catalog.complete_video(
            rowid, clips, [(c.start_sec, c.end_sec, c.text) for c in cues], steps,
            feature_path=f"features/{video_id}.safetensors", **(truth.video_fields() if truth else {}))
        verbs = rng.dirichlet(np.ones(len(VERBS)), len(ids))
        library.catalog.set_predicted_verbs({
            cid: [(VERBS[j], round(float(p[j]), 4)) for j in np.argsort(-p)[:3]]
            for cid, p in zip(ids, verbs)})
    if model is None:
        model = root / "models" / "actbert"
        tiny_model(kv_fusion, seed, max_regions).save_pretrained(model)
    set_library_model(library, model)
    library.update_manifest(
        verbs=list(VERBS),
        extractors={"actions": {"name": "random-test (fixture)", "classes": ACTION_CLASSES},
                    "regions": {"name": "random-test (fixture)", "classes": REGION_CLASSES}})
    build_index(library)
    library.close()
    return root
