"""Full-ranking evaluation of a model: every metric and slice, the cold-item slice that only
content reaches, and the model's own order when there are no vectors."""

from __future__ import annotations

import numpy as np

from recsys.evaluation.ranking import evaluate_model, evaluate_users
from recsys.models import create_model

from ..test_models_helpers import tiny_data


def test_evaluate_model_reports_every_metric_and_slice():
    data = tiny_data()
    train = data.train.tolil()
    train[0, train.rows[0][2:]] = 0                 # user 0 keeps a short history of 2 items
    data.train = train.tocsr()
    data.train.eliminate_zeros()
    model = create_model("content").fit(data)
    frame = evaluate_model(model, data, ks=(5, 10))
    all_ = frame[frame.slice == "all"]
    for metric in ("precision", "recall", "f1", "ndcg", "hit_rate", "map", "mrr", "coverage",
                   "diversity", "novelty"):
        assert set(all_[all_.metric == metric]["k"]) == {5, 10}, metric
    assert len(all_[all_.metric == "auc"]) == 1
    assert frame["value"].between(0, np.inf).all()
    assert set(frame["slice"]) == {"all", "short_history"}     # no cold test items here
    assert frame[frame.slice == "short_history"]["users"].iloc[0] == 1
    assert (frame[frame.metric == "recall"]["value"] <= 1).all()


def test_cold_slice_only_content_reaches_cold_items():
    data = tiny_data()
    # move one test positive of every group-A user onto the cold item 20
    test = data.test.tolil()
    for u in range(5):
        test[u, :] = 0
        test[u, 20] = 1
    data.test = test.tocsr()
    content = evaluate_model(create_model("content").fit(data), data, ks=(5,))
    cf = evaluate_model(create_model("itemknn").fit(data), data, ks=(5,))

    def cold(frame, metric):
        return frame[(frame.slice == "cold_items") & (frame.metric == metric)]["value"].iloc[0]

    assert cold(content, "recall") > 0.5
    assert cold(cf, "recall") == 0.0


def test_evaluate_users_without_vectors_measures_only_the_models_order():
    data = tiny_data(with_vectors=False)
    levels = evaluate_users(create_model("itemknn").fit(data), data, (5,), diversity=(0.0, 0.3))
    assert [u.diversity for u in levels] == [0.0]
