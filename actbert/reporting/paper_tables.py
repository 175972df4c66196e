"""The paper's tables for an ``evaluate --dataset`` run: our rows with the paper's ActBERT row
printed above them (paper section 4.2, Tables 1-5; the figures are ``benchmarks.paper``).

Each table keeps the paper's columns (for example YouCook2 retrieval: R@1, R@5, R@10, MdR) and adds
each figure's 95% interval where the result has one, and the protocol of every row (``protocols``).
"""

from __future__ import annotations

from ..benchmarks.paper import paper_figures
from ..benchmarks.registry import BENCHMARKS
from ..evaluation.result import EvaluationResult

COLUMNS = {"retrieval": (("r1", "R@1"), ("r5", "R@5"), ("r10", "R@10"), ("median_rank", "MdR")),
           "captioning": (("bleu3", "BLEU-3"), ("bleu4", "BLEU-4"), ("meteor", "METEOR"),
                          ("rouge_l", "ROUGE-L"), ("cider", "CIDEr")),
           "segmentation": (("frame_accuracy", "Frame accuracy"),),
           "step_localization": (("recall", "Average recall"),),
           "videoqa": (("accuracy", "Accuracy"),)}
TITLES = {"retrieval": "text-to-video clip retrieval (4.2.5)", "captioning": "video captioning (4.2.2)",
          "segmentation": "action segmentation (4.2.3)", "step_localization":
          "action step localisation (4.2.4)", "videoqa": "multiple-choice video QA (4.2.6)"}


def _cell(value, interval) -> str:
    if value is None:
        return "-"
    text = f"{value:.2f}" if isinstance(value, float) else str(value)
    return text + (f" [{interval[0]:.1f}, {interval[1]:.1f}]" if interval else "")


def paper_table(result: EvaluationResult, dataset: str) -> str:
    """The result as the paper's tables: per task, a header of the paper's columns, the paper's
    rows (``paper: <system>``), then ours with their protocols; then the notes."""
    paper = paper_figures(dataset)
    lines = [f"ActBERT on {BENCHMARKS[dataset].title}: the paper's figures beside ours "
             f"({result.videos} evaluated videos, {result.clips} clips)"]
    for task, columns in COLUMNS.items():
        if task not in result.tables:
            continue
        ci = result.intervals(task)
        rows = [(f"paper: {s}", f, {}, "paper") for s, f in paper.get(task, {}).items()]
        rows += [(s, f, ci.get(s, {}), "/".join(sorted({result.protocol(task, s, m) or "?"
                                                        for m, _ in columns if m in f})))
                 for s, f in result.tables[task].items() if any(m in f for m, _ in columns)]
        widths = [max(len(_cell(f.get(m), i.get(m))) for _, f, i, _ in rows) for m, _ in columns]
        widths = [max(w, len(h)) for w, (_, h) in zip(widths, columns)]
        lines += ["", f"{TITLES[task]}",
                  f"  {'system':<30} {'protocol':<10} " + "  ".join(
                      h.rjust(w) for (_, h), w in zip(columns, widths))]
        for system, figures, interval, protocol in rows:
            cells = [_cell(figures.get(m), interval.get(m)).rjust(w) for (m, _), w in zip(columns, widths)]
            lines.append(f"  {system:<30} {protocol:<10} " + "  ".join(cells))
    lines += [f"note: {n}" for n in result.notes]
    return "\n".join(lines)
