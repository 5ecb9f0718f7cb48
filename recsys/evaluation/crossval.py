"""K-fold cross-validation over each user's interactions.

One train/test split gives one number per metric; the folds say how much it moves with the
split. Each user's (user, item) pairs are shuffled (seeded) and dealt round-robin into K
folds, so every pair is a test pair exactly once. In fold f the test pairs are the user's
fold-f pairs; of the rest, about 10% of the user's pairs (at least one) are validation (for
early stopping and late-fusion weights, as in the 8:1:1 split) and the others train. Users
with fewer than 3 pairs stay in training, as in `interactions.assign_split`.

`fold_data` returns the fold as an `InteractionData` built from a loaded one (same users,
items and item vectors, whatever modalities it carries), so models and the evaluation read it
like any split. The `evaluate` use case fits the models in memory on each fold.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.data.interactions import EvaluationError, InteractionData

MIN_FOLDS, MAX_FOLDS = 2, 20


def protocol_name(folds: int) -> str:
    """The protocol label of cross-validated metrics ("5-fold")."""
    return f"{int(folds)}-fold"


def check_folds(folds: int) -> int:
    folds = int(folds)
    if not MIN_FOLDS <= folds <= MAX_FOLDS:
        raise EvaluationError(f"Cross-validation needs between {MIN_FOLDS} and {MAX_FOLDS} "
                              f"folds, got {folds}.")
    return folds


def kfold_codes(pairs: pd.DataFrame, folds: int, fold: int, seed: int = 0) -> np.ndarray:
    """Split code per pair (0 train, 1 valid, 2 test) of fold `fold` out of `folds`.

    `pairs` has a `user_id` column (one row per user-item pair). The deal into folds depends
    on the seed only, so the K folds of one seed partition every user's pairs.
    """
    folds = check_folds(folds)
    if not 0 <= fold < folds:
        raise EvaluationError(f"Fold {fold} does not exist: folds are 0..{folds - 1}.")
    users = pairs["user_id"].to_numpy()
    rng = np.random.default_rng(seed)
    deal_key = rng.random(len(pairs))
    valid_key = rng.random(len(pairs))
    order = np.lexsort((deal_key, users))
    sorted_users = users[order]
    starts = np.r_[0, np.flatnonzero(sorted_users[1:] != sorted_users[:-1]) + 1] \
        if len(order) else np.zeros(0, dtype=int)
    counts = np.diff(np.r_[starts, len(order)])
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - np.repeat(starts, counts)
    n = np.empty(len(order), dtype=np.int64)
    n[order] = np.repeat(counts, counts)
    eligible = n >= 3
    test = eligible & (rank % folds == fold)
    # validation: the user's non-test pairs with the smallest valid_key, ~10% of the user's pairs
    n_valid = np.where(eligible, np.maximum(1, np.rint(0.1 * n)), 0)
    key = np.where(test, np.inf, valid_key)
    order_v = np.lexsort((key, users))
    rank_v = np.empty(len(order_v), dtype=np.int64)
    rank_v[order_v] = np.arange(len(order_v)) - np.repeat(starts, counts)
    valid = ~test & (rank_v < n_valid)
    return np.where(test, 2, np.where(valid, 1, 0)).astype(np.int8)


def fold_data(data: InteractionData, pairs: pd.DataFrame, codes: np.ndarray,
              folds: int) -> InteractionData:
    """`data` (users, items, vectors) with its train / valid / test matrices rebuilt from
    `pairs` (user_id, item_id, weight) and their split `codes`."""
    rows = pd.Index(data.user_ids).get_indexer(pairs["user_id"])
    cols = pd.Index(data.item_ids).get_indexer(pairs["item_id"])
    if (rows < 0).any() or (cols < 0).any():
        raise EvaluationError("The interactions changed while cross-validating; run it again.")
    weights = pairs["weight"].to_numpy(dtype=np.float32)
    shape = (data.n_users, data.n_items)

    def matrix(code: int, values: np.ndarray | None = None) -> sp.csr_matrix:
        sel = codes == code
        vals = np.ones(sel.sum(), dtype=np.float32) if values is None else values[sel]
        return sp.csr_matrix((vals, (rows[sel], cols[sel])), shape=shape, dtype=np.float32)

    return dataclasses.replace(data, protocol=protocol_name(folds), train=matrix(0, weights),
                               valid=matrix(1), test=matrix(2))
