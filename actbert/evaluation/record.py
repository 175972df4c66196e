"""An evaluation kept beside the model it measured, so the explorer shows it without recomputing.

``actbert evaluate`` writes ``<checkpoint>/evaluation_<split>.json`` (``evaluation_<dataset>_<split>
.json`` for a ``--dataset`` run; atomically, as the rerank policy): the same object ``--json`` prints, plus ``command`` (the command line that produced it),
``timestamp`` (UTC), ``corpus`` and ``weights_sha256`` (of the weights it measured, so a reader can
tell a record made for other weights). A later evaluation of the same split replaces it.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timezone
from pathlib import Path

from ..atomic import atomic_write
from ..rerank_policy import weights_digest

log = logging.getLogger(__name__)

PATTERN = "evaluation_{split}.json"
RECORD_KEYS = ("command", "timestamp", "corpus", "weights_sha256")
_NAME = re.compile(r"evaluation_([a-z0-9_-]+)\.json")


def evaluation_path(checkpoint: str | Path, split: str) -> Path:
    return Path(checkpoint) / PATTERN.format(split=split)


def write_evaluation(checkpoint: str | Path, result: dict, command: str, corpus: str) -> Path:
    """Write ``result`` (``evaluate``'s dictionary) with its provenance beside the model."""
    record = {**result, "command": command,
              "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "corpus": str(corpus), "weights_sha256": weights_digest(checkpoint)}
    info = result["info"]  # a paper benchmark's run keeps its own file: evaluation_coin_test.json
    path = evaluation_path(checkpoint, "_".join(filter(None, [info.get("dataset"), info["split"]])))
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(record, indent=1) + "\n"))
    return path


def read_evaluations(checkpoint: str | Path) -> dict[str, dict]:
    """{split: record} of the evaluations recorded beside a checkpoint ({} when none); a file
    that cannot be read as a JSON object is skipped (and logged)."""
    folder = Path(checkpoint)
    out = {}
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("evaluation_*.json")):
        match = _NAME.fullmatch(path.name)
        if not match:
            continue
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            log.warning("skipping %s: %s", path, exc)
            continue
        if isinstance(record, dict) and isinstance(record.get("info"), dict):
            out[match.group(1)] = record
        else:
            log.warning("skipping %s: not an evaluation record", path)
    return out


def without_record(record: dict) -> dict:
    """The ``--json`` object of a record (its provenance keys removed)."""
    return {k: v for k, v in record.items() if k not in RECORD_KEYS}
