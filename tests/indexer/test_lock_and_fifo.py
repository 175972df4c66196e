"""Nothing waits forever (issue 29, item 6): a FIFO named like a video is refused without being
opened (it would block ingest, and the writer lock with it); a writer waiting for the lock gives up
after a bound, naming the holder (pid, host, command) and how long it has held the lock, and a
stale lock says so."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from indexer.library import store
from indexer.library.store import Library, LibraryBusyError

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}

HOLD_LOCK = """
import json, os, socket, sys, time
sys.path.insert(0, {root!r})
from indexer.library.store import Library
with Library({lib!r}).writing():
    if {fake_pid}:  # the lock lives on in a process that inherited it; the recorded holder is gone
        record = {{"pid": {fake_pid}, "host": socket.gethostname(), "command": "indexer ingest v", "since": time.time() - 100}}
        os.pwrite(os.open({lib!r} + "/.lock", os.O_RDWR), json.dumps(record).encode().ljust(300), 0)
    print("held", flush=True)
    time.sleep(60)
"""


def hold(lib: Path, fake_pid: int = 0) -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", HOLD_LOCK.format(root=str(ROOT), lib=str(lib), fake_pid=fake_pid),
                              "indexer-test-holder"], stdout=subprocess.PIPE, text=True, env=ENV)
    assert child.stdout.readline().strip() == "held"
    return child


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_a_waiting_writer_gives_up_naming_the_holder(tmp_path, monkeypatch):
    Library.create(tmp_path / "lib")
    child = hold(tmp_path / "lib")
    try:
        monkeypatch.setattr(store, "WRITER_WAIT_SEC", 0.3)  # the default bound, shortened for the test
        with pytest.raises(LibraryBusyError) as caught:
            with Library(tmp_path / "lib").writing():  # no timeout given: the default bound applies
                pass
        message = str(caught.value)
        assert f"pid {child.pid} on " in message and "indexer-test-holder" in message
        assert "holding it for" in message and "stale" not in message and "\n" not in message
    finally:
        child.kill()
        child.wait()


def test_a_stale_lock_says_so(tmp_path, caplog):
    Library.create(tmp_path / "lib")
    child = hold(tmp_path / "lib", fake_pid=dead_pid())
    try:
        with pytest.raises(LibraryBusyError, match=r"holding it for 1\d\d s; stale: pid \d+ is no longer running"):
            with Library(tmp_path / "lib").writing(timeout=0.2):
                pass
    finally:
        child.send_signal(signal.SIGKILL)  # dies holding the lock: its record stays behind
        child.wait()
    with caplog.at_level(logging.WARNING), Library(tmp_path / "lib").writing(timeout=5):
        pass
    assert "taking over a stale lock" in caplog.text
    assert (tmp_path / "lib" / ".lock").read_bytes() == b""  # released cleanly: nothing stale now


def test_a_fifo_named_like_a_video_is_refused_unopened(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    os.mkfifo(videos / "pipe.mp4")
    (videos / "link.mp4").symlink_to(videos / "pipe.mp4")
    result = subprocess.run([sys.executable, "-m", "indexer", "ingest", str(videos), "--library", str(tmp_path / "lib"),
                             "--action-weights", "none", "--no-regions", "--json"],
                            cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert summary["failed"] == 1 and "not a regular file" in next(iter(summary["errors"].values()))
