"""Ingestion on Ray: the videos are analysed by Ray actors, this process commits every result.

``indexer ingest DIR --library LIB --ray [ADDRESS]`` runs ``indexer.library.ingest`` with a
``RayRunner``: each actor builds the extractors once (the models) and runs ``analyse_video``
(probe, transcript, verbs, decoding, action and region features) on the videos it is given; the
driver keeps at most ``max_in_flight`` videos submitted or finished-but-not-yet-committed
(back-pressure: the object store and the driver's memory hold at most that many videos' features),
and hands the results to the library's single writer in the order the videos were listed, so clip
ids are the ones a local run gives. The driver holds the library's writer lock for the whole run
and writes the feature files and the catalog itself; a killed driver leaves the unfinished videos
``pending`` and rerunning the command resumes, exactly as a local run.

Where the actors run: ``ADDRESS`` ``local`` (default) starts a Ray on this machine; ``auto`` joins
the cluster this machine belongs to; ``ray://host:10001`` or ``host:6379`` names one. The videos
and the weights must be readable at the same paths on every node (a shared filesystem). With
``--device cuda`` each actor takes one GPU; otherwise one CPU. The code travels with the job
(``py_modules``) to a remote cluster; a local Ray imports it from this checkout.

Only this module imports ``ray``, and only ``indexer ingest --ray`` imports this module.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from dataclasses import replace
from pathlib import Path

import ray

from indexer.library.ground_truth import readers, register_reader
from indexer.library.ingest import (
    IngestSettings,
    VideoFailure,
    VideoJob,
    analyse_or_fail,
    build_extractors,
)

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]  # the checkout holding actbert/, indexer/, synthkitchen/
# Seconds a local Ray may take to publish its GCS port. Ray waits 30 s; measured with both cores
# busy (two training processes) ray.init took 3-5 s, but with a test suite beside them it passed
# 30 s ("Timed out waiting for file .../gcs_server_port"). RAY_gcs_server_port_wait_time_s wins.
RAY_START_WAIT_SEC = 300
# Tries of ray.init: its raylet must also register with the GCS within a fixed 30 s (not
# configurable), which a machine running a suite and a generator beside it once missed; a second
# try after a clean shutdown is cheap next to a failed ingest.
RAY_START_TRIES = 2


class RayStartError(RuntimeError):
    """A local Ray did not start (within ``RAY_START_WAIT_SEC`` or for another reason)."""


def start_local(num_cpus: int | None = None, **options) -> None:
    """Start a Ray on this machine, waiting up to ``RAY_START_WAIT_SEC`` for it (a loaded machine
    is slow to start its processes); raises ``RayStartError`` with a one-line reason otherwise."""
    wait = os.environ.setdefault("RAY_gcs_server_port_wait_time_s", str(RAY_START_WAIT_SEC))
    for attempt in range(1, RAY_START_TRIES + 1):
        try:
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                     runtime_env=_local_env(), **options)
            return
        except Exception as exc:  # noqa: BLE001 - Ray raises several kinds; all mean "not started"
            ray.shutdown()
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if attempt == RAY_START_TRIES:
                raise RayStartError(f"a local Ray did not start (waited up to {wait} s, "
                                    f"RAY_gcs_server_port_wait_time_s; {attempt} tries): {reason}") from exc
            log.warning("a local Ray did not start (%s); trying again", reason)


class Analyser:
    """A Ray actor's state: the extractors, built once, and the verb tagger."""

    def __init__(self, settings: IngestSettings, ground_truth_readers: dict | None = None) -> None:
        from indexer.features.verbs import extract_verbs

        for name, reader in (ground_truth_readers or {}).items():  # the driver's, by reference
            register_reader(name, reader)
        self.settings = settings
        self.ex = build_extractors(settings)
        self.extract_verbs = extract_verbs

    def names(self) -> dict:
        return self.ex.names

    def analyse(self, job: VideoJob):
        return analyse_or_fail(job, self.settings, self.ex, self.extract_verbs)


def connect(address: str | None = "local", num_cpus: int | None = None) -> bool:
    """Join or start Ray unless this process already has; returns whether Ray runs on this machine
    only (then the workers import the code from this checkout)."""
    if ray.is_initialized():
        return _single_node()
    if address in (None, "local"):
        start_local(num_cpus)
        return True
    ray.init(address=address, log_to_driver=False, runtime_env=_remote_env())
    return False


def _local_env() -> dict:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {"env_vars": {"PYTHONPATH": path}}


def _remote_env() -> dict:
    """The code a remote cluster's workers import: ``actbert``, ``indexer`` and each package of this
    checkout that holds a registered ground-truth reader (the actors register the driver's readers
    by reference, e.g. ``synthkitchen.ground_truth``'s)."""
    packages = ["actbert", "indexer"] + sorted({reader.__module__.split(".")[0] for reader in readers().values()})
    return {"py_modules": [str(ROOT / p) for p in dict.fromkeys(packages) if (ROOT / p / "__init__.py").is_file()]}


def _single_node() -> bool:
    return len([n for n in ray.nodes() if n.get("Alive")]) == 1


class RayRunner:
    """Analyses jobs on Ray actors; ``run`` yields ``(job, result)`` in job order (see the module)."""

    def __init__(self, settings: IngestSettings, address: str | None = "local", actors: int | None = None,
                 max_in_flight: int | None = None) -> None:
        local = connect(address)
        resources = ray.cluster_resources()
        gpu = settings.device.startswith("cuda")
        if gpu and not resources.get("GPU"):
            raise RuntimeError("--device cuda with --ray: the Ray cluster reports no GPU")
        available = int(resources.get("GPU" if gpu else "CPU", 1))
        self.count = max(1, actors or available)
        self.max_in_flight = max(self.count, max_in_flight or 2 * self.count)
        options = {"num_gpus": 1, "num_cpus": 1} if gpu else {"num_cpus": 1}
        if local:
            options["runtime_env"] = _local_env()  # also when the caller started Ray (tests)
        actor = ray.remote(Analyser).options(**options)
        # Actors run the same settings; a relative weight path would be read from the worker's cwd.
        settings = replace(settings, **_absolute_paths(settings))
        self.actors = [actor.remote(settings, readers()) for _ in range(self.count)]
        self.names = ray.get(self.actors[0].names.remote())
        log.info("ingesting on %d Ray actors (%s each), at most %d videos in flight",
                 self.count, "1 GPU" if gpu else "1 CPU", self.max_in_flight)

    def run(self, jobs: list[VideoJob]):
        """Submit jobs round-robin while fewer than ``max_in_flight`` are outstanding; yield the
        oldest as soon as it is done (results come back in job order)."""
        pending = deque()  # (job, object ref), oldest first
        queue = deque(jobs)
        turn = 0
        try:
            while queue or pending:
                while queue and len(pending) < self.max_in_flight:
                    job = queue.popleft()
                    pending.append((job, self.actors[turn % self.count].analyse.remote(job)))
                    turn += 1
                job, ref = pending.popleft()
                yield job, _result(ref)
        finally:  # done, or the driver stops early: outstanding work is dropped with the actors
            for actor in self.actors:
                ray.kill(actor)


def _result(ref):
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as exc:  # the actor or its node died: this video's failure
        return VideoFailure(f"{type(exc).__name__}: {exc}".splitlines()[0][:500], 0.0)


def _absolute_paths(settings: IngestSettings) -> dict:
    fields = {}
    for name in ("detector", "detector_weights", "action_weights"):
        value = getattr(settings, name)
        if value and value not in ("default", "none") and Path(value).exists():
            fields[name] = str(Path(value).resolve())
    return fields


def ray_runner(settings: IngestSettings, address: str | None = "local", actors: int | None = None,
               max_in_flight: int | None = None):
    """A runner factory for ``indexer.library.ingest.ingest(runner=...)``."""
    return lambda: RayRunner(settings, address, actors, max_in_flight)
