"""Which protocol produced each figure of an ``evaluate`` result (paper section 4.2).

- ``zero_shot``: the pretrained model (or a baseline) scores the task without training on it:
  retrieval, step localisation, the matching-head and embedding scores of video QA, the
  pretraining heads.
- ``chance``: the ``random`` and ``majority`` rows: an expectation (analytic or the mean of 100
  seeded draws, ``chance``), or always the majority label.
- ``probe``: the model stays frozen and a head is trained on the train split's outputs: the
  segmentation probe, video QA's ``accuracy_linear``, the captioning decoder.
- ``finetuned``: the model and its head were fine-tuned on the train split (``actbert finetune``);
  the rows ``*_finetuned``.

The result's ``protocols[task][system][metric]`` (``EvaluationResult.protocol``) holds one of
these for every figure.
"""

from __future__ import annotations

PROTOCOLS = ("zero_shot", "probe", "finetuned", "chance")
CHANCE_SYSTEMS = ("random", "majority")
_PROBE_TASKS = ("segmentation", "captioning")   # every other row of these trains a head
_PROBE_METRICS = {("videoqa", "accuracy_linear")}


def protocol_of(task: str, system: str, metric: str) -> str:
    if system.endswith("_finetuned"):
        return "finetuned"
    if system in CHANCE_SYSTEMS:
        return "chance"
    if task in _PROBE_TASKS:
        return "probe"
    return "probe" if (task, metric) in _PROBE_METRICS else "zero_shot"


def protocols(tables: dict[str, dict[str, dict]]) -> dict[str, dict[str, dict[str, str]]]:
    """{task: {system: {metric: protocol}}} for {task: {system: {metric: value}}}."""
    return {task: {system: {m: protocol_of(task, system, m) for m in figures}
                   for system, figures in table.items()}
            for task, table in tables.items()}
