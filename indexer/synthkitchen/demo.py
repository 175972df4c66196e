"""The demo library: SynthKitchen, rendered, ingested, learned on and indexed, stage by stage.

``python -m indexer demo [--library DIR]`` (DIR defaults to a per-user cache folder) runs:

1. corpus: generate the SynthKitchen videos, narrations and ground truth;
2. detector: train the small detector on the train split's frames (no pretrained detector exists
   offline), and measure its mAP@0.5 on val frames;
3. ingest: the real pipeline (``fast`` preset: I3D Kinetics-400 action features, the trained
   detector's regions, spaCy verbs);
4. verbs: the paper's verb classifier on the action features (held-out top-1 beside the majority
   baseline); its predictions are stored per clip;
5. model: the ActBERT ``mini`` model shipped in ``assets/demo/actbert`` (trained once at scale on
   another, larger SynthKitchen draw: assets/README.md) and its no-region ablation, so every
   machine shows the same demo; ``--pretrain`` (or no shipped model) pretrains on this library's
   train split against the clock instead (corpus exported as ``corpus.jsonl``);
6. index: every clip embedded with the model, FAISS index written; the library records its model.

Each stage records its result in the library manifest (``demo``) and is skipped when done, so a
second run takes seconds. Everything shown for the demo comes from these stages.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from indexer.errors import LibraryError

log = logging.getLogger(__name__)

Progress = Callable[[str, float], None]

# The detector shipped in assets/demo/ was trained (``python -m indexer train-detector``, see
# assets/README.md) on the train split of the SynthKitchen corpus made with these settings. A demo
# corpus with the same seed, size and frame rate and at least as many videos contains that corpus
# (video i depends only on the seed and i), so the shipped detector saw none of its val/test frames.
ASSETS = Path(__file__).resolve().parents[2] / "assets" / "demo"
ASSET_CORPUS = {"seed": 0, "videos": 24, "size": (320, 240), "fps": 24}
SHIPPED_MODELS = {"model": ASSETS / "actbert", "model_no_regions": ASSETS / "actbert_no_regions"}


@dataclass(frozen=True)
class DemoSettings:
    videos: int = 24
    seed: int = 0
    size: tuple[int, int] = (320, 240)
    fps: int = 24
    detector_epochs: int = 6
    detector_every_n_frames: int = 24
    detector_seconds: float = 120.0    # training stops after this long (first-run budget)
    pretrain_steps: int = 2000
    pretrain_seconds: float = 360.0    # idem
    pretrain_batch: int = 8
    clips_per_sample: int = 2
    jobs: int = 2
    ablation: bool = False             # also pretrain the paper's ablation without region cues
    pretrain: bool = False             # pretrain against the clock instead of the shipped model


def default_library_dir() -> Path:
    """``$ACTBERT_CACHE/demo``, else ``~/.cache/actbert/demo``."""
    base = os.environ.get("ACTBERT_CACHE") or Path.home() / ".cache" / "actbert"
    return Path(base) / "demo"


def _stage(library, name: str, run: Callable[[], dict], progress: Progress | None,
           fraction: float) -> dict:
    done = library.manifest.get("demo", {}).get(name)
    if done:
        return done
    if progress:
        progress(name, fraction)
    t0 = time.perf_counter()
    result = run()
    result["seconds"] = round(time.perf_counter() - t0, 2)
    library.update_manifest(demo={**library.manifest.get("demo", {}), name: result})
    log.info("demo stage %s: %s", name, result)
    return result


def build_demo(library_dir: str | Path | None = None, settings: DemoSettings = DemoSettings(),
               progress: Progress | None = None) -> Path:
    """Build (or finish building) the demo library; returns its folder."""
    from indexer.library.store import Library
    from indexer.synthkitchen.ground_truth import register

    register()  # ingest and the export read the corpus's ground truth

    root = Path(library_dir) if library_dir else default_library_dir()
    library = Library.create(root, demo_settings=settings.__dict__)
    corpus = library.root / "corpus"
    detector = library.root / "models" / "detector"
    _stage(library, "corpus", lambda: _corpus(corpus, settings), progress, 0.0)
    _stage(library, "detector", lambda: _detector(corpus, detector, settings), progress, 0.15)
    _stage(library, "ingest", lambda: _ingest(library, corpus, detector), progress, 0.3)
    _stage(library, "verbs", lambda: _verbs(library, settings), progress, 0.55)
    shipped = shipped_models() if not settings.pretrain else None
    if shipped:
        _stage(library, "model", lambda: _install_models(library, shipped), progress, 0.6)
        _stage(library, "index", lambda: _index(library, shipped["model"]), progress, 0.95)
    else:
        if not settings.pretrain:
            log.warning("no shipped model in %s: pretraining on the demo library instead", ASSETS)
        _stage(library, "pretrain", lambda: _pretrain(library, settings), progress, 0.6)
        _stage(library, "index", lambda: _index(library), progress, 0.95)
        if settings.ablation:
            _stage(library, "pretrain_no_regions", lambda: _pretrain(library, settings, regions=False),
                   progress, 0.97)
    if progress:
        progress("ready", 1.0)
    return library.root


def _corpus(corpus: Path, s: DemoSettings) -> dict:
    from indexer.synthkitchen.corpus import generate

    paths = generate(corpus, s.videos, s.seed, size=s.size, fps=s.fps, jobs=s.jobs)
    return {"videos": len(paths)}


def shipped_detector(s: DemoSettings) -> Path | None:
    """assets/demo/detector.safetensors when it applies to this demo corpus: the same frame size
    and rate (any seed: another draw's frames are frames it never saw; with seed 0 it saw only
    the train split of the first 24 videos, see ASSET_CORPUS)."""
    weights = ASSETS / "detector.safetensors"
    same = (tuple(s.size), s.fps) == (ASSET_CORPUS["size"], ASSET_CORPUS["fps"])
    return weights if weights.is_file() and same else None


def shipped_models() -> dict[str, Path] | None:
    """The shipped ActBERT model and its no-region ablation (assets/demo/actbert*), when present."""
    ok = all((path / "model.safetensors").is_file() for path in SHIPPED_MODELS.values())
    return dict(SHIPPED_MODELS) if ok else None


def _install_models(library, shipped: dict[str, Path]) -> dict:
    """Record the shipped models in the library (``model_no_regions`` is what ``actbert evaluate``
    uses as the ablation); the index stage records ``model``."""
    library.update_manifest(model_no_regions={"checkpoint": str(shipped["model_no_regions"])})
    provenance = ASSETS / "actbert.json"
    info = json.loads(provenance.read_text()) if provenance.is_file() else {}
    return {"source": "assets/demo", "checkpoint": str(shipped["model"]),
            "ablation": str(shipped["model_no_regions"]), "trained": info.get("trained", {})}


def _detector(corpus: Path, out: Path, s: DemoSettings) -> dict:
    import shutil

    from indexer.features.detector import evaluate_map, load_detector
    from indexer.synthkitchen.detector_train import (
        synthkitchen_class_names,
        synthkitchen_detection_samples,
        train_detector,
    )

    names = synthkitchen_class_names(corpus)
    val = list(synthkitchen_detection_samples(corpus, "val", s.detector_every_n_frames))
    shipped = shipped_detector(s)
    if shipped is not None:  # trained beforehand on this corpus' train split (assets/README.md)
        out.parent.mkdir(parents=True, exist_ok=True)
        for suffix in (".safetensors", ".json"):
            shutil.copy(shipped.with_suffix(suffix), out.with_suffix(suffix))
        model, meta = load_detector(out.with_suffix(".safetensors"))
        return {"checkpoint": str(out.with_suffix(".safetensors")), "source": "assets/demo",
                "train_frames": meta.get("report", {}).get("num_train_frames"),
                "val_frames": len(val), "val_map50": evaluate_map(model, val) if val else None}
    train = list(synthkitchen_detection_samples(corpus, "train", s.detector_every_n_frames))
    report = train_detector(train, names, arch="tiny", epochs=s.detector_epochs, seed=s.seed,
                            out_path=out, max_train_sec=s.detector_seconds)
    map50 = evaluate_map(report["model"], val) if val else None
    return {"checkpoint": str(report["checkpoint"]), "train_frames": len(train),
            "val_frames": len(val), "val_map50": map50}


def _ingest(library, corpus: Path, detector: Path) -> dict:
    from indexer.library.ingest import IngestSettings, ingest

    checkpoint = detector if detector.suffix == ".safetensors" else detector.with_suffix(".safetensors")
    settings = IngestSettings(preset="fast", detector=str(checkpoint))
    summary = ingest(library, [corpus / "videos"], settings, progress=False)
    if summary["failed"]:
        raise LibraryError(f"demo ingest failed for {summary['errors']}")
    return {k: summary[k] for k in ("videos", "done", "failed")}


def _verbs(library, s: DemoSettings) -> dict:
    from indexer.library.verb_training import train_actions

    report = train_actions(library, seed=s.seed)
    return {k: report.get(k) for k in ("verbs", "held_out_clips", "held_out_top1",
                                       "held_out_majority_top1", "train_top1")}


def _pretrain(library, s: DemoSettings, regions: bool = True) -> dict:
    """ActBERT ``mini`` on the train split; ``regions=False`` is the paper's ablation (recorded in
    the manifest as ``model_no_regions``, which ``python -m actbert evaluate`` uses)."""
    from actbert.pretraining.train import TrainConfig, train
    from indexer.library.export import export_corpus

    corpus = export_corpus(library)
    out = library.root / "models" / ("pretrain" if regions else "pretrain_no_regions")
    summary = train(TrainConfig(corpus=str(corpus), out=str(out), preset="mini",
                                clips_per_sample=s.clips_per_sample, batch_size=s.pretrain_batch,
                                steps=s.pretrain_steps, max_seconds=s.pretrain_seconds, lr=1e-4,
                                warmup_steps=20, seed=s.seed, checkpoint_every=100,
                                use_regions=regions, progress=False))
    if not regions:
        library.update_manifest(model_no_regions={
            "checkpoint": str(Path(summary["checkpoint"]).relative_to(library.root))})
    return {"steps": summary["steps"], "final": summary["final"],
            "samples_per_s": summary["samples_per_s"], "checkpoint": summary["checkpoint"]}


def _index(library, checkpoint: Path | None = None) -> dict:
    from indexer.index.embed import set_library_model
    from indexer.index.search import build_index

    model = set_library_model(library, checkpoint or library.root / "models" / "pretrain" / "last")
    index = build_index(library)
    return {"vectors": len(index), "model": model}
