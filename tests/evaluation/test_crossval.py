"""K-fold cross-validation: every pair in a test fold exactly once, folds that keep users, items
and vectors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data.interactions import EvaluationError, implicit_pairs, load_data
from recsys.evaluation.crossval import fold_data, kfold_codes
from recsys.store import Store

from ..test_models_helpers import DATASET, fill_store


def test_kfold_deals_every_pair_into_test_exactly_once():
    pairs = pd.DataFrame({"user_id": np.repeat(["a", "b", "c"], [23, 2, 7]),
                          "item_id": range(32)})
    codes = np.stack([kfold_codes(pairs, 4, f, seed=5) for f in range(4)])
    a = slice(0, 23)
    assert (codes[:, a] == 2).sum(axis=0).tolist() == [1] * 23
    assert ((codes[:, a] == 2).sum(axis=1) >= 5).all()
    assert ((codes[:, a] == 1).sum(axis=1) == 2).all()             # ~10% validation
    assert (codes[:, 23:25] == 0).all(), "users with fewer than 3 pairs stay in training"
    assert np.array_equal(codes[0], kfold_codes(pairs, 4, 0, seed=5))
    with pytest.raises(EvaluationError, match="between 2 and 20"):
        kfold_codes(pairs, 1, 0)


def test_fold_data_keeps_users_items_and_vectors(store: Store):
    fill_store(store)
    data = load_data(store, DATASET, "random")
    pairs = implicit_pairs(store, DATASET)
    fold = fold_data(data, pairs, kfold_codes(pairs, 3, 1), 3)
    assert fold.protocol == "3-fold" and fold.image is data.image
    total = fold.train.nnz + fold.valid.nnz + fold.test.nnz
    assert total == len(pairs) and fold.test.nnz > 0
    assert (fold.train.multiply(fold.test)).nnz == 0
