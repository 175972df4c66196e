"""The result of ``actbert evaluate`` as one typed record: what ``--json`` prints, what
``evaluation_<split>.json`` keeps beside the model (``record``) and what every reader (the known
limits, the tables and charts, the report card, the explorer's Model page) reads.

The JSON is the contract (docs/evaluation.md, "Schema of the result JSON"), and this type keeps it
unchanged: ``EvaluationResult.from_json(d).to_json() == d`` with the keys in the same order, so a
record read and printed again is the same bytes. Its entries:

- the task tables ``{task: {system: {metric: value}}}`` (``tables``; every entry that is an object of
  objects and no other key below is a task, so a task added later is read without a change here);
- ``attribution`` (``attribution_summary.AttributionSummary``'s JSON, not a table), ``protocols``,
  ``ci`` (``ci[task][system][metric] = [low, high]``; the paired intervals under
  ``ci[task]["diff:a-b"]``), ``differences`` (``differences[task]["a-b"][metric]``), ``timings_s``,
  ``notes``, ``info`` and, for a ``--dataset`` run, ``paper``;
- in the copy kept beside the model, its ``Provenance``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

Table = dict[str, dict[str, float | None]]     # {system: {metric: value}}; None: not measured
Interval = list[float]                         # [low, high], 95%
DIFF = "diff:"                                 # ci[task]["diff:a-b"]: the paired intervals of a - b
_OBJECTS = ("attribution", "protocols", "ci", "differences", "timings_s", "info", "paper")


class EvaluationFormatError(ValueError):
    """A JSON value that is not an ``actbert evaluate`` result; the message says what is wrong."""


@dataclass(frozen=True)
class Provenance:
    """Where a result kept beside the model came from (``record.write_evaluation``); all None for a
    result that was only printed."""

    command: str | None = None          # the command line, without this machine's folders
    timestamp: str | None = None        # UTC, ISO 8601
    corpus: str | None = None
    weights_sha256: str | None = None   # of the weights measured: a reader tells a stale record


@dataclass
class EvaluationResult:
    """One ``evaluate`` result (module docstring). ``info`` stays the JSON object (``split``,
    ``videos``, ``clips``, ``checkpoint``, ``dataset``, ``bootstrap``, ...), with properties for what
    the readers need; ``extra`` holds keys this version does not know, kept as read."""

    tables: dict[str, Table]            # by task, in RESULT_TASKS order; {}: nothing to score
    protocols: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    ci: dict[str, dict[str, dict[str, Interval]]] = field(default_factory=dict)
    differences: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    info: dict = field(default_factory=dict)
    attribution: dict | None = None     # AttributionSummary's JSON (--tasks attribution)
    paper: dict[str, Table] | None = None   # --dataset: the paper's rows on that benchmark
    provenance: Provenance = field(default_factory=Provenance)
    extra: dict = field(default_factory=dict)
    # The keys as read: to_json gives them back in this order (older records order them otherwise).
    key_order: tuple[str, ...] = field(default=(), repr=False, compare=False)

    # --- the tasks ---------------------------------------------------------------------------
    def task_tables(self) -> dict[str, Table]:
        """{task: {system: {metric: value}}} of the non-empty tables, in the result's order."""
        return {task: table for task, table in self.tables.items() if table}

    def table(self, task: str) -> Table:
        return self.tables.get(task) or {}

    def intervals(self, task: str) -> dict[str, dict[str, Interval]]:
        """{system: {metric: [low, high]}} of a task (no paired entries; {} without intervals)."""
        return {s: v for s, v in self.ci.get(task, {}).items() if not s.startswith(DIFF)}

    def interval(self, task: str, system: str, metric: str) -> Interval | None:
        return self.ci.get(task, {}).get(system, {}).get(metric)

    def paired_differences(self, task: str) -> dict[str, dict[str, float]]:
        """{"a-b": {metric: a - b}}: the point values of a task's paired differences."""
        return self.differences.get(task, {})

    def difference_intervals(self, task: str, pair: str) -> dict[str, Interval]:
        """{metric: [low, high]} of the paired difference ``pair`` ("a-b") of a task."""
        return self.ci.get(task, {}).get(DIFF + pair, {})

    def protocol(self, task: str, system: str, metric: str) -> str | None:
        """``zero_shot``, ``probe``, ``finetuned`` or ``chance`` (``protocols``); None: not recorded."""
        return self.protocols.get(task, {}).get(system, {}).get(metric)

    def timing(self, task: str) -> float | None:
        return self.timings_s.get(task)

    def resampled(self, task: str) -> str | None:
        """What the task's bootstrap resampled ("66 videos (301 queries)"); None: no intervals."""
        return self.info.get("bootstrap", {}).get("resampled", {}).get(task)

    # --- what was evaluated --------------------------------------------------------------------
    @property
    def split(self) -> str | None:
        return self.info.get("split")

    @property
    def dataset(self) -> str | None:
        """The paper benchmark evaluated (``--dataset``); None for a library's own corpus."""
        return self.info.get("dataset")

    @property
    def videos(self) -> int | None:
        return self.info.get("videos")

    @property
    def clips(self) -> int | None:
        return self.info.get("clips")

    @property
    def checkpoint(self) -> str | None:
        return self.info.get("checkpoint")

    @property
    def ablation_checkpoint(self) -> str | None:
        return self.info.get("ablation_checkpoint")

    # --- JSON ----------------------------------------------------------------------------------
    def to_json(self) -> dict:
        """The result's JSON object (sharing its nested objects): the tasks, ``attribution``,
        ``protocols``, ``ci``, ``differences``, ``timings_s``, ``notes``, ``info``, ``paper``, then
        the provenance; a result read by ``from_json`` keeps the order it was read in, and a
        section it lacked stays absent while empty."""
        full = {**self.tables, **_present(attribution=self.attribution),
                "protocols": self.protocols, "ci": self.ci, "differences": self.differences,
                "timings_s": self.timings_s, "notes": self.notes, "info": self.info,
                **_present(paper=self.paper), **self.extra, **_present(**asdict(self.provenance))}
        if not self.key_order:
            return full
        kept = {k: full[k] for k in self.key_order if k in full}
        return {**kept, **{k: v for k, v in full.items() if k not in kept and v not in ({}, [])}}

    @classmethod
    def from_json(cls, data: object) -> EvaluationResult:
        """Read ``evaluate``'s JSON object; raises ``EvaluationFormatError`` (one line) for a value
        of another shape."""
        problem = _shape_problem(data)
        if problem:
            raise EvaluationFormatError(f"not an `actbert evaluate` result: {problem}")
        sections = {k: data[k] for k in (*_OBJECTS, "notes") if k in data}
        provenance = {k: data[k] for k in Provenance.__dataclass_fields__ if k in data}
        rest = {k: v for k, v in data.items() if k not in sections and k not in provenance}
        tables = {k: v for k, v in rest.items()
                  if isinstance(v, dict) and all(isinstance(f, dict) for f in v.values())}
        return cls(tables=tables, **sections, provenance=Provenance(**provenance),
                   extra={k: v for k, v in rest.items() if k not in tables}, key_order=tuple(data))


def _present(**entries) -> dict:
    """The entries that are not None (optional sections, provenance)."""
    return {k: v for k, v in entries.items() if v is not None}


def _shape_problem(data: object) -> str | None:
    """Why ``data`` is not a result's JSON (None when it is): an object with an ``info`` object,
    its sections of the right JSON types."""
    if not isinstance(data, dict):
        return f"a JSON {type(data).__name__}, not an object"
    if not isinstance(data.get("info"), dict):
        return "no 'info' object"
    wrong = [k for k in _OBJECTS if k in data and not isinstance(data[k], dict)]
    wrong += ["notes"] if "notes" in data and not isinstance(data["notes"], list) else []
    return f"{', '.join(map(repr, wrong))} of the wrong type" if wrong else None
