"""Fusion from evidence: how much each narration ranking counts in hybrid search.

Hybrid search fuses the vector ranking (the clip embeddings) with two rankings of the clips'
transcripts: by their words (BM25) and by their meaning (``semantic``: the cosine of the query's and
the narration's all-MiniLM-L6-v2 sentence embeddings, ``actbert.sentence_encoder``), by reciprocal
rank fusion (Cormack et al., 2009). Plain RRF trusts the narration as much as the video even where
the narration says nothing about the query: a query for a step nobody narrates still meets clips
whose narration shares one word with it, and plain RRF lifts them above the clip the video shows.
Here each narration vote is weighed by its evidence: the BM25 vote by the share of the query's
content words the clip's narration holds (``coverage``), the semantic vote by the cosine::

    fused(c) = 1 / (k + rank_vector(c))
             + alpha    * coverage(q, c) ** gamma / (k + rank_narration(c))
             + semantic * cosine(q, c) ** gamma   / (k + rank_semantic(c))

``alpha = 1, gamma = 0, semantic = 0`` is plain RRF of the video and BM25; ``alpha = semantic = 0``
the vector ranking alone. A clip is in the BM25 ranking when its narration shares a word with the
query, in the semantic ranking when its narration's cosine is above 0. A ``shortlist`` N > 0 lets
the video choose the candidates and the narration only order them: the vector's top N clips come
first, in fused order, then every other clip in fused order (retrieve, then rerank). The narration
can then lift a clip inside the video's top N but never past it, so R@N is the vector's by
construction (a word shared with other videos' narrated steps cannot push out the clip the video
shows). ``actbert evaluate --split val`` tries the grid ``SHORTLISTS x SEMANTICS x ALPHAS x GAMMAS``
on the val queries and keeps the setting with the best R@1 over all queries among those whose R@5
on the visual-only queries (steps without an aligned narration line) is no worse than the vector
signal's (``choose``); it writes the choice beside the model as ``<checkpoint>/fusion_policy.json``.
Search and the test-split evaluation read it (``fusion_for``); a model without one, or with one
recorded for other weights, fuses by plain RRF.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .atomic import atomic_write
from .rerank_policy import weights_digest

FUSION_NAME = "fusion_policy.json"
RRF_K = 60
ALPHAS = (0.0, 0.25, 0.5, 1.0, 2.0)
GAMMAS = (0.0, 1.0, 2.0, 4.0)
SHORTLISTS = (0, 5, 10, 20)            # 0: no shortlist, every clip competes on the fused score
SEMANTICS = (0.0, 0.5, 1.0, 2.0)       # 0: the narration's meaning not used

_WORD = re.compile(r"\w+")
# Words that say nothing about what happens in a clip (articles, prepositions, pronouns).
STOP_WORDS = frozenset("""a an the and or of to in into onto on at by for from with without up down
out over off it its this that these those then now and so some all is are be you your we our i
my me he she they them his her their just""".split())


def content_words(text: str) -> frozenset[str]:
    """The lower-case words of ``text`` that are not stop words."""
    return frozenset(w for w in _WORD.findall(text.lower()) if w not in STOP_WORDS)


def coverage(query: str | frozenset[str], narration: str) -> float:
    """The share of the query's content words found in the narration, in [0, 1] (0 for a query
    without content words)."""
    words = content_words(query) if isinstance(query, str) else query
    if not words:
        return 0.0
    return len(words & content_words(narration)) / len(words)


@dataclass(frozen=True)
class FusionPolicy:
    alpha: float = 1.0                 # the narration BM25 ranking's weight
    gamma: float = 0.0                 # the power of each narration vote's evidence
    shortlist: int = 0                 # N > 0: the vector's top N first (0: none)
    semantic: float = 0.0              # the narration MiniLM ranking's weight (0: not used)
    k: int = RRF_K
    split: str | None = None           # where it was chosen (None: the default, plain RRF)
    queries: int = 0
    r1_all: float | None = None        # its R@1 over all queries of that split
    r5_visual_only: float | None = None
    r5_visual_only_vector: float | None = None
    tried: list[dict] = field(default_factory=list)
    timestamp: str | None = None
    corpus: str | None = None
    weights_sha256: str | None = None

    def narration_weight(self, cover: float) -> float:
        """The weight of a clip's narration vote given its coverage of the query."""
        return self.alpha * (cover ** self.gamma if self.gamma else 1.0)

    def semantic_weight(self, cosine: float) -> float:
        """The weight of a clip's semantic vote given the cosine of its narration and the query."""
        return self.semantic * (max(cosine, 0.0) ** self.gamma if self.gamma else 1.0)

    def describe(self) -> str:
        if self.split is None:
            return "plain reciprocal rank fusion (no fusion policy recorded)"
        within = f" inside the vector's top {self.shortlist}" if self.shortlist and (self.alpha or self.semantic) \
            else ""
        meaning = f" + narration MiniLM weight {self.semantic:g} x cosine^{self.gamma:g}" if self.semantic else ""
        return (f"narration weight {self.alpha:g} x coverage^{self.gamma:g}{meaning}{within} (chosen on {self.split}: "
                f"R@1 {self.r1_all:.1f}, visual-only R@5 {self.r5_visual_only:.1f} vs vector "
                f"{self.r5_visual_only_vector:.1f})")


PLAIN_RRF = FusionPolicy()


def fuse(vector_order: list[int], narration_order: list[int], weights: dict[int, float],
         k: int = RRF_K, semantic_order: list[int] = (), semantic_weights: dict[int, float] | None = None
         ) -> dict[int, float]:
    """Weighted RRF of the rankings (ranks from 1): the vector list counts 1, each narration hit
    ``weights[clip]`` (1 when absent), each semantic hit ``semantic_weights[clip]`` (1 when absent)."""
    fused: dict[int, float] = {}
    for rank, item in enumerate(vector_order, start=1):
        fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank)
    for order, weight in ((narration_order, weights), (semantic_order, semantic_weights or {})):
        for rank, item in enumerate(order, start=1):
            fused[item] = fused.get(item, 0.0) + weight.get(item, 1.0) / (k + rank)
    return fused


def shortlisted_first(fused: dict[int, float], vector_order: list[int], shortlist: int) -> list[int]:
    """The clips of ``fused`` in hybrid order: with ``shortlist`` N > 0 the vector's top N first,
    each part by fused score (ties keep ``fused``'s order); N = 0 by fused score alone."""
    front = set(vector_order[:shortlist]) if shortlist > 0 else set()
    return sorted(fused, key=lambda c: (c in front, fused[c]), reverse=True)


def choose(evaluate: Callable[[float, float, int, float], tuple[float, float]], r5_visual_vector: float,
           alphas: Iterable[float] = ALPHAS, gammas: Iterable[float] = GAMMAS,
           shortlists: Iterable[int] = SHORTLISTS, semantics: Iterable[float] = SEMANTICS
           ) -> tuple[dict, list[dict]]:
    """The setting (alpha, gamma, shortlist, semantic) with the best all-query R@1 among those
    whose visual-only R@5 is at least the vector signal's; ``evaluate(alpha, gamma, shortlist,
    semantic) -> (r1_all, r5_visual_only)``. Ties go to the first in grid order: no shortlist
    before a shortlist, smaller shortlists, smaller semantic weights (the narration's words alone
    first), smaller alpha, then smaller gamma. alpha = semantic = 0 is the vector ranking itself
    (whatever the shortlist and gamma: tried once), so a setting always qualifies. Returns the
    choice as keyword arguments of ``FusionPolicy`` and every row tried."""
    alphas, gammas, semantics = list(alphas), list(gammas), list(semantics)
    tried, best = [], None
    settings = [(0, 0.0, 0.0, 0.0)] + [(n, a, g, s) for n in shortlists for s in semantics for a in alphas
                                       if a or s for g in gammas]
    for shortlist, alpha, gamma, semantic in settings:
        r1, r5_visual = evaluate(alpha, gamma, shortlist, semantic)
        ok = r5_visual >= r5_visual_vector - 1e-9
        tried.append({"alpha": alpha, "gamma": gamma, "shortlist": shortlist, "semantic": semantic,
                      "r1_all": round(r1, 4), "r5_visual_only": round(r5_visual, 4), "qualifies": ok})
        if ok and (best is None or r1 > best[0] + 1e-9):
            best = (r1, alpha, gamma, shortlist, semantic)
    if best is None:  # only when the vector row itself was not offered
        raise ValueError("no fusion setting keeps the visual-only R@5 of the vector signal")
    return dict(zip(("alpha", "gamma", "shortlist", "semantic"), best[1:])), tried


def make_policy(alpha: float, gamma: float, split: str, queries: int, r1_all: float,
                r5_visual: float, r5_visual_vector: float, tried: list[dict], corpus: str,
                checkpoint: str | Path, shortlist: int = 0, semantic: float = 0.0) -> FusionPolicy:
    return FusionPolicy(
        alpha=float(alpha), gamma=float(gamma), shortlist=int(shortlist), semantic=float(semantic),
        split=split, queries=int(queries),
        r1_all=round(float(r1_all), 4), r5_visual_only=round(float(r5_visual), 4),
        r5_visual_only_vector=round(float(r5_visual_vector), 4), tried=tried,
        timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"), corpus=str(corpus),
        weights_sha256=weights_digest(checkpoint))


def write_fusion(checkpoint: str | Path, policy: FusionPolicy) -> Path:
    """Write ``<checkpoint>/fusion_policy.json`` atomically; returns its path."""
    path = Path(checkpoint) / FUSION_NAME
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(asdict(policy), indent=1) + "\n"))
    return path


def read_fusion(checkpoint: str | Path) -> FusionPolicy | None:
    """The recorded fusion policy of a checkpoint; None when there is none or it is unreadable."""
    path = Path(checkpoint) / FUSION_NAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        return FusionPolicy(**{k: v for k, v in data.items() if k in FusionPolicy.__dataclass_fields__})
    except (OSError, ValueError, TypeError):
        return None


def fusion_for(checkpoint: str | Path | None) -> FusionPolicy:
    """The fusion search uses with this model: its recorded policy when it was measured on these
    weights, plain RRF otherwise."""
    if checkpoint is None:
        return PLAIN_RRF
    policy = read_fusion(checkpoint)
    if policy is None or policy.weights_sha256 != weights_digest(checkpoint):
        return PLAIN_RRF
    return policy
