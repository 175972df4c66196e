"""ActBERT's own figures in the paper (section 4.2, Tables 1-5), as data: one row per benchmark,
task, system and metric, in the paper's order; and the figures PaddleVideo's model zoo reports for
the released checkpoint on MSR-VTT (``actbert evaluate-msrvtt`` prints them beside its own).

A result is compared with the paper's figures only when it was measured on the benchmark they
were measured on (``benchmark_of``): on any other corpus (SynthKitchen, a user's library) they are
not comparable.
"""

from __future__ import annotations

from dataclasses import dataclass

from .registry import BENCHMARKS


@dataclass(frozen=True)
class PaperFigure:
    benchmark: str   # a ``registry`` name
    task: str        # an ``evaluate`` task
    system: str
    metric: str
    value: float     # as the paper prints it: a median rank is a whole number (an int)


FIGURES = (
    PaperFigure("youcook2", "retrieval", "actbert", "r1", 9.6),
    PaperFigure("youcook2", "retrieval", "actbert", "r5", 26.7),
    PaperFigure("youcook2", "retrieval", "actbert", "r10", 38.0),
    PaperFigure("youcook2", "retrieval", "actbert", "median_rank", 19),
    PaperFigure("youcook2", "captioning", "actbert", "bleu3", 8.66),
    PaperFigure("youcook2", "captioning", "actbert", "bleu4", 5.41),
    PaperFigure("youcook2", "captioning", "actbert", "meteor", 13.30),
    PaperFigure("youcook2", "captioning", "actbert", "rouge_l", 30.56),
    PaperFigure("youcook2", "captioning", "actbert", "cider", 0.65),
    PaperFigure("msrvtt", "retrieval", "actbert", "r1", 8.6),
    PaperFigure("msrvtt", "retrieval", "actbert", "r5", 23.4),
    PaperFigure("msrvtt", "retrieval", "actbert", "r10", 33.1),
    PaperFigure("msrvtt", "retrieval", "actbert", "median_rank", 36),
    PaperFigure("msrvtt", "videoqa", "actbert", "accuracy", 48.6),
    PaperFigure("coin", "segmentation", "actbert", "frame_accuracy", 56.95),
    PaperFigure("coin", "segmentation", "actbert_no_regions", "frame_accuracy", 52.10),
    PaperFigure("crosstask", "step_localization", "actbert", "recall", 41.4),
    PaperFigure("crosstask", "step_localization", "actbert_no_regions", "recall", 37.1),
)
SECTIONS = {"captioning": "4.2.2", "segmentation": "4.2.3", "step_localization": "4.2.4",
            "retrieval": "4.2.5", "videoqa": "4.2.6"}
# PaddleVideo's model zoo: the released checkpoint, zero-shot MSR-VTT 1k-A (its own protocol,
# ``actbert.paddle.parity``), not the paper's Table 4 row above.
RELEASED_CHECKPOINT_MSRVTT = {"r1": 8.6, "r5": 31.2, "r10": 45.5, "median_rank": 13.0, "mean_rank": 28.5}


def _by_benchmark() -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    table: dict = {}
    for f in FIGURES:
        table.setdefault(f.benchmark, {}).setdefault(f.task, {}).setdefault(f.system, {})[f.metric] = f.value
    return table


# {benchmark: {task: {system: {metric: value}}}}, in the order of ``FIGURES``.
PAPER: dict[str, dict[str, dict[str, dict[str, float]]]] = _by_benchmark()


def paper_figures(benchmark: str) -> dict[str, dict[str, dict[str, float]]]:
    """{task: {system: {metric: the paper's value}}} measured on ``benchmark``."""
    return PAPER[benchmark]


def benchmark_of(dataset: str | None) -> str | None:
    """The paper benchmark a result was measured on, from its ``dataset`` (``--dataset``;
    ``EvaluationResult.dataset``), None for any other corpus (SynthKitchen, a user's library): the
    paper's numbers then do not apply."""
    dataset = str(dataset or "").lower().replace("-", "")
    return dataset if dataset in PAPER else None


def paper_references(task: str, benchmark: str | None) -> dict[str, dict[str, float]]:
    """{system: {metric: paper value}} for a task measured on ``benchmark`` ({} when none)."""
    if benchmark is None:
        return {}
    return PAPER.get(benchmark, {}).get(task, {})  # retrieval_visual_only: none


def paper_rows() -> list[dict]:
    """Every paper number as a row: task, benchmark, system, metric, value, section."""
    return [{"task": f.task, "benchmark": BENCHMARKS[f.benchmark].title, "system": f.system,
             "metric": f.metric, "value": f.value, "section": SECTIONS[f.task]} for f in FIGURES]
