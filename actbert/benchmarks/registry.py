"""The paper's benchmarks by name (``evaluate --dataset NAME``), in the order the command lists
them: each one's title, the paper's tasks on it, and how its annotation files become the videos of
a corpus (``corpus.benchmark_corpus``). One module per benchmark holds its readers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import coin, crosstask, msrvtt, youcook2
from .annotations import BenchmarkVideo


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str                  # as the paper names it
    tasks: tuple[str, ...]      # the ``evaluate`` tasks the paper reports on it
    corpus_videos: Callable[[Path], list[BenchmarkVideo]]  # its annotation file or folder -> videos


BENCHMARKS = {b.name: b for b in (
    Benchmark("youcook2", "YouCook2", youcook2.TASKS, youcook2.corpus_videos),
    Benchmark("msrvtt", "MSR-VTT", msrvtt.TASKS, msrvtt.corpus_videos),
    Benchmark("crosstask", "CrossTask", crosstask.TASKS, crosstask.corpus_videos),
    Benchmark("coin", "COIN", coin.TASKS, coin.corpus_videos),
)}
DATASETS = tuple(BENCHMARKS)
