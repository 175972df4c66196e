"""Terminal progress of the long commands: run on a pseudo-terminal (``pty``, 100 columns), the
tqdm bar on stderr reaches N of N; with ``--json`` (same terminal) stderr carries no bar. The real
commands: ``actbert train`` (4 steps), ``actbert evaluate`` (2 tasks) and ``indexer ingest`` (2
videos); ``indexer demo``'s bar is ``TerminalProgress`` (tests/synthkitchen/test_build_progress.py)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BAR = re.compile(r"\d+/\d+ \[")  # tqdm's "n/total [elapsed<remaining, rate]"


def on_terminal(args: list[str], timeout: float = 600) -> tuple[int, str, str]:
    """Run ``python -m ARGS`` with stdin and stderr on a pseudo-terminal (stdout piped): exit code,
    stdout, and what reached the terminal."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, env=env, stdin=slave,
                               stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 1 << 16)
        except OSError:  # EIO: the last writer closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    out = process.stdout.read().decode()
    process.wait(timeout=timeout)
    return process.returncode, out, b"".join(chunks).decode(errors="replace")


def _bars(text: str, name: str) -> list[tuple[int, int]]:
    """(n, total) of every drawing of the bar called ``name``."""
    return [(int(n), int(t)) for n, t in re.findall(rf"{re.escape(name)}[^\r\n]*?(\d+)/(\d+) \[", text)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    from tests.actbert.corpus_helpers import make_eval_corpus

    return make_eval_corpus(tmp_path_factory.mktemp("progress") / "corpus", train_videos=4, test_videos=3)


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("trained") / "run"
    code, stdout, terminal = on_terminal(["actbert", "train", "--corpus", str(corpus), "--out", str(out),
                                          "--preset", "tiny", "--steps", "4", "--batch-size", "2",
                                          "--clips-per-sample", "2"])
    assert code == 0, terminal[-2000:]
    return out, terminal


def test_train_bar_reaches_n_of_n_and_json_is_silent(corpus, trained, tmp_path):
    _, terminal = trained
    drawn = [n for n, total in re.findall(r"(\d+)/(\d+) \[", terminal) if total == "4"]
    assert drawn and drawn[-1] == "4", terminal[-2000:]
    code, stdout, quiet = on_terminal(["actbert", "train", "--corpus", str(corpus), "--out", str(tmp_path / "run"),
                                       "--preset", "tiny", "--steps", "4", "--batch-size", "2",
                                       "--clips-per-sample", "2", "--json"])
    assert code == 0 and stdout.strip().startswith("{")
    assert not BAR.search(quiet), quiet[-2000:]


def test_evaluate_bar_reaches_n_of_n_and_json_is_silent(corpus, trained):
    run, _ = trained
    args = ["actbert", "evaluate", "--corpus", str(corpus), "--checkpoint", str(run / "last"),
            "--tasks", "retrieval,videoqa", "--resamples", "10", "--threads", "1", "--no-meteor"]
    code, _, terminal = on_terminal(args)
    assert code == 0, terminal[-2000:]
    assert _bars(terminal, "evaluate")[-1] == (2, 2), terminal[-2000:]
    code, stdout, quiet = on_terminal(args + ["--json"])
    assert code == 0 and stdout.strip().startswith("{")
    assert not BAR.search(quiet), quiet[-2000:]


def test_ingest_bar_reaches_n_of_n_and_json_is_silent(tmp_path):
    from tests.app.tiny_library import make_corpus

    videos = make_corpus(tmp_path / "corpus")
    args = ["indexer", "ingest", str(videos[0].parent), "--no-regions", "--preset", "fast"]
    code, stdout, quiet = on_terminal(args + ["--library", str(tmp_path / "quiet"), "--json"])
    assert code == 0 and '"done": 2' in stdout, quiet[-2000:]
    assert not BAR.search(quiet), quiet[-2000:]
    code, _, terminal = on_terminal(args + ["--library", str(tmp_path / "shown")])
    assert code == 0, terminal[-2000:]
    assert _bars(terminal, "ingest")[-1] == (2, 2), terminal[-2000:]
