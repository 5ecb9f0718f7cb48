"""Diversity re-ranking: maximal marginal relevance (MMR) over item vectors.

A ranked list from a recommender can hold near-duplicates (four grey socks of one brand).
MMR (Carbonell & Goldstein, 1998) rebuilds the top-k greedily: each next item maximises

    (1 - diversity) * relevance(item) - diversity * max cosine(item, items already chosen)

`relevance` is the model's score rescaled to 0..1 over the candidate pool, so `diversity` means
the same thing for every model: 0 keeps the model's order exactly ("most relevant"), 1 picks
the item least like the ones chosen so far ("most varied"). The candidate pool is the model's
best `pool` items (a few times k), so re-ranking never reaches far down the list and costs
O(pool x k x d).

Pure numpy, no store: used by the recommend use case (app and CLI) and by the evaluation that
reports the effect of re-ranking on NDCG and diversity.
"""

from __future__ import annotations

import numpy as np

DEFAULT_DIVERSITY = 0.2
"""Mild by default: removes near-duplicates, keeps the model's order otherwise."""

POOL_FACTOR = 4
"""Candidates considered per pick: the model's best `POOL_FACTOR * k` items."""


def mmr_order(scores: np.ndarray, vectors: np.ndarray | None, k: int,
              diversity: float = DEFAULT_DIVERSITY) -> np.ndarray:
    """Positions (into `scores`) of the k items chosen by MMR, in pick order.

    `scores`: relevance of the candidates (higher is better; -inf = never pick), sorted or not.
    `vectors`: their L2-normalised content vectors (rows aligned with `scores`), or None: then,
    or with `diversity` 0, the result is simply the top-k by score.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if not 0.0 <= diversity <= 1.0 or not np.isfinite(diversity):
        raise ValueError(f"diversity must be between 0 and 1, got {diversity!r}")
    finite = np.flatnonzero(np.isfinite(scores))
    k = min(int(k), len(finite))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    by_score = finite[np.argsort(-scores[finite], kind="stable")]
    if vectors is None or diversity == 0.0 or k == 1:
        return by_score[:k]
    pool = by_score[:max(k, POOL_FACTOR * k)]
    rel = scores[pool]
    spread = rel.max() - rel.min()
    rel = (rel - rel.min()) / spread if spread > 0 else np.ones_like(rel)
    vecs = np.asarray(vectors, dtype=np.float32)[pool]
    chosen: list[int] = [0]                     # the most relevant item always comes first
    max_sim = vecs @ vecs[0]
    available = np.ones(len(pool), dtype=bool)
    available[0] = False
    for _ in range(1, k):
        gain = (1.0 - diversity) * rel - diversity * max_sim
        gain[~available] = -np.inf
        nxt = int(np.argmax(gain))
        chosen.append(nxt)
        available[nxt] = False
        max_sim = np.maximum(max_sim, vecs @ vecs[nxt])
    return pool[np.array(chosen)]


def mmr_rerank_rows(scores: np.ndarray, vectors: np.ndarray | None, k: int,
                    diversity: float = DEFAULT_DIVERSITY) -> np.ndarray:
    """MMR top-k item indices for each row of a users x items score matrix (-inf = excluded).

    Rows with fewer than k finite scores are padded with -1.
    """
    out = np.full((scores.shape[0], k), -1, dtype=np.int64)
    for r in range(scores.shape[0]):
        row = scores[r]
        pool = np.argpartition(-row, min(POOL_FACTOR * k, row.size) - 1)[:POOL_FACTOR * k] \
            if row.size > POOL_FACTOR * k else np.arange(row.size)
        picked = pool[mmr_order(row[pool], None if vectors is None else vectors[pool], k,
                                diversity)]
        out[r, :len(picked)] = picked
    return out


def intra_list_similarity(vectors: np.ndarray, items: np.ndarray) -> float:
    """Mean pairwise cosine of a list's items (1 = identical items, lower = more varied)."""
    items = np.asarray(items)
    items = items[items >= 0]
    if len(items) < 2:
        return 0.0
    v = vectors[items]
    sims = v @ v.T
    n = len(items)
    return float((sims.sum() - np.trace(sims)) / (n * (n - 1)))
