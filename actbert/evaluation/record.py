"""An evaluation kept beside the model it measured, so the explorer shows it without recomputing.

``actbert evaluate`` writes ``<checkpoint>/evaluation_<split>.json`` (``evaluation_<dataset>_<split>
.json`` for a ``--dataset`` run; atomically, as the rerank policy): the ``EvaluationResult`` that
``--json`` prints, with its ``Provenance``: ``command`` (the command line that produced it),
``timestamp`` (UTC), ``corpus`` and ``weights_sha256`` (of the weights it measured, so a reader can
tell a record made for other weights). A later evaluation of the same split replaces it.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from ..atomic import atomic_write
from ..rerank_policy import weights_digest
from .result import EvaluationResult, Provenance

log = logging.getLogger(__name__)

PATTERN = "evaluation_{split}.json"
_NAME = re.compile(r"evaluation_([a-z0-9_-]+)\.json")


def evaluation_path(checkpoint: str | Path, split: str) -> Path:
    return Path(checkpoint) / PATTERN.format(split=split)


def write_evaluation(checkpoint: str | Path, result: EvaluationResult, command: str,
                     corpus: str) -> Path:
    """Write ``result`` with its provenance beside the model."""
    record = replace(result, provenance=Provenance(
        command, datetime.now(timezone.utc).isoformat(timespec="seconds"), str(corpus),
        weights_digest(checkpoint)))
    # a paper benchmark's run keeps its own file: evaluation_coin_test.json
    path = evaluation_path(checkpoint, "_".join(filter(None, [result.dataset, result.split])))
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(record.to_json(), indent=1) + "\n"))
    return path


def read_evaluations(checkpoint: str | Path) -> dict[str, EvaluationResult]:
    """{split: record} of the evaluations recorded beside a checkpoint ({} when none); a file
    that cannot be read as an evaluation result is skipped (and logged)."""
    folder = Path(checkpoint)
    out = {}
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("evaluation_*.json")):
        match = _NAME.fullmatch(path.name)
        if not match:
            continue
        try:
            out[match.group(1)] = EvaluationResult.from_json(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:  # unreadable, not JSON, or EvaluationFormatError
            log.warning("skipping %s: %s", path, exc)
    return out
