"""Recall of an IVF clip index against exact search: per-query search parameters, an exact numpy
top-k, and the ``nprobe`` calibration that ``ClipIndex.build`` runs."""

from __future__ import annotations

import logging

import faiss
import numpy as np

logger = logging.getLogger(__name__)

CALIBRATION_QUERIES = 256


def ivf_params(nprobe: int) -> faiss.SearchParametersIVF:
    """Search ``nprobe`` lists; the HNSW coarse quantiser explores ``2 * nprobe`` candidates so that it
    really returns the ``nprobe`` nearest lists (at its default ``efSearch`` of 16 it misses some)."""
    return faiss.SearchParametersIVF(nprobe=nprobe, quantizer_params=faiss.SearchParametersHNSW(
        efSearch=max(16, 2 * nprobe)))


def calibrate_nprobe(index: faiss.Index, x: np.ndarray, labels: np.ndarray, target: float, seed: int,
                     k: int = 10) -> int:
    """Smallest power-of-two ``nprobe`` with recall@k >= ``target`` for stored vectors as queries.

    Each sampled vector is searched for ``k + 1`` neighbours and itself dropped; the exact answer is
    a numpy brute force over all of ``x`` ``(N, D)``. Returns ``nlist`` when no smaller value suffices.
    """
    ivf = faiss.extract_index_ivf(index)
    rows = np.random.default_rng(seed + 1).choice(len(x), min(CALIBRATION_QUERIES, len(x)), replace=False)
    truth = exact_top_k(x[rows], x, k + 1)
    truth_ids = [set(labels[t[t != r]][:k].tolist()) for t, r in zip(truth, rows)]
    nprobe, recall = 1, 0.0
    while True:
        _, found = index.search(x[rows], k + 1, params=ivf_params(nprobe))
        hits = [len(truth_ids[i] & set(found[i][found[i] != labels[r]][:k].tolist())) for i, r in enumerate(rows)]
        recall = sum(hits) / max(1, sum(len(t) for t in truth_ids))
        logger.info("nprobe %d: recall@%d %.3f", nprobe, k, recall)
        if recall >= target or nprobe >= ivf.nlist:
            break
        nprobe = min(nprobe * 2, ivf.nlist)
    if recall < target:
        logger.warning("recall@%d is %.3f < %.2f even visiting every list", k, recall, target)
    return nprobe


def exact_top_k(queries: np.ndarray, x: np.ndarray, k: int, chunk: int = 65536) -> np.ndarray:
    """Row positions ``(Q, k)`` in ``x`` ``(N, D)`` of the ``k`` largest inner products, best first (numpy)."""
    best_s = np.full((len(queries), 0), -np.inf, np.float32)
    best_i = np.zeros((len(queries), 0), np.int64)
    for start in range(0, len(x), chunk):
        s = queries @ x[start:start + chunk].T
        take = min(k, s.shape[1])
        part = np.argpartition(-s, take - 1, axis=1)[:, :take]
        best_s = np.concatenate([best_s, np.take_along_axis(s, part, 1)], axis=1)
        best_i = np.concatenate([best_i, part + start], axis=1)
        order = np.argsort(-best_s, axis=1, kind="stable")[:, :k]
        best_s, best_i = np.take_along_axis(best_s, order, 1), np.take_along_axis(best_i, order, 1)
    return best_i
