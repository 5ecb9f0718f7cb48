"""Explanations: modality weights from the model and the most similar history items."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.explain.weights import cf_similarity, explain_recommendations
from recsys.models import create_model

from ..test_models_helpers import GROUP, fast_params, tiny_data


@pytest.fixture(scope="module")
def data():
    return tiny_data()


@pytest.mark.parametrize("name", ["attention-fusion", "late-fusion", "early-fusion", "content",
                                  "itemknn"])
def test_each_recommendation_says_why(data, name):
    model = create_model(name, **fast_params(name)).fit(data)
    out = explain_recommendations(model, data, "u02", k=4)
    assert [e.rank for e in out] == [1, 2, 3, 4]
    assert [e.item_id for e in out] == [i for i, _ in model.recommend("u02", 4)]
    history = {data.item_ids[i] for i in data.train[2].indices}
    for e in out:
        assert set(e.weights) <= model.requires
        assert sum(e.weights.values()) == pytest.approx(1.0, abs=1e-5)
        assert len(e.similar) == 3 and {s.item_id for s in e.similar} <= history
        sims = [s.similarity for s in e.similar]
        assert sims == sorted(sims, reverse=True)
        assert set(e.similar[0].similarities) == {"cf", "image", "text"}
        assert e.to_dict()["item_id"] == e.item_id


def test_cf_only_models_explain_with_cf_alone(data):
    model = create_model("ease").fit(data)
    out = explain_recommendations(model, data, "u15", k=2)
    assert len(out) == 2
    assert all(e.weights == {"cf": 1.0} for e in out)


def test_attention_explanations_are_the_attention_weights(data):
    model = create_model("attention-fusion", **fast_params("attention-fusion")).fit(data)
    out = explain_recommendations(model, data, "u01", k=3)
    assert len(out) == 3
    idx = [int(e.item_id[1:]) for e in out]
    alpha = model.attention(np.array([1]), np.array(idx))[1][0]
    for e, a in zip(out, alpha):
        assert e.weights == pytest.approx({"cf": a[0], "image": a[1], "text": a[2]})


def test_similar_history_items_come_from_the_same_taste_group(data):
    model = create_model("content").fit(data)
    out = explain_recommendations(model, data, "u12", k=3)
    assert len(out) == 3
    for e in out:
        assert e.similar
        assert all(int(s.item_id[1:]) >= GROUP or int(s.item_id[1:]) == 0 for s in e.similar)


def test_cf_similarity_is_the_cosine_of_item_columns(data):
    sims = cf_similarity(data.train, np.array([1, 2]), np.array([1, 3]))
    cols = (data.train[:, [1, 2, 3]] > 0).toarray().astype(float)
    expected = cols[:, 0] @ cols[:, 0] / (np.linalg.norm(cols[:, 0]) ** 2)
    assert sims[0, 0] == pytest.approx(expected)
    cos = cols[:, 1] @ cols[:, 2] / (np.linalg.norm(cols[:, 1]) * np.linalg.norm(cols[:, 2]))
    assert sims[1, 1] == pytest.approx(cos)
