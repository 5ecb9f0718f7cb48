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

from recsys.core.arrays import cosine_table

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
                    diversity: float = DEFAULT_DIVERSITY, chunk: int = 128) -> np.ndarray:
    """MMR top-k item indices for each row of a users x items score matrix (-inf = excluded):
    for every row what `mmr_order` picks from the row's best `POOL_FACTOR * k` items, computed
    for `chunk` rows at a time (the k greedy steps across all rows at once; with few items
    all their cosines computed once and looked up: 20x faster on the first start's
    evaluation). Rows with fewer than k finite scores are padded with -1.
    """
    if not 0.0 <= diversity <= 1.0 or not np.isfinite(diversity):
        raise ValueError(f"diversity must be between 0 and 1, got {diversity!r}")
    scores = np.asarray(scores)
    n, m = scores.shape
    k = int(k)
    out = np.full((n, max(k, 0)), -1, dtype=np.int64)
    if k <= 0 or m == 0:
        return out
    size = min(POOL_FACTOR * k, m)
    plain = vectors is None or diversity == 0.0 or k == 1
    unit = None if plain else np.asarray(vectors, dtype=np.float32)
    # with few items: all their cosines once (items x items), then only looked up
    gram = None if plain else cosine_table(unit, n * k * size)
    for start in range(0, n, chunk):
        s = np.asarray(scores[start:start + chunk], dtype=np.float64)
        rows = np.arange(len(s))
        pool = np.argpartition(-s, size - 1, axis=1)[:, :size] if m > POOL_FACTOR * k \
            else np.broadcast_to(np.arange(m), s.shape)
        ps = np.take_along_axis(s, pool, 1)
        finite = np.isfinite(ps)
        # by score, best first, ties in pool order (mmr_order's stable sort); excluded last
        order = np.argsort(np.where(finite, -ps, np.inf), axis=1, kind="stable")
        pool, ps, finite = (np.take_along_axis(a, order, 1) for a in (pool, ps, finite))
        picks = np.minimum(k, finite.sum(axis=1))              # items each row can have
        chosen = np.broadcast_to(np.arange(k), (len(s), k)).copy()
        if not plain:
            lo = np.where(finite, ps, np.inf).min(axis=1, keepdims=True)
            hi = np.where(finite, ps, -np.inf).max(axis=1, keepdims=True)
            spread = hi - lo
            with np.errstate(invalid="ignore", divide="ignore"):
                rel = np.where(spread > 0, (ps - lo) / np.where(spread > 0, spread, 1.0), 1.0)
            rel[~finite] = 0.0
            if gram is not None:
                def sims_to(col):                          # rows x pool: cosines to pool[col]
                    return gram[pool[rows, col][:, None], pool]
            else:
                vecs = unit[pool]                                          # rows x pool x d

                def sims_to(col):
                    return np.matmul(vecs, vecs[rows, col, :, None])[..., 0]
            available = finite.copy()
            available[:, 0] = False               # the most relevant item always comes first
            max_sim = sims_to(np.zeros(len(s), dtype=np.int64))
            for step in range(1, k):
                gain = (1.0 - diversity) * rel - diversity * max_sim
                gain[~available] = -np.inf
                nxt = np.argmax(gain, axis=1)
                chosen[:, step] = nxt
                available[rows, nxt] = False
                np.maximum(max_sim, sims_to(nxt), out=max_sim)
        picked = np.take_along_axis(pool, chosen[:, :min(k, size)], 1)
        width = picked.shape[1]
        picked[np.arange(width)[None, :] >= picks[:, None]] = -1
        out[start:start + len(s), :width] = picked
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
