"""Ranking metrics: pure functions over score matrices and ranked lists (no data loading).

Like microsoft/recommenders' `python_evaluation.py`: each function takes arrays (scores, ranked
item indices, the relevant items as a sparse matrix) and returns per-user values, so the
evaluation of a fitted model (`recsys.evaluation`), the models' own validation and the tests
share one definition of each metric.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import scipy.sparse as sp


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k best scores per row, best first (argpartition, then a small sort)."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def mask_seen(scores: np.ndarray, seen: sp.csr_matrix) -> np.ndarray:
    """Set the scores of already-seen items to -inf in place (rows aligned with `seen`)."""
    coo = seen.tocoo()
    scores[coo.row, coo.col] = -np.inf
    return scores


def ranking_metrics(top: np.ndarray, truth: sp.csr_matrix, ks: Iterable[int]
                    ) -> dict[tuple[str, int], np.ndarray]:
    """Per-user precision, recall, F1, NDCG, hit rate, MAP and MRR at each K.

    `top` holds each user's ranked item indices (at least max(ks) columns); `truth` the relevant
    items (rows aligned). Users without relevant items must be filtered out before.
    """
    hits = np.take_along_axis(truth.toarray() > 0, top, axis=1)
    n_rel = np.asarray(truth.getnnz(axis=1), dtype=np.float64)
    out: dict[tuple[str, int], np.ndarray] = {}
    discount = 1.0 / np.log2(np.arange(2, top.shape[1] + 2))
    for k in ks:
        h = hits[:, :k]
        n_hit = h.sum(axis=1)
        precision = n_hit / k
        recall = n_hit / n_rel
        f1 = np.divide(2 * precision * recall, precision + recall,
                       out=np.zeros_like(precision), where=(precision + recall) > 0)
        dcg = (h * discount[:k]).sum(axis=1)
        ideal = np.cumsum(discount[:k])[np.minimum(n_rel, k).astype(int) - 1]
        cum_hits = np.cumsum(h, axis=1)
        ap = (h * cum_hits / np.arange(1, k + 1)).sum(axis=1) / np.minimum(n_rel, k)
        first = np.where(h.any(axis=1), h.argmax(axis=1) + 1, np.inf)
        out.update({("precision", k): precision, ("recall", k): recall, ("f1", k): f1,
                    ("ndcg", k): dcg / ideal, ("hit_rate", k): (n_hit > 0).astype(float),
                    ("map", k): ap, ("mrr", k): 1.0 / first})
    return out


def pairwise_auc(scores: np.ndarray, truth: sp.csr_matrix, rng: np.random.Generator
                 ) -> np.ndarray:
    """Per held-out positive: 1 if it outranks one random non-positive item, 0.5 on ties."""
    coo = truth.tocoo()
    neg = rng.integers(0, scores.shape[1], len(coo.row))
    is_pos = truth.toarray()[coo.row, neg] > 0
    s_pos = scores[coo.row, coo.col]
    s_neg = scores[coo.row, neg]
    keep = ~is_pos & np.isfinite(s_neg)
    return np.where(s_pos > s_neg, 1.0, np.where(s_pos == s_neg, 0.5, 0.0))[keep]


def intra_list_diversity(top: np.ndarray, vectors: np.ndarray | None) -> np.ndarray | None:
    """Mean pairwise cosine distance of each list's items (None without item vectors)."""
    if vectors is None or top.shape[1] < 2:
        return None
    v = vectors[top]                                        # users x k x d
    sims = np.einsum("ukd,ujd->ukj", v, v)
    k = top.shape[1]
    mean_sim = (sims.sum(axis=(1, 2)) - np.trace(sims, axis1=1, axis2=2)) / (k * (k - 1))
    return 1.0 - mean_sim
