"""Personalised search: a query's relevance blended with one shopper's taste.

A search query picks the candidates (the `pool` products most relevant to it); within them, the
query's relevance and the shopper's model score (their taste) are each rescaled to 0..1 (min to
max over the pool) and mixed: `score = (1 - taste) * query + taste * taste_score`. So a taste
weight of 0 is the plain search and 1 the shopper's favourites among what matches the query;
each result carries how much of its score came from the query and how much from taste.

`evaluate_blend` measures it offline: for (shopper, query) pairs whose relevant products are
the shopper's held-out test items, NDCG@K of the blended ranking at several taste weights.
Everything here is numpy over score arrays; loading runs, encoding queries and choosing the
pairs is the use cases' job (`recsys.usecases.personal`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from recsys.core.errors import RecsysError

DEFAULT_POOL = 300
"""At most this many products the query keeps as candidates before taste reorders them."""

POOL_SHARE = 0.05
"""...and at most this share of the catalog (at least the number of results asked): on a
small catalog, 300 "matches" would be nearly every product, and taste alone would decide."""


def default_pool(n_items: int, k: int) -> int:
    """Candidates a query keeps: min(`DEFAULT_POOL`, max(k, 5% of the catalog)); 300 on Myntra
    (9,583 products), the k results themselves on the 320-product demo."""
    return int(min(DEFAULT_POOL, max(k, np.ceil(POOL_SHARE * n_items))))

DEFAULT_TASTE = 0.3
"""The default taste weight: on Myntra the best for queries a shopper would type ("Men Navy
Blue Tshirts": NDCG@20 0.415 -> 0.452) and well above query only for bare article types
("Tshirts": 0.153 -> 0.222; best 0.236 at 0.5); see docs/beyond.md."""


class BlendError(RecsysError):
    """A personalised ranking asked with impossible settings."""


def rescale(values: np.ndarray) -> np.ndarray:
    """Min-max to 0..1 over the finite values (all 0.5 when they are all equal)."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros_like(values)
    low, high = values[finite].min(), values[finite].max()
    if high - low <= 1e-12:
        return np.where(finite, 0.5, 0.0)
    return np.where(finite, (values - low) / (high - low), 0.0)


@dataclass
class Blended:
    """A personalised ranking of a candidate pool, best first.

    `order` indexes the candidates; `score`, `query_part`, `taste_part` (score = query_part +
    taste_part) and `query_share` (query_part / score; 1 when the taste weight is 0) follow
    `order`.
    """

    order: np.ndarray
    score: np.ndarray
    query_part: np.ndarray
    taste_part: np.ndarray
    query_share: np.ndarray


def check_taste(taste: float) -> float:
    taste = float(taste)
    if not 0.0 <= taste <= 1.0 or taste != taste:
        raise BlendError("The taste weight must be between 0 (query only) and 1 (taste only).")
    return taste


def blend(query_scores: np.ndarray, taste_scores: np.ndarray, taste: float) -> Blended:
    """Rank candidates by `(1 - taste) * query + taste * taste_score` after rescaling both to
    0..1 over the candidates; ties keep the query's order."""
    taste = check_taste(taste)
    query = rescale(query_scores)
    liking = rescale(taste_scores)
    q_part, t_part = (1.0 - taste) * query, taste * liking
    total = q_part + t_part
    by_query = np.argsort(-query, kind="stable")
    order = by_query[np.argsort(-total[by_query], kind="stable")]
    share = np.divide(q_part, total, out=np.full_like(total, 1.0 - taste), where=total > 1e-12)
    return Blended(order, total[order], q_part[order], t_part[order], share[order])


def candidate_pool(query_scores: np.ndarray, pool: int,
                   exclude: np.ndarray | None = None) -> np.ndarray:
    """Indices of the `pool` best finite query scores, best first (`exclude`: indices left
    out, e.g. products the shopper already has)."""
    if pool < 1:
        raise BlendError("The candidate pool must hold at least one product.")
    scores = np.asarray(query_scores, dtype=np.float64).copy()
    if exclude is not None and len(exclude):
        scores[np.asarray(exclude, dtype=np.int64)] = -np.inf
    finite = np.flatnonzero(np.isfinite(scores))
    if len(finite) > pool:
        finite = finite[np.argpartition(-scores[finite], pool - 1)[:pool]]
    return finite[np.argsort(-scores[finite], kind="stable")]


def ndcg_at(ranked: np.ndarray, relevant: set[int], k: int) -> float:
    """NDCG@k of one ranked list of item indices with binary relevance."""
    gains = np.array([1.0 if int(i) in relevant else 0.0 for i in ranked[:k]])
    discount = 1.0 / np.log2(np.arange(2, len(gains) + 2))
    ideal = (1.0 / np.log2(np.arange(2, min(len(relevant), k) + 2))).sum()
    return float((gains * discount).sum() / ideal) if ideal > 0 else 0.0


@dataclass
class BlendCase:
    """One offline case: a shopper (row of the taste matrix), a query (row of the query
    matrix), the relevant item indices and the items to leave out (the training history)."""

    user: int
    query: int
    relevant: np.ndarray
    exclude: np.ndarray


def evaluate_blend(query_matrix: np.ndarray, taste_rows: dict[int, np.ndarray],
                   cases: Sequence[BlendCase], tastes: Sequence[float], k: int = 20,
                   pool: int = DEFAULT_POOL) -> dict[str, float]:
    """Mean NDCG@k over `cases` of the blended ranking at each taste weight, plus
    "taste_only" (the shopper's model ranking over the whole catalog, the query ignored) and
    "pool_recall" (share of relevant items the query's pool holds: the ceiling of any taste
    weight). Keys: "ndcg@k taste=0.00"... ; `taste_rows` maps a user to their score row."""
    if not cases:
        raise BlendError("No evaluation case: no shopper has a held-out product to look for.")
    sums = {float(t): 0.0 for t in tastes}
    only, recall = 0.0, 0.0
    for case in cases:
        relevant = {int(i) for i in case.relevant}
        query = query_matrix[case.query]
        liking = taste_rows[case.user]
        candidates = candidate_pool(query, pool, case.exclude)
        recall += len(relevant & set(candidates.tolist())) / len(relevant)
        for t in sums:
            mixed = blend(query[candidates], liking[candidates], t)
            sums[t] += ndcg_at(candidates[mixed.order], relevant, k)
        free = np.asarray(liking, dtype=np.float64).copy()
        free[case.exclude] = -np.inf
        best = np.argsort(-free, kind="stable")[:k]
        only += ndcg_at(best, relevant, k)
    n = len(cases)
    out = {f"ndcg@{k} taste={t:.2f}": v / n for t, v in sums.items()}
    out[f"ndcg@{k} taste_only"] = only / n
    out["pool_recall"] = recall / n
    return out
