"""Ingestion on a local Ray (2 CPUs): the same clip ids, catalog and features as a local run; and
without ``--ray`` nothing about Ray is imported."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from actbert.data import VideoFeatures
from indexer.features.detector import build_detector, save_detector
from indexer.library.ingest import IngestSettings, ingest
from indexer.library.store import Library
from synthkitchen.corpus import generate
from synthkitchen.ground_truth import register

register()  # ingest and the corpus export read SynthKitchen's ground truth

ROOT = Path(__file__).resolve().parents[2]


def test_the_cli_and_a_local_ingest_do_not_import_ray():
    code = ("import sys; import indexer.cli, indexer.library.ingest, indexer.index.backends; "
            "from indexer.cli import build_parser; parser = build_parser(); "
            "args = parser.parse_args(['ingest', 'videos', '--library', 'lib', '--ray']); "
            "assert args.ray == 'local', args.ray; "
            "assert 'ray' not in sys.modules and 'pymilvus' not in sys.modules, 'imported'")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=600)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    out = tmp_path_factory.mktemp("ray_sk")
    generate(out, 2, seed=5, size=(128, 96), fps=8, step_sec=(1.5, 2.0))
    torch.manual_seed(0)
    detector = save_detector(build_detector("tiny", 4).eval(), out / "tiny", arch="tiny",
                             class_names=("bowl", "knife", "tomato"))
    # An unreadable file among them: it fails the same way on both runners.
    (out / "videos" / "broken.mp4").write_text("not a video\n")
    return out / "videos", IngestSettings(action_weights="none", detector=str(detector), score_threshold=0.0)


def catalog_rows(library: Library) -> list[tuple]:
    rows = []
    for video in library.catalog.videos():
        clips = [(c["id"], c["clip_index"], c["start_sec"], c["end_sec"], c["narration"], c["verbs"])
                 for c in library.catalog.clips_of(video["video_id"])]
        rows.append((video["video_id"], video["status"], (video["error"] or "")[:40], video["task"], clips))
    return rows


class DriverKilled(Exception):
    pass


def test_a_ray_run_killed_and_resumed_equals_the_local_run(tmp_path, videos):
    ray = pytest.importorskip("ray")  # installed from requirements.txt: never skipped there
    from indexer.library.ray_ingest import ray_runner, start_local

    folder, settings = videos
    local = Library.create(tmp_path / "local")
    ingest(local, [folder], settings, progress=False)
    start_local(2, object_store_memory=100 * 2**20)  # waits as long as a loaded machine needs
    try:
        remote = Library.create(tmp_path / "ray")

        def die(video_id):  # the driver dies after committing its first finished video
            if remote.catalog.video(video_id)["status"] == "done":
                raise DriverKilled(video_id)

        with pytest.raises(DriverKilled):
            ingest(remote, [folder], settings, progress=False, on_video_done=die,
                   runner=ray_runner(settings, max_in_flight=2))
        assert [v["status"] for v in remote.catalog.videos()].count("done") == 1
        summary = ingest(remote, [folder], settings, progress=False,
                         runner=ray_runner(settings, max_in_flight=2))
        assert summary.todo == 2 and summary.done == 1 and summary.failed == 1
        assert "not a video" in next(e for v, e in summary.errors.items() if "broken" in v).lower()
    finally:
        ray.shutdown()
    assert catalog_rows(remote) == catalog_rows(local)
    for video in local.catalog.videos("done"):
        a = VideoFeatures.load(local.root / video["feature_path"])
        b = VideoFeatures.load(remote.root / video["feature_path"])
        for name in ("clip_start_sec", "action_features", "action_scores", "region_features",
                     "region_boxes_xyxy", "region_classes", "region_scores", "region_clip"):
            np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=1e-4, atol=1e-4,
                                       err_msg=name)
    assert remote.manifest.extractors == local.manifest.extractors


def test_a_local_ray_that_does_not_start_in_time_is_one_line():
    """Ray's own wait for its GCS (30 s) failed the test above on a loaded machine with a
    traceback; ``start_local`` waits ``RAY_START_WAIT_SEC`` (set here to 0 s to see the refusal)
    and tries ``RAY_START_TRIES`` times, saying so, before it gives up."""
    pytest.importorskip("ray")
    code = ("from indexer.library.ray_ingest import start_local, RayStartError\n"
            "try: start_local(1)\n"
            "except RayStartError as e: print(e)\n"
            "else: print('started')")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "RAY_gcs_server_port_wait_time_s": "0"})
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("a local Ray did not start (waited up to 0 s"), done.stdout
    assert "; 2 tries)" in lines[0] and done.stderr.count("trying again") == 1, done.stderr[-2000:]


def test_a_remote_cluster_gets_the_packages_of_the_registered_readers():
    """The actors register the driver's ground-truth readers by reference, so a remote cluster's
    workers need the package holding each one (here synthkitchen, registered above)."""
    from indexer.library.ray_ingest import _remote_env

    assert _remote_env()["py_modules"] == [str(ROOT / p) for p in ("actbert", "indexer", "synthkitchen")]
