"""``python -m app`` stops its Streamlit server when it is stopped (SIGTERM from a service manager,
SIGINT from a terminal), instead of leaving it serving with no parent."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads child processes from /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stopped_launcher_stops_its_server(tiny_library, signum):
    port = _free_port()
    launcher = subprocess.Popen(
        [sys.executable, "-m", "app", "--library", str(tiny_library), "--port", str(port)], cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)},  # this checkout, installed or not
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)  # its own group: only the launcher receives the signal
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with LOCAL.open(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline and launcher.poll() is None, "the server never answered"
                time.sleep(0.3)
        server = _children(launcher.pid)
        assert len(server) == 1
        launcher.send_signal(signum)
        launcher.wait(timeout=60)
        deadline = time.monotonic() + 30
        while _alive(server[0]) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(server[0]), "the Streamlit server outlived its launcher"
    finally:  # whatever is left of the session (the launcher, or a server that outlived it)
        try:
            os.killpg(launcher.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        launcher.wait()
