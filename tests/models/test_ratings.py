"""The rating model: predicts known ratings better than the mean, needs ratings, folds in a new
shopper on the star scale."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.models import UnknownModel, create_model, get_spec

from ..test_models_helpers import fast_params, tiny_data


def test_rating_model_predicts_known_ratings_better_than_the_mean():
    """On ratings that follow the item groups, biased MF beats predicting the global mean."""
    from recsys.models.ratings import rating_metrics

    data = tiny_data()
    model = create_model("rating-mf", epochs=60, patience=60, missing_weight=0.0).fit(data)
    users, items, values = data.ratings.part(2)
    mean = data.ratings.part(0)[2].mean()
    baseline = float(np.sqrt(np.mean((values - mean) ** 2)))
    found = rating_metrics(model, data)
    assert found["ratings"] == len(values) and found["rmse"] < baseline


def test_rating_model_needs_ratings():
    with pytest.raises(Exception, match="needs.*ratings"):
        create_model("rating-mf").fit(tiny_data(with_ratings=False))
    spec = get_spec("rating-mf")
    with pytest.raises(UnknownModel, match="rating column"):
        spec.check_signals(frozenset({"cf"}), "shop")


def test_rating_model_folds_in_a_new_shopper_on_the_star_scale():
    data = tiny_data()
    model = create_model("rating-mf", **fast_params("rating-mf")).fit(data)
    stars = model.score_history([1, 2, 3])
    low, high = data.ratings.values.min(), data.ratings.values.max()
    assert np.isfinite(stars).all() and low - 1 < np.median(stars) < high + 1
