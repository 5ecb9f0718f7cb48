"""The peer library's models (implicit ALS / BPR): beyond the shared contract, their files hold
plain arrays, ALS's fold-in is implicit's own solve, and they serve as a fusion model's CF part."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.models import create_model, get_spec
from recsys.models.base import Recommender

from ..test_models_helpers import GROUP, fast_params, tiny_data


@pytest.fixture(scope="module")
def data():
    return tiny_data()


@pytest.fixture(scope="module")
def als(data):
    return create_model("als", factors=8, iterations=10).fit(data)


def test_both_are_registered_collaborative_single_signal_models():
    for name in ("als", "bpr-implicit"):
        spec = get_spec(name)
        assert spec.family == "collaborative" and spec.single_signal
        assert spec.requires == frozenset({"cf"})


def test_the_file_holds_plain_arrays_only(als, tmp_path):
    path = tmp_path / "als.npz"
    als.save(path)
    with np.load(path, allow_pickle=False) as arrays:    # would raise on any object array
        assert all(arrays[k].dtype != object for k in arrays.files)
    again = Recommender.load(path)
    assert type(again).__name__ == "ImplicitALS"
    np.testing.assert_array_equal(again.score([0, 5]), als.score([0, 5]))


def test_als_fold_in_is_implicits_recalculate_user(als, data):
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    items = np.array([0, 1, 2])
    with threadpool_limits(1, "blas"):
        ref = AlternatingLeastSquares(factors=8, regularization=als.config.regularization,
                                      alpha=als.config.alpha, num_threads=1)
    ref.item_factors, ref.user_factors = als.item_factors, als.user_factors
    row = als.history_row(items, np.ones(3, np.float32))
    expected = ref.recalculate_user(0, row) @ als.item_factors.T
    np.testing.assert_allclose(als.score_history(items), expected, rtol=1e-5, atol=1e-6)
    # a history inside group A ranks group A first
    top = np.argsort(-als.score_history(items))[:GROUP]
    assert np.mean(top < GROUP) >= 0.75


def test_a_trained_users_fold_in_is_close_to_their_trained_scores(als, data):
    user = 3
    items = data.train[user].indices
    folded = als.score_history(items, data.train[user].data)
    trained = als.score([user])[0]
    assert np.corrcoef(folded, trained)[0, 1] > 0.9


def test_bpr_is_reproducible_from_its_seed(data):
    a = create_model("bpr-implicit", factors=8, iterations=20, seed=3).fit(data)
    b = create_model("bpr-implicit", factors=8, iterations=20, seed=3).fit(data)
    np.testing.assert_array_equal(a.item_factors, b.item_factors)


@pytest.mark.parametrize("cf", ["als", "bpr-implicit"])
def test_a_peer_is_the_cf_part_of_late_fusion(data, cf):
    model = create_model("late-fusion", cf_model=cf, **fast_params("late-fusion")).fit(data)
    assert type(model.scorers["cf"]).__name__ in ("ImplicitALS", "ImplicitBPR")
    scores = model.score([0, 15])
    assert scores.shape == (2, data.n_items) and np.isfinite(scores).all()
