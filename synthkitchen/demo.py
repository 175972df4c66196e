"""The demo library: SynthKitchen, rendered, ingested, learned on and indexed, video by video.

``python -m indexer demo [--library DIR]`` (DIR defaults to a per-user cache folder) runs:

1. model: the ActBERT ``mini`` model shipped in ``assets/demo/actbert`` (trained once at scale on
   a 440-video draw of seed 0, whose first videos are this demo's: it trained on their train split
   only; assets/README.md) and its no-region ablation are recorded,
   and an empty index is written, so search works from the first video on;
2. detector: the small detector shipped in ``assets/demo`` (trained on this corpus's train split);
3. videos: each SynthKitchen video is rendered (in a worker process) while the previous one is
   analysed by the real pipeline (``fast`` preset: I3D Kinetics-400 action features, the
   detector's regions, spaCy verbs) and its clips are added to the index: the explorer searches
   what is ready while the rest streams in;
4. verbs: the paper's verb classifier on the action features (held-out top-1 beside the majority
   baseline); its predictions are stored per clip;
5. detector_check: the detector's mAP@0.5 on val frames;
6. index: the index checked against the catalog (``reconcile_index``).

Without a shipped detector for these frames (another size or rate) the whole corpus is rendered
first (``corpus``) and a detector trained on its train split; without the shipped model (or with
``--pretrain``) ActBERT is pretrained on this library's train split against the clock after the
videos (``pretrain``; corpus exported as ``corpus.jsonl``) and the index built then.

The build holds the library's writer lock from start to end (one builder at a time; readers such as
the explorer need no lock) and keeps its progress in ``LIB/progress.json``
(``synthkitchen.build_progress``). Each stage records its result in the library manifest
(``demo``) and is skipped when done, and the videos stage resumes where a killed build stopped, so
a second run takes seconds. Everything shown for the demo comes from these stages.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from indexer.errors import LibraryError
from indexer.library.manifest import read_manifest
from synthkitchen import build_progress
from synthkitchen.build_progress import BuildProgress

log = logging.getLogger(__name__)

Progress = Callable[[BuildProgress], None]

# The detector shipped in assets/demo/ was trained (``python -m indexer train-detector``, see
# assets/README.md) on the train split of the SynthKitchen corpus made with these settings. A demo
# corpus with the same seed, size and frame rate and at least as many videos contains that corpus
# (video i depends only on the seed and i), so the shipped detector saw none of its val/test frames.
ASSETS = Path(__file__).resolve().parents[1] / "assets" / "demo"
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


class _Build:
    """One run of the build: its progress record (written at every change and handed to
    ``listener``) and its stages, each recorded in the manifest and skipped when done."""

    def __init__(self, library, total: int, listener: Progress | None) -> None:
        self.library = library
        self.listener = listener
        self.state = BuildProgress(pid=os.getpid(), started=time.time(), total=total)
        self.show()

    def show(self, **changes) -> None:
        self.state = build_progress.write(self.library.root, replace(self.state, **changes))
        if self.listener:
            self.listener(self.state)

    def stage(self, name: str, run: Callable[[], dict]) -> dict:
        done = self.library.manifest.demo.get(name)
        if done:
            return done
        self.show(stage=name, current=None)
        t0 = time.perf_counter()
        result = run()
        result["seconds"] = round(time.perf_counter() - t0, 2)
        self.library.update_manifest(demo={**self.library.manifest.demo, name: result})
        log.info("demo stage %s: %s", name, result)
        return result


def is_built(library_dir: str | Path) -> bool:
    """The demo library at ``library_dir`` has finished building (its manifest records ``ready``)."""
    try:
        return "ready" in read_manifest(Path(library_dir) / "library.json").demo
    except LibraryError:  # none yet, or unreadable
        return False


def build_demo(library_dir: str | Path | None = None, settings: DemoSettings = DemoSettings(),
               progress: Progress | None = None) -> Path:
    """Build (or finish building) the demo library; returns its folder. ``progress`` receives the
    build's record at every change (``TerminalProgress`` draws it on a terminal)."""
    from indexer.library.store import Library
    from synthkitchen.ground_truth import register

    register()  # ingest and the export read the corpus's ground truth

    root = Path(library_dir) if library_dir else default_library_dir()
    library = Library.create(root, demo_settings=settings.__dict__)
    with library.writing():  # one builder at a time; readers need no lock
        build = _Build(library, settings.videos, progress)
        try:
            _run(build, library, settings)
        except BaseException as exc:
            build.show(error=f"{type(exc).__name__}: {exc}".splitlines()[0][:500])
            raise
        build.stage("ready", lambda: {"total_seconds": round(time.time() - build.state.started, 2)})
        build.show(stage="ready", current=None, finished=True)
    return library.root


def _run(build: _Build, library, settings: DemoSettings) -> None:
    corpus = library.root / "corpus"
    detector = library.root / "models" / "detector"
    shipped = shipped_models() if not settings.pretrain else None
    if not shipped and not settings.pretrain:
        log.warning("no shipped model in %s: pretraining on the demo library instead", ASSETS)
    if shipped:
        build.stage("model", lambda: _install_models(library, shipped))
    if shipped_detector(settings) is not None:
        build.stage("detector", lambda: _install_detector(detector, settings))
    else:  # a detector trained on this corpus's train split: every video first
        build.stage("corpus", lambda: _corpus(corpus, settings))
        build.stage("detector", lambda: _detector(corpus, detector, settings))
    build.stage("videos", lambda: _videos(build, library, corpus, detector, settings))
    build.stage("verbs", lambda: _verbs(library, settings))
    build.stage("detector_check", lambda: _detector_check(library, corpus, settings))
    if shipped:
        build.stage("index", lambda: _check_index(library))
        return
    build.stage("pretrain", lambda: _pretrain(library, settings))
    build.stage("index", lambda: _index(library))
    if settings.ablation:
        build.stage("pretrain_no_regions", lambda: _pretrain(library, settings, regions=False))


def _corpus(corpus: Path, s: DemoSettings) -> dict:
    from synthkitchen.corpus import generate

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
    uses as the ablation; ``model`` embeds the clips) and write its empty index, so the explorer
    can search from the first analysed video on."""
    from indexer.index.embed import set_library_model
    from indexer.index.search import build_index

    library.update_manifest(model_no_regions={"checkpoint": str(shipped["model_no_regions"])})
    model = set_library_model(library, shipped["model"])
    build_index(library)  # the clips finished so far (none on a first build), naming the model
    provenance = ASSETS / "actbert.json"
    info = json.loads(provenance.read_text()) if provenance.is_file() else {}
    return {"source": "assets/demo", "checkpoint": str(shipped["model"]),
            "ablation": str(shipped["model_no_regions"]), "trained": info.get("trained", {}),
            "model": model.to_json()}


def _install_detector(out: Path, s: DemoSettings) -> dict:
    """The shipped detector (trained beforehand on this corpus's train split: assets/README.md),
    copied into the library; its mAP on val frames is measured once the videos exist."""
    import shutil

    shipped = shipped_detector(s)
    out.parent.mkdir(parents=True, exist_ok=True)
    for suffix in (".safetensors", ".json"):
        shutil.copy(shipped.with_suffix(suffix), out.with_suffix(suffix))
    meta = json.loads(out.with_suffix(".json").read_text())
    return {"checkpoint": str(out.with_suffix(".safetensors")), "source": "assets/demo",
            "train_frames": meta.get("report", {}).get("num_train_frames")}


def _detector(corpus: Path, out: Path, s: DemoSettings) -> dict:
    """A detector trained on the train split's frames (no pretrained detector exists offline)."""
    from indexer.features.detector_train import train_detector
    from synthkitchen.detection import synthkitchen_class_names, synthkitchen_detection_samples

    names = synthkitchen_class_names(corpus)
    train = list(synthkitchen_detection_samples(corpus, "train", s.detector_every_n_frames))
    report = train_detector(train, names, arch="tiny", epochs=s.detector_epochs, seed=s.seed,
                            out_path=out, max_train_sec=s.detector_seconds)
    return {"checkpoint": str(report["checkpoint"]), "train_frames": len(train)}


def _detector_check(library, corpus: Path, s: DemoSettings) -> dict:
    """The library's detector scored on the val split's frames (mAP@0.5; None without val videos)."""
    from indexer.features.detector import evaluate_map, load_detector
    from synthkitchen.detection import synthkitchen_detection_samples

    val = list(synthkitchen_detection_samples(corpus, "val", s.detector_every_n_frames))
    model, _ = load_detector(library.root / "models" / "detector.safetensors")
    return {"val_frames": len(val), "val_map50": evaluate_map(model, val) if val else None}


def _videos(build: _Build, library, corpus: Path, detector: Path, s: DemoSettings) -> dict:
    """Render the videos, shortest first, in worker processes (``jobs - 1`` of them: the other core
    analyses) and ingest each as soon as it exists: features, catalog, then its clips into the index (``ingest``
    ends by reconciling the index), so video ``i`` is searchable while ``i + 1`` renders."""
    import torch

    from indexer.library.ingest import IngestSettings, build_extractors, ingest
    from synthkitchen.corpus import generate_iter, plan_video

    settings = IngestSettings(preset="fast", detector=str(detector.with_suffix(".safetensors")))
    workers = max(1, s.jobs - 1)
    lengths = {i: plan_video(i, s.seed, size=s.size, fps=s.fps).duration_sec for i in range(s.videos)}
    order = sorted(lengths, key=lambda i: (lengths[i], i))  # the shortest first: searchable soonest
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, min(threads, (os.cpu_count() or 1) - workers)))
    started = time.time()
    build.show(videos_started=started, durations=tuple(round(lengths[i], 3) for i in order),
               finished_at=(), searchable=0, failed=0)
    errors: dict[str, str] = {}
    try:
        with generate_iter(corpus, s.videos, s.seed, size=s.size, fps=s.fps, jobs=workers,
                           order=order) as videos:
            extractors = build_extractors(settings)  # while the first video renders
            for path in videos:
                build.show(current=path.stem)
                try:
                    build_progress.write_frames(library.root, path)
                except Exception as exc:  # noqa: BLE001 - the picture is a courtesy; ingest reports real faults
                    log.warning("no progress frames of %s: %s", path.name, exc)
                summary = ingest(library, [path], settings, progress=False, extractors=extractors)
                errors.update(summary.errors)
                build.show(current=None, searchable=build.state.searchable + (not summary.failed),
                           failed=build.state.failed + bool(summary.failed),
                           finished_at=(*build.state.finished_at, round(time.time() - started, 3)))
    finally:
        torch.set_num_threads(threads)
    if errors:
        raise LibraryError(f"demo ingest failed for {errors}")
    first = build.state.finished_at[0] if build.state.finished_at else None
    return {"videos": s.videos, "done": build.state.searchable, "failed": len(errors),
            "first_searchable_sec": first}


def _verbs(library, s: DemoSettings) -> dict:
    """The verb classifier; a demo too small to have a verb often enough in its narrations (a few
    videos) records why it has none instead of failing."""
    from indexer.library.verb_training import train_actions

    try:
        report = train_actions(library, seed=s.seed)
    except ValueError as exc:
        return {"verbs": 0, "skipped": str(exc).splitlines()[0]}
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
    """Record the pretrained model and build the index with it."""
    from indexer.index.embed import set_library_model
    from indexer.index.search import build_index

    model = set_library_model(library, checkpoint or library.root / "models" / "pretrain" / "last")
    index = build_index(library)
    return {"vectors": len(index), "model": model.to_json()}


def _check_index(library) -> dict:
    """The index brought to (and checked against) the catalog's finished clips."""
    from indexer.index.reconcile import index_state, reconcile_index

    index, report = reconcile_index(library)
    state = index_state(library)
    if state["state"] != "ok":
        raise LibraryError(f"the demo index does not match its catalog: {state['problem']}")
    return {"vectors": len(index), "added": report["added"], "removed": report["removed"]}
