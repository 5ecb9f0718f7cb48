"""Ranking metrics: pure functions over score matrices and ranked lists (no data loading).

Like microsoft/recommenders' `python_evaluation.py`: each function takes arrays (scores, ranked
item indices, the relevant items as a sparse matrix) and returns per-user values, so the
evaluation of a fitted model (`recsys.evaluation.ranking`), the models' own validation and the tests
share one definition of each metric.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import scipy.sparse as sp

from recsys.core.arrays import cosine_table


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

    `top` holds each user's ranked item indices (usually max(ks) columns; fewer when the catalog
    has fewer items than K, and -1 marks an empty position); `truth` the relevant items (rows
    aligned). Users without relevant items must be filtered out before. Precision at K divides
    by K even when fewer than K items could be listed (the usual definition).
    """
    top = np.asarray(top)
    hits = np.take_along_axis(truth.toarray() > 0, np.maximum(top, 0), axis=1) & (top >= 0)
    n_rel = np.asarray(truth.getnnz(axis=1), dtype=np.float64)
    out: dict[tuple[str, int], np.ndarray] = {}
    discount = 1.0 / np.log2(np.arange(2, top.shape[1] + 2))
    for k in ks:
        listed = min(k, top.shape[1])         # a catalog smaller than K lists fewer items
        h = hits[:, :listed]
        n_hit = h.sum(axis=1)
        precision = n_hit / k
        recall = n_hit / n_rel
        f1 = np.divide(2 * precision * recall, precision + recall,
                       out=np.zeros_like(precision), where=(precision + recall) > 0)
        dcg = (h * discount[:listed]).sum(axis=1)
        best = np.minimum(n_rel, listed).astype(int)
        ideal = np.cumsum(discount[:listed])[np.maximum(best, 1) - 1]
        cum_hits = np.cumsum(h, axis=1)
        ap = (h * cum_hits / np.arange(1, listed + 1)).sum(axis=1) / np.maximum(best, 1)
        first = np.where(h.any(axis=1), h.argmax(axis=1) + 1, np.inf)
        out.update({("precision", k): precision, ("recall", k): recall, ("f1", k): f1,
                    ("ndcg", k): dcg / ideal, ("hit_rate", k): (n_hit > 0).astype(float),
                    ("map", k): ap, ("mrr", k): 1.0 / first})
    return out


def user_auc(scores: np.ndarray, truth: sp.csr_matrix, chunk: int = 256) -> np.ndarray:
    """Per-user AUC over the whole candidate list: the probability that one of the user's
    held-out positives is scored above one of their non-positive candidates (ties count half).

    Candidates are the items with a finite score (`mask_seen` sets the training items to -inf,
    so they are neither positives nor negatives). This is each row's Mann-Whitney U statistic,
    exact, not the noisy estimate many papers report (one sampled negative per positive: each
    user contributes a handful of coin flips): for each positive,
    the candidates scored below it (and half the ties) are counted (positives x items
    comparisons, in chunks), then the pairs of positives themselves are taken out. Rows
    without a positive or a negative candidate give NaN.
    """
    scores = np.asarray(scores)
    finite = np.isfinite(scores)
    n_out = (~finite).sum(axis=1)                  # -inf (or NaN) rows: never candidates
    n_neginf = np.isneginf(scores).sum(axis=1)
    coo = truth.tocoo()
    row, col = coo.row, coo.col
    keep = finite[row, col]
    row, col = row[keep], col[keep]
    below = np.zeros(len(row))
    for start in range(0, len(row), chunk):
        r, c = row[start:start + chunk], col[start:start + chunk]
        block = scores[r]
        s_pos = scores[r, c][:, None]
        less = (block < s_pos).sum(axis=1) - n_neginf[r]
        ties = (block == s_pos).sum(axis=1) - 1
        below[start:start + chunk] = less + 0.5 * ties
    n_rows = scores.shape[0]
    n_pos = np.bincount(row, minlength=n_rows).astype(np.float64)
    n_neg = scores.shape[1] - n_out - n_pos
    u = np.bincount(row, weights=below, minlength=n_rows) - n_pos * (n_pos - 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n_pos > 0) & (n_neg > 0), u / (n_pos * n_neg), np.nan)


DIVERSITY_CHUNK_BYTES = 256 * 2**20
"""Memory of one chunk of lists in `intra_list_diversity` (their items' vectors and pairwise
similarities)."""


def intra_list_diversity(top: np.ndarray, vectors: np.ndarray | None,
                         ks: Iterable[int] | None = None, chunk: int = 1024
                         ) -> np.ndarray | dict[int, np.ndarray] | None:
    """Mean pairwise cosine distance of each list's items (None without item vectors or with
    lists shorter than 2; -1 marks an empty position, lists with fewer than 2 items give NaN).

    With `ks`, a dict K -> values for the first K items of each list (K >= 2), from one
    computation of the pairwise similarities of the full lists (`chunk` users at a time).
    """
    top = np.asarray(top)
    width = top.shape[1]
    wanted = sorted({min(int(k), width) for k in (ks if ks is not None else [width])} - {0, 1})
    if vectors is None or not wanted:
        return None
    out = {k: np.empty(top.shape[0]) for k in wanted}
    # with few items (the demo's 320), all their cosines once, then looked up per list
    gram = cosine_table(vectors, top.shape[0] * width * width)
    # users x k x (d + k) float64 per chunk: at most DIVERSITY_CHUNK_BYTES whatever k is
    per_user = 8 * width * ((0 if gram is not None else vectors.shape[1]) + width)
    chunk = max(1, min(chunk, DIVERSITY_CHUNK_BYTES // max(per_user, 1)))
    for start in range(0, top.shape[0], chunk):
        part = top[start:start + chunk]
        valid = part >= 0
        shown = np.maximum(part, 0)
        if gram is not None:
            sims = gram[shown[:, :, None], shown[:, None, :]] \
                * (valid[:, :, None] & valid[:, None, :])              # users x k x k
        else:
            v = vectors[shown] * valid[..., None]                      # users x k x d
            sims = np.matmul(v, np.swapaxes(v, 1, 2))                  # users x k x k
        for k in wanted:
            block = sims[:, :k, :k]
            n = valid[:, :k].sum(axis=1).astype(np.float64)
            pairs = n * (n - 1)
            total = block.sum(axis=(1, 2)) - np.trace(block, axis1=1, axis2=2)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[k][start:start + chunk] = np.where(pairs > 0, 1.0 - total / pairs, np.nan)
    return out if ks is not None else out[width]
