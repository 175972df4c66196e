"""A video that killed the last ingest (out of memory: the process dies, nothing is recorded) runs
after the other videos on the next run and is reported (issue 29, item 4): before, it stayed
``pending`` at the head of the queue, so every resume met it first and the good videos behind it
never finished."""

from __future__ import annotations

import pytest

from indexer.library.discovery import video_id_for
from indexer.library.ingest import INTERRUPTED, IngestSettings, LocalRunner, ingest
from indexer.library.store import Library
from synthkitchen.corpus import generate
from synthkitchen.ground_truth import register

register()  # ingest and the corpus export read SynthKitchen's ground truth

SETTINGS = IngestSettings(action_weights="none", regions=False)


class Killed(BaseException):
    """The process dying (SIGKILL by the OOM killer): nothing in ingest catches it."""


class DyingRunner(LocalRunner):
    """The local runner, in a process that dies while analysing ``victim``."""

    def __init__(self, victim: str) -> None:
        super().__init__(SETTINGS)
        self.victim = victim

    def run(self, jobs):
        for job, result in super().run(jobs):
            if job.video_id == self.victim:
                raise Killed(job.video_id)
            yield job, result


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("interrupted")
    generate(out, 3, seed=3, size=(96, 64), fps=8, step_sec=(1.5, 2.0))
    return out / "videos"


def test_a_video_that_killed_the_last_run_runs_after_the_others(tmp_path, folder):
    library = Library.create(tmp_path / "lib")
    victim = video_id_for(sorted(folder.glob("*.mp4"))[0])  # the first in job order
    with pytest.raises(Killed):
        ingest(library, [folder], SETTINGS, progress=False, runner=lambda: DyingRunner(victim))
    row = library.catalog.video(victim)
    assert (row["status"], row["error"]) == ("pending", INTERRUPTED)

    order: list[str] = []
    summary = ingest(library, [folder], SETTINGS, progress=False, on_video_done=order.append)
    assert summary.interrupted == [victim]
    assert order[-1] == victim and len(order) == 3, order
    assert summary.done == 3
    assert {v["status"] for v in library.catalog.videos()} == {"done"}
    assert all(v["error"] is None for v in library.catalog.videos())


def test_the_good_videos_finish_when_the_bad_one_kills_every_run(tmp_path, folder):
    library = Library.create(tmp_path / "lib")
    victim = video_id_for(sorted(folder.glob("*.mp4"))[0])
    for _ in range(2):
        with pytest.raises(Killed):
            ingest(library, [folder], SETTINGS, progress=False, runner=lambda: DyingRunner(victim))
    statuses = {v["video_id"]: v["status"] for v in library.catalog.videos()}
    assert statuses.pop(victim) == "pending"
    assert set(statuses.values()) == {"done"}, statuses
