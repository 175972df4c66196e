"""Known limits, generated from an evaluation's JSON: every comparison the model LOSES.

A summary written by hand keeps the wins and forgets the losses; this list is derived from the
result itself, so it cannot. A comparison is one metric of one task between
- an ActBERT row: every system whose name starts with ``actbert`` (the matching head, the served
  vector and hybrid search, the fine-tuned and captioning variants) except the ablation, and
- an opponent: every other row of the task (narration baselines, the dual encoder, the raw-feature
  probe, chance) and the no-region ablation ``actbert_no_regions``; a hybrid search row
  (``actbert_hybrid*``) also has its own vector signal (``actbert_vector``) as an opponent (a fusion
  that loses to one of its two inputs is a loss),
on a metric both rows report, or a model metric that measures the opponent's figure another way
(``r1_embedding``, ``accuracy_linear``, ``auc_embedding`` against an opponent's ``r1``,
``accuracy``, ``auc`` that has no such variant). The model loses when its figure is worse (lower; for a median rank,
higher). Each loss carries both figures, their 95% intervals, and the paired interval of the
difference where the result has one (``EvaluationResult.difference_intervals``), with whether it
excludes 0.

``known_limits(result)`` (an ``EvaluationResult``) returns the losses; ``markdown_lines`` renders them one per line for the
README, the Model page and ``actbert evaluate-summary``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .result import EvaluationResult

ABLATION = "actbert_no_regions"
VECTOR = "actbert_vector"       # the served embeddings: the signal a hybrid row fuses with narration


@dataclass(frozen=True)
class Loss:
    task: str
    metric: str
    system: str                     # the ActBERT row
    value: float
    interval: list[float] | None
    opponent: str
    opponent_value: float
    opponent_interval: list[float] | None
    difference_interval: list[float] | None  # paired, system - opponent (None: not in the result)
    opponent_metric: str = ""       # the opponent's figure compared (default: ``metric``)

    @property
    def lower_is_better(self) -> bool:
        return self.metric.startswith("median_rank")

    @property
    def clear(self) -> bool:
        """The paired interval of the difference excludes 0 (on the losing side)."""
        d = self.difference_interval
        return bool(d) and (d[0] > 0 if self.lower_is_better else d[1] < 0)


def is_model_row(system: str) -> bool:
    return system.startswith("actbert") and system != ABLATION


def _is_opponent(system: str, opponent: str) -> bool:
    return not is_model_row(opponent) or (opponent == VECTOR and system.startswith("actbert_hybrid"))


def _worse(value: float, other: float, metric: str) -> bool:
    return value > other if metric.startswith("median_rank") else value < other


def _base(metric: str, theirs: dict) -> str | None:
    """The opponent's figure that a model variant metric measures another way (``r1_embedding``,
    ``accuracy_linear``, ``auc_embedding`` against the opponent's ``r1``, ``accuracy``, ``auc``),
    when the opponent has no figure of the variant's own name."""
    return next((m for m in theirs if metric.startswith(m + "_")), None)


def known_limits(result: EvaluationResult) -> list[Loss]:
    """Every comparison an ActBERT row loses, in the result's task order, then metric, system
    and opponent order."""
    tables = result.task_tables()
    losses = []
    for task, table in tables.items():
        for system, figures in table.items():
            if not is_model_row(system):
                continue
            for opponent, theirs in table.items():
                if not _is_opponent(system, opponent):
                    continue
                for metric, value in figures.items():
                    theirs_metric = metric if metric in theirs else _base(metric, theirs)
                    other = theirs.get(theirs_metric)
                    if not isinstance(value, (int, float)) or not isinstance(other, (int, float)) \
                            or not _worse(value, other, metric):
                        continue
                    paired = result.difference_intervals(task, f"{system}-{opponent}")
                    losses.append(Loss(
                        task, metric, system, value, result.interval(task, system, metric), opponent,
                        other, result.interval(task, opponent, theirs_metric),
                        paired.get(metric) if theirs_metric == metric else None, theirs_metric))
    order = {t: i for i, t in enumerate(tables)}
    return sorted(losses, key=lambda x: (order[x.task], x.metric, x.system, x.opponent))


def _figure(value: float, interval: list[float] | None) -> str:
    return f"{value:.1f}" + (f" [{interval[0]:.1f}, {interval[1]:.1f}]" if interval else "")


def markdown_line(loss: Loss) -> str:
    """One loss as a Markdown bullet: task and metric, both figures with their intervals, the
    difference and its paired interval."""
    sign = ">" if loss.lower_is_better else "<"
    line = (f"- **{loss.task} · {loss.metric}**: {loss.system} {_figure(loss.value, loss.interval)} "
            f"{sign} {loss.opponent}"
            f"{'' if loss.opponent_metric in ('', loss.metric) else ' ' + loss.opponent_metric} "
            f"{_figure(loss.opponent_value, loss.opponent_interval)}"
            f"{' (lower is better)' if loss.lower_is_better else ''}; difference "
            f"{loss.value - loss.opponent_value:+.1f}")
    d = loss.difference_interval
    if d:
        line += (f", paired interval [{d[0]:.1f}, {d[1]:.1f}]"
                 f" ({'excludes 0' if loss.clear else 'includes 0'})")
    return line


def markdown_lines(result: EvaluationResult) -> list[str]:
    """The header and one line per loss (or a line saying there is none)."""
    split = "?" if result.split is None else result.split
    losses = known_limits(result)
    head = (f"Comparisons the model loses ({split} split, "
            f"{'?' if result.videos is None else result.videos} videos; 95% intervals by video): "
            f"{len(losses)}, {sum(x.clear for x in losses)} with a paired interval that excludes 0")
    return [head, *(markdown_line(x) for x in losses)] if losses else \
        [f"No comparison lost ({split} split)."]
