"""SynthKitchen as detector training data: its frames and boxes against its own rendered ground truth,
(slow) the tiny detector trained on them, and the ``train-detector`` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from indexer.cli import build_parser
from indexer.features.detector import build_detector, evaluate_map
from indexer.features.detector_train import train_detector
from indexer.features.regions import RegionExtractor
from synthkitchen.corpus import OBJECT_CLASSES, generate, plan_video
from synthkitchen.detection import synthkitchen_class_names, synthkitchen_detection_samples
from synthkitchen.render import render_frames

SMALL = dict(size=(160, 128), fps=12, step_sec=(1.5, 2.5))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synthkitchen_det")
    generate(out, 8, 0, **SMALL)  # seed 0: videos 0, 2..7 train, video 1 test
    return out


def test_synthkitchen_samples_match_the_rendered_ground_truth(corpus: Path) -> None:
    assert synthkitchen_class_names(corpus) == OBJECT_CLASSES
    samples = list(synthkitchen_detection_samples(corpus, "test", every_n_frames=10))
    p = plan_video(1, 0, **SMALL)
    assert p.split == "test" and len(samples) == len(range(0, p.n_frames, 10))
    rendered = [(img, b, c) for i, (img, b, c, _) in enumerate(render_frames(p)) if i % 10 == 0]
    for (frame, boxes, labels), (image, gt_boxes, gt_classes) in zip(samples, rendered):
        assert frame.shape == (128, 160, 3) and frame.dtype == np.uint8
        keep = ((gt_boxes[:, 2] - gt_boxes[:, 0]) >= 2) & ((gt_boxes[:, 3] - gt_boxes[:, 1]) >= 2)
        np.testing.assert_allclose(boxes, gt_boxes[keep], atol=1e-4)
        np.testing.assert_array_equal(labels, gt_classes[keep].astype(np.int64) + 1)
        assert np.abs(frame.astype(int) - image).mean() < 6  # the decoded frame is the rendered one (H.264)
    assert sum(1 for _ in synthkitchen_detection_samples(corpus, None, every_n_frames=1000)) == 8
    with pytest.raises(FileNotFoundError, match="not a SynthKitchen corpus"):
        list(synthkitchen_detection_samples(corpus / "videos", "train"))


@pytest.mark.slow
def test_tiny_detector_learns_synthkitchen(corpus: Path, tmp_path: Path) -> None:
    names = synthkitchen_class_names(corpus)
    train = list(synthkitchen_detection_samples(corpus, "train", every_n_frames=6))
    test = list(synthkitchen_detection_samples(corpus, "test", every_n_frames=4))
    torch.manual_seed(0)
    untrained = evaluate_map(build_detector("tiny", len(names) + 1, min_size=128, max_size=160), test)
    report = train_detector(train, names, arch="tiny", epochs=2, batch_size=4, lr=3e-3, seed=0, min_size=128,
                            max_size=160, representation_size=256, box_batch_size_per_image=64,
                            out_path=tmp_path / "det", val_samples=test)
    # a fixed 120 steps (not a time budget) so the result does not depend on the machine's load: about
    # 25 s on 2 cores with light load, minutes when other jobs hold the cores
    assert report["steps"] == 120
    trained = report["val_map50"]
    assert trained > 0.1 and trained > 5 * untrained + 0.05, (trained, untrained, report["steps"])
    print(f"detector: mAP@0.5 {trained:.3f} after {report['steps']} steps (untrained {untrained:.3f})")
    # the checkpoint loads into the region extractor, whose class distribution agrees with the detections
    extractor = RegionExtractor(report["checkpoint"], score_threshold=0.3, max_boxes=5)
    frames = np.stack([s[0] for s in test[:6]])
    agree, total = 0, 0
    for r in extractor(frames):
        assert r.features.shape == (len(r), 256) and (r.scores > 0.3).all()
        agree += int((r.class_probs[:, 1:].argmax(1) + 1 == r.labels).sum())
        total += len(r)
    assert total > 0 and agree >= 0.8 * total


def test_train_detector_cli(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = build_parser().parse_args(["train-detector", "--corpus", str(corpus), "--out", str(tmp_path / "cli"),
                              "--epochs", "1", "--batch-size", "8", "--every-n-frames", "1000", "--min-size", "96",
                              "--max-size", "128",
                              "--json"])
    assert args.func(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["steps"] >= 1 and Path(report["checkpoint"]).is_file() and report["num_train_frames"] > 0
    assert RegionExtractor(report["checkpoint"]).class_names[1:] == OBJECT_CLASSES
