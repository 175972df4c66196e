"""Clip inspector data against the feature files, the corpus ground truth and a direct model run."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections import Counter

import numpy as np
import pytest
import torch

from actbert.data import VideoFeatures, clip_inputs, collate
from actbert.model import ActBertForPretraining
from actbert.tokenizer import ActBertTokenizer
from indexer.features.video import read_frames_at
from indexer.library import inspector
from indexer.library.catalog import Clip
from indexer.library.store import Library, LibraryError
from tests.app.tiny_library import REGION_CLASSES, build_tiny_library


@pytest.fixture(scope="module")
def lib_dir(tmp_path_factory):
    return build_tiny_library(tmp_path_factory.mktemp("inspect_library"))


@pytest.fixture
def library(lib_dir):
    lib = Library(lib_dir)
    yield lib
    lib.close()


def _features(library, video_id) -> VideoFeatures:
    return VideoFeatures.load(library.feature_path(video_id))


def test_parse_clip_id():
    assert inspector.parse_clip_id(" 12 ") == 12
    for bad in ("../../etc/passwd", "-1", "1.5", "", "3; DROP TABLE clips"):
        with pytest.raises(ValueError, match="clip must be a catalog clip id"):
            inspector.parse_clip_id(bad)


def test_clip_view_matches_the_feature_file(library):
    clip_id = library.catalog.clip_ids()[1]
    view = inspector.clip_view(library, clip_id)
    features = _features(library, view.clip.video_id)
    rows = np.flatnonzero(features.region_clip == view.clip.clip_index)
    assert len(view.boxes_xyxy) == len(rows)
    # same boxes as a set, each labelled with its argmax class (background excluded)
    expected = sorted((tuple(features.region_boxes_xyxy[r].round(3)),
                       REGION_CLASSES[1 + int(np.argmax(features.region_classes[r, 1:]))]) for r in rows)
    got = sorted((tuple(b.round(3)), label) for b, label in zip(view.boxes_xyxy, view.region_labels))
    assert got == expected
    np.testing.assert_allclose(view.frame_times_sec, np.unique(features.region_time_sec[rows]))
    assert (view.frame_times_sec[view.region_frame] == np.array(
        [features.region_time_sec[rows][np.argmin(np.abs(features.region_boxes_xyxy[rows] - b).sum(1))]
         for b in view.boxes_xyxy])).all()
    assert view.clip.predicted_verbs and view.clip.action_classes


def test_clip_frames_are_the_decoded_frames(library):
    view = inspector.clip_view(library, library.catalog.clip_ids()[0])
    frames = inspector.clip_frames(library, view)
    reference = read_frames_at(view.clip.video_path, view.frame_times_sec)
    assert frames.shape == (len(view.frame_times_sec), 120, 160, 3)
    np.testing.assert_array_equal(frames, reference)
    np.testing.assert_array_equal(inspector.clip_frame(library, view, 1), reference[1])


def test_keyframe_is_the_frame_with_most_box_score():
    clip = Clip(1, "v", "p", "f", 0, 0.0, 3.0, "", None)
    view = inspector.ClipView(clip, np.array([0.5, 1.5, 2.5]), np.zeros((3, 4)), ["a", "b", "c"],
                              np.array([0.5, 0.45, 0.4]), np.array([0, 2, 2]), (10, 10))
    assert inspector.keyframe_index(view) == 2


def test_paths_outside_the_library_are_refused(lib_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(lib_dir, copy)
    outside = tmp_path / "elsewhere.mp4"
    video = next((lib_dir / "corpus" / "videos").glob("*.mp4"))
    shutil.copy(video, outside)
    with sqlite3.connect(copy / "catalog.sqlite") as db:
        db.execute("UPDATE videos SET path = ? WHERE video_id = ?", (str(outside), video.stem))
        db.execute("UPDATE videos SET feature_path = '../../../etc/passwd' WHERE video_id != ?",
                   (video.stem,))
    library = Library(copy)
    by_video = {r["video_id"]: library.catalog.clips_of(r["video_id"])[0]["id"]
                for r in library.catalog.videos()}
    view = inspector.clip_view(library, by_video[video.stem])
    with pytest.raises(LibraryError, match="outside the library"):
        inspector.clip_frames(library, view)
    other = next(v for v in by_video if v != video.stem)
    with pytest.raises(LibraryError, match="outside the library"):
        inspector.clip_view(library, by_video[other])
    library.close()


def test_action_head_verbs_match_a_direct_forward(library):
    video_id = library.catalog.videos()[0]["video_id"]
    model = ActBertForPretraining.from_pretrained(library.root / "models" / "actbert").eval()
    features = _features(library, video_id)
    names = list(library.manifest.verbs)
    got = inspector.action_head_verbs(model, features, [0, 2], names, top=3)
    for clip, ranked in zip([0, 2], got):
        batch = collate([clip_inputs(features, [clip], model.config.max_regions)])
        batch.pop("region_classes")
        with torch.no_grad():
            out = model(text_ids=torch.tensor([[101, 102]]), text_mask=torch.ones(1, 2, dtype=torch.long),
                        **batch)
        probs = torch.softmax(out.action_logits[0, 0], -1).numpy()
        order = np.argsort(-probs)[:3]
        assert [n for n, _ in ranked] == [names[j] for j in order]
        np.testing.assert_allclose([p for _, p in ranked], probs[order], atol=1e-4)


def test_timeline_has_every_clip_and_the_true_steps(library, lib_dir):
    video_id = library.catalog.videos()[1]["video_id"]
    clips = library.catalog.clips_of(video_id)
    head = [[("cut", 0.7)] for _ in clips]
    segments = inspector.video_timeline(library, video_id, head)
    truth = json.loads((lib_dir / "corpus" / "ground_truth" / f"{video_id}.json").read_text())["steps"]
    steps = [s for s in segments if s.track == "true steps"]
    assert [(s.start_sec, s.end_sec, s.label, s.detail) for s in steps] == [
        (pytest.approx(t["start_sec"]), pytest.approx(t["end_sec"]), t["verb"], t["description"])
        for t in truth]
    for track in ("ActBERT verbs", "verb classifier", "action backbone"):
        bars = [s for s in segments if s.track == track]
        assert [b.clip_id for b in bars] == [c["id"] for c in clips]
    assert {s.label for s in segments if s.track == "ActBERT verbs"} == {"cut"}


def test_example_queries_are_the_most_frequent_steps(library, lib_dir):
    counts = Counter()
    for path in (lib_dir / "corpus" / "ground_truth").glob("*.json"):
        counts.update(s["description"].lower() for s in json.loads(path.read_text())["steps"])
    queries = inspector.example_queries(library, n=3)
    assert len(queries) == 3
    top = max(counts.values())
    assert counts[queries[0]] == top
    assert all(counts[q] >= counts[queries[-1]] for q in queries)


def test_attention_sample_labels_every_position(library):
    model = ActBertForPretraining.from_pretrained(library.root / "models" / "actbert").eval()
    features = _features(library, library.catalog.videos()[0]["video_id"])
    sample = inspector.attention_sample(model, ActBertTokenizer(), features, 1, "stir the eggs",
                                      REGION_CLASSES)
    assert sample.tokens == ["[CLS]", "stir", "the", "eggs", "[SEP]"]
    lengths = {m.query: m.probs.shape[2] for m in sample.maps}
    assert lengths == {"text": 5, "action": 1, "region": len(sample.region_labels)}
    assert sample.region_labels[0] == "global" and len(sample.region_rows) == lengths["region"] - 1
    assert sample.kv_fusion == "stack" and 0 <= sample.match_score <= 1
    assert sample.head_probability == sample.match_score and sample.alignment_cosine is None
    assert sample.score_text() == f"matching-head probability {sample.match_score:.3f}"
    with pytest.raises(ValueError, match="empty query"):
        inspector.attention_sample(model, ActBertTokenizer(), features, 1, "  ", REGION_CLASSES)


def test_attention_sample_of_a_model_that_adds_the_alignment_cosine(library):
    """With ``match_alignment_weight`` w, the page's score is sigmoid(head margin + w * cosine)
    of the head's logits and of the clip's index vector against the query's, and says so."""
    import dataclasses
    import math

    from actbert.data import clip_batch

    model = ActBertForPretraining.from_pretrained(library.root / "models" / "actbert").eval()
    model.config = model.actbert.config = dataclasses.replace(model.config, match_alignment_weight=6.0)
    features = _features(library, library.catalog.videos()[0]["video_id"])
    tok = ActBertTokenizer()
    sample = inspector.attention_sample(model, tok, features, 1, "stir the eggs", REGION_CLASSES)
    enc = tok("stir the eggs")
    batch, _ = clip_batch(features, [1], model.config.max_regions)
    with torch.no_grad():
        logits = model(text_ids=enc.ids, text_mask=enc.mask, heads=("match",), score=False, **batch).match_logits
        cosine = float(model.encode_text(enc.ids, enc.mask)[0] @ model.encode_video(**batch)[0])
    margin = float(logits[0, 0] - logits[0, 1])
    assert sample.alignment_cosine == pytest.approx(cosine, abs=1e-5)
    assert sample.head_probability == pytest.approx(1 / (1 + math.exp(-margin)), abs=1e-5)
    assert sample.match_score == pytest.approx(1 / (1 + math.exp(-(margin + 6.0 * cosine))), abs=1e-5)
    assert sample.score_text().startswith(f"matching score {sample.match_score:.3f} = sigmoid(head margin + 6 ×")
    assert f"the head alone {sample.head_probability:.3f}" in sample.score_text()
