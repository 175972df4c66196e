"""Ranking from evidence: whether the matching-head rerank improves R@1 over the embeddings.

``actbert evaluate --split val`` measures text-to-clip R@1 of the embedding order and of the
embedding top ``rerank_k`` reordered by the matching head, and writes the outcome beside the model
as ``<checkpoint>/rerank_policy.json``::

    {"split": "val", "r1_embedding": 14.8, "r1_rerank": 7.4, "difference": -7.4,
     "difference_ci": [-18.5, 3.7], "rerank_k": 10, "rerank_helps": false, "queries": 27,
     "timestamp": "2025-01-01T12:00:00+00:00", "corpus": "/lib/corpus.jsonl",
     "weights_sha256": "..."}

``rerank_helps`` is ``r1_rerank > r1_embedding``. Search's default rerank policy ``auto`` reads it
(``decide``): rerank only when it helps, and never on a policy recorded for other weights.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

from .atomic import atomic_write
from .checkpoint import WEIGHTS_NAME

POLICY_NAME = "rerank_policy.json"


@dataclass(frozen=True)
class RerankPolicy:
    split: str
    r1_embedding: float
    r1_rerank: float
    difference: float              # r1_rerank - r1_embedding (percentage points)
    difference_ci: list[float]     # bootstrap 95% interval of the difference (paired, queries)
    rerank_k: int
    rerank_helps: bool
    queries: int
    timestamp: str
    corpus: str
    weights_sha256: str | None     # the weights it was measured on


@dataclass(frozen=True)
class Ordering:
    """How search orders the vector candidates: rerank the top ``rerank`` by the matching head
    (0: keep the embedding order), and why, in words."""

    rerank: int
    reason: str


def weights_digest(checkpoint: str | Path) -> str | None:
    """sha256 of the checkpoint's weights file (None without one), cached per file version."""
    weights = Path(checkpoint) / WEIGHTS_NAME
    if not weights.is_file():
        return None
    stat = weights.stat()
    return _digest(str(weights.resolve()), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=16)
def _digest(path: str, mtime_ns: int, size: int) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def rerank_helps(r1_rerank: float, r1_embedding: float) -> bool:
    """The rule a val run records and search follows: rerank only when it raises R@1."""
    return bool(r1_rerank > r1_embedding)


def make_policy(split: str, r1_embedding: float, r1_rerank: float, difference_ci: list[float],
                rerank_k: int, queries: int, corpus: str, checkpoint: str | Path) -> RerankPolicy:
    return RerankPolicy(
        split=split, r1_embedding=round(float(r1_embedding), 4), r1_rerank=round(float(r1_rerank), 4),
        difference=round(float(r1_rerank - r1_embedding), 4),
        difference_ci=[round(float(v), 4) for v in difference_ci], rerank_k=int(rerank_k),
        rerank_helps=rerank_helps(r1_rerank, r1_embedding), queries=int(queries),
        timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"), corpus=str(corpus),
        weights_sha256=weights_digest(checkpoint))


def write_policy(checkpoint: str | Path, policy: RerankPolicy) -> Path:
    """Write ``<checkpoint>/rerank_policy.json`` atomically; returns its path."""
    path = Path(checkpoint) / POLICY_NAME
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(asdict(policy), indent=1) + "\n"))
    return path


def read_policy(checkpoint: str | Path) -> RerankPolicy | None:
    """The recorded policy of a checkpoint, None when there is none."""
    path = Path(checkpoint) / POLICY_NAME
    if not path.is_file():
        return None
    return RerankPolicy(**json.loads(path.read_text()))


def decide(rerank: int | str, checkpoint: str | Path) -> Ordering:
    """The vector order a search uses: ``rerank`` N > 0 forces a rerank of the top N, 0 disables
    it, ``"auto"`` follows the checkpoint's recorded policy (no policy: no rerank)."""
    if rerank != "auto":
        if isinstance(rerank, bool) or not isinstance(rerank, int) or rerank < 0:
            raise ValueError(f"rerank must be 'auto' or a number >= 0, got {rerank!r}")
        if rerank == 0:
            return Ordering(0, "embeddings (rerank disabled)")
        return Ordering(rerank, f"matching head rerank of the top {rerank} (forced)")
    policy = read_policy(checkpoint)
    if policy is None:
        return Ordering(0, "embeddings (auto: no rerank policy recorded for this model; "
                           "`actbert evaluate --split val` records one)")
    if policy.weights_sha256 != weights_digest(checkpoint):
        return Ordering(0, f"embeddings (auto: the rerank policy of {policy.timestamp} was "
                           "recorded for other weights)")
    figures = (f"{policy.split} R@1: {policy.r1_rerank:.1f} vs {policy.r1_embedding:.1f}, "
               f"{policy.queries} queries")
    if policy.rerank_helps:
        return Ordering(policy.rerank_k, f"matching head rerank of the top {policy.rerank_k} "
                                         f"(auto: it improved {figures})")
    return Ordering(0, f"embeddings (auto: the matching-head rerank did not improve {figures})")
