"""A live shopper's picks: what a trained model's scores become on the User picks page and in
`python -m recsys recommend`.

Two rules separate a live list from an evaluation (`recsys.evaluation.ranking`, which only leaves out
the training split so that held-out items can be found):

* **nothing the shopper already interacted with** (any split: viewed, carted, bought) is picked,
  unless asked (`include_seen`), and then the caller badges it;
* **near-duplicates are spread out** by maximal marginal relevance (`recsys.recommend.rerank.mmr_order`)
  over the items' image+text vectors, the space the Evaluate page measures diversity in
  (`recsys.evaluation.ranking.content_matrix`); a dataset without item vectors (interactions only) uses
  the items' co-occurrence columns instead, so "four grey socks" are spread there too.

Pure numpy over an `InteractionData`; the use case `recommend_for` reads the store.
"""

from __future__ import annotations

import numpy as np

from recsys.data.interactions import InteractionData
from recsys.evaluation.ranking import content_matrix
from recsys.recommend.rerank import (
    DEFAULT_DIVERSITY,
    POOL_FACTOR,
    intra_list_similarity,
    mmr_order,
)


def diversity_vectors(data: InteractionData, items: np.ndarray) -> np.ndarray:
    """L2-normalised vectors of `items` (indices into `data.item_ids`) for MMR: image+text side
    by side when the data has item vectors, else the binary training columns (who interacted
    with each item), so cosine = co-occurrence similarity."""
    content = content_matrix(data, np.asarray(items, dtype=np.int64))   # the pool's rows only
    if content is not None:
        return content
    cols = (data.train[:, items] > 0).astype(np.float32).T.toarray()
    norms = np.linalg.norm(cols, axis=1, keepdims=True)
    return cols / np.where(norms > 0, norms, 1.0)


def rank_picks(scores: np.ndarray, data: InteractionData, k: int,
               diversity: float = DEFAULT_DIVERSITY, exclude: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray, float, float]:
    """The top-k items of one shopper's score row: `exclude`d items (indices) left out, then
    re-ranked by MMR with `diversity` (0 = the model's order) among the best `POOL_FACTOR * k`.

    Returns (item indices in pick order, their model scores, the list's mean pairwise
    similarity, the same for the plain top-k by score) so a page can show what re-ranking did.
    """
    if not 0.0 <= float(diversity) <= 1.0:
        raise ValueError(f"diversity must be between 0 and 1, got {diversity!r}")
    row = np.asarray(scores, dtype=np.float64).copy()
    if exclude is not None and len(exclude):
        row[np.asarray(exclude, dtype=np.int64)] = -np.inf
    finite = np.flatnonzero(np.isfinite(row))
    k = min(int(k), len(finite))
    if k <= 0:
        return np.zeros(0, np.int64), np.zeros(0), 0.0, 0.0
    size = min(len(finite), max(k, POOL_FACTOR * k))
    pool = finite[np.argpartition(-row[finite], size - 1)[:size]] if size < len(finite) \
        else finite
    pool = pool[np.argsort(-row[pool], kind="stable")]
    vectors = diversity_vectors(data, pool)
    order = mmr_order(row[pool], vectors, k, float(diversity))
    plain = np.arange(k)
    return (pool[order], row[pool[order]], intra_list_similarity(vectors, order),
            intra_list_similarity(vectors, plain))


# -- the segment rule: a business rule, not a model's output -------------------------
SEGMENT_RULE = ("Business rule: only products for the shopper's declared segment ({who}) and "
                "unisex products are picked; the model's own order is kept among them.")


def segment_exclusions(item_genders, allowed: set[str] | None) -> np.ndarray:
    """Indices of the items outside a shopper's declared segment: items whose gender names
    people (men/women/boys/girls, any case or singular) none of `allowed`. Unisex items and
    items without a gender stay in. `allowed` None (no declared segment): nothing excluded."""
    if not allowed:
        return np.zeros(0, np.int64)
    from recsys.data.attributes import people_gender

    people = [people_gender(g) for g in item_genders]
    return np.array([i for i, g in enumerate(people) if g is not None and g not in allowed],
                    dtype=np.int64)


def segment_words(allowed: set[str]) -> str:
    """"men's" / "women's and girls'" for the rule's sentence."""
    order = ("men", "women", "boys", "girls")
    names = [f"{g}'" if g.endswith("s") and g not in ("men", "women") else f"{g}'s"
             for g in order if g in allowed]
    return " and ".join(names)
