"""Splits, metrics at K against hand-computed values, slices and the model comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys.data.interactions import (
    EvaluationError,
    assign_split,
    implicit_pairs,
    load_data,
)
from recsys.evaluation.metrics import pairwise_auc, ranking_metrics, top_k
from recsys.evaluation.ranking import evaluate_model
from recsys.models import create_model
from recsys.usecases import evaluate as evaluate_models

from ..test_models_helpers import DATASET, N_ITEMS, N_USERS, fill_store, tiny_data


def test_ranking_metrics_match_hand_computed_values():
    top = np.array([[3, 1, 4, 0, 2]])              # ranked list of one user
    truth = sp.csr_matrix(np.array([[0, 1, 1, 0, 0, 0, 1]], dtype=np.float32))  # 1, 2, 6
    m = ranking_metrics(top, truth, [2, 5])
    assert m[("precision", 2)][0] == pytest.approx(0.5)
    assert m[("recall", 2)][0] == pytest.approx(1 / 3)
    assert m[("f1", 2)][0] == pytest.approx(2 * 0.5 * (1 / 3) / (0.5 + 1 / 3))
    assert m[("hit_rate", 2)][0] == 1.0
    assert m[("mrr", 5)][0] == pytest.approx(0.5)
    # hits at ranks 2 and 5: DCG = 1/log2(3) + 1/log2(6); ideal = 1 + 1/log2(3) + 1/log2(4)
    dcg = 1 / np.log2(3) + 1 / np.log2(6)
    assert m[("ndcg", 5)][0] == pytest.approx(dcg / (1 + 1 / np.log2(3) + 0.5))
    # AP@5 = (1/2 + 2/5) / min(3, 5)
    assert m[("map", 5)][0] == pytest.approx((0.5 + 0.4) / 3)
    assert m[("recall", 5)][0] == pytest.approx(2 / 3)


def test_top_k_is_sorted_and_auc_counts_ties_as_half():
    scores = np.array([[0.1, 0.9, 0.5, 0.7]])
    assert top_k(scores, 3).tolist() == [[1, 3, 2]]
    truth = sp.csr_matrix(np.array([[0, 1, 0, 0]], dtype=np.float32))
    flat = np.array([[1.0, 1.0, 1.0, 1.0]])
    aucs = pairwise_auc(flat, truth, np.random.default_rng(0))
    assert set(aucs) <= {0.5}
    assert pairwise_auc(scores, truth, np.random.default_rng(0)).mean() == 1.0


def test_repeated_events_collapse_to_one_positive_with_the_largest_weight(store):
    fill_store(store)
    pairs = implicit_pairs(store, DATASET)
    assert not pairs.duplicated(["user_id", "item_id"]).any()
    raw = store.interactions(DATASET)
    assert len(raw) > len(pairs)
    assert set(pairs["weight"]) == {1.0, 5.0}


def test_random_split_is_8_1_1_per_user_and_deterministic():
    pairs = pd.DataFrame({"user_id": np.repeat(["a", "b"], [20, 3]), "item_id": range(23),
                          "ts": pd.NaT, "split_code": np.nan})
    codes = assign_split(pairs, "random", seed=1)
    assert np.array_equal(codes, assign_split(pairs, "random", seed=1))
    assert not np.array_equal(codes, assign_split(pairs, "random", seed=2))
    a = codes[:20]
    assert (a == 2).sum() == 2 and (a == 1).sum() == 2 and (a == 0).sum() == 16
    assert sorted(codes[20:]) == [0, 1, 2]


def test_temporal_split_holds_out_each_users_newest_items():
    ts = pd.to_datetime(["2025-01-01", "2025-01-03", "2025-01-02", "2025-01-05"])
    pairs = pd.DataFrame({"user_id": ["a"] * 4, "item_id": list("wxyz"), "ts": ts,
                          "split_code": np.nan})
    assert assign_split(pairs, "temporal").tolist() == [0, 1, 0, 2]
    no_time = pairs.assign(ts=pd.NaT)
    with pytest.raises(EvaluationError, match="timestamps"):
        assign_split(no_time, "temporal")


def test_a_stored_split_is_used_as_is(store):
    fill_store(store, with_split=True)
    data = load_data(store, DATASET)
    assert data.protocol == "stored"
    expected = tiny_data()
    assert (data.test != expected.test).nnz == 0 and (data.valid != expected.valid).nnz == 0
    assert data.image is not None and data.image.shape[0] == N_ITEMS


def test_load_data_without_interactions_and_bad_protocol_are_clear(store):
    fill_store(store)
    with pytest.raises(EvaluationError, match="random or temporal"):
        load_data(store, DATASET, protocol="stored")
    with pytest.raises(EvaluationError, match="Unknown split protocol"):
        load_data(store, DATASET, protocol="weekly")


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


def test_evaluate_models_trains_what_is_missing_and_stores_metrics(store):
    fill_store(store)
    frame = evaluate_models(store, DATASET, ["popularity", "itemknn"], ks=(5, 10))
    assert set(frame["model"]) == {"popularity", "itemknn"}
    stored = store.run_metrics(dataset=DATASET)
    assert set(stored["model"]) == {"popularity", "itemknn"}
    assert set(stored["protocol"]) == {"random"}
    again = evaluate_models(store, DATASET, ["itemknn"], ks=(5,))
    assert again["run_id"].iloc[0] == frame[frame.model == "itemknn"]["run_id"].iloc[0], \
        "an existing model is reused, not retrained"
    assert len(store.runs(DATASET, kind="model")) == 2


def test_without_models_only_applicable_ones_are_evaluated(store):
    fill_store(store, with_vectors=False)
    frame = evaluate_models(store, DATASET, ks=(5,))
    assert set(frame["model"]) == {"popularity", "itemknn", "userknn", "bpr", "ease", "lightgcn"}
    assert frame["users"].max() <= N_USERS
