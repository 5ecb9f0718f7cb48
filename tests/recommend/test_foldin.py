"""Fold-in measurements: the shoppers held out are left out of training."""

from __future__ import annotations

import numpy as np

from recsys.store import Store

from ..test_models_helpers import DATASET


def test_cold_start_holds_the_shoppers_out_of_training(tiny_ease: Store):
    from recsys.data.interactions import load_data
    from recsys.recommend.foldin import holdout_users, without_users

    data = load_data(tiny_ease, DATASET)
    held = holdout_users(data, 5, 3)
    rest = without_users(data, held)
    assert rest.train[held].nnz == 0 and rest.valid[held].nnz == 0
    assert (rest.test[held] != data.test[held]).nnz == 0
    others = np.setdiff1d(np.arange(data.n_users), held)
    assert (rest.train[others] != data.train[others]).nnz == 0
