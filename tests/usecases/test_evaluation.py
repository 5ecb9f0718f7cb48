"""The evaluation use cases: models trained when missing and reused, only applicable ones
evaluated, intervals and tests against the best single-signal model, diversity re-ranking,
cross-validation, a catalog smaller than K, damaged runs passed over, and the evaluation left
behind by the first start."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys import usecases
from recsys.recommend.training import finished_runs
from recsys.store import Store
from recsys.usecases import evaluate as evaluate_models

from ..test_models_helpers import DATASET, N_USERS, fill_store
from pathlib import Path
from ..damaged_files import damage_file
from ..test_models_helpers import DATASET, N_ITEMS


@pytest.fixture
def few_items_store(store: Store) -> Store:
    """15 items, 60 shoppers with 6 items each: fewer items than the default K of 20."""
    rng = np.random.default_rng(0)
    items = pd.DataFrame({"dataset": "few", "item_id": [f"i{i}" for i in range(15)],
                          "title": [f"Thing {i}" for i in range(15)]})
    rows = [("few", f"u{u}", f"i{i}", "view", pd.Timestamp("2025-01-01") + pd.Timedelta(
        minutes=10 * u + n), 1.0, None) for u in range(60)
        for n, i in enumerate(rng.choice(15, 6, replace=False))]
    inter = pd.DataFrame(rows, columns=["dataset", "user_id", "item_id", "event", "ts",
                                        "weight", "split"])
    with store.transaction() as cur:
        store.upsert_dataset(cur, "few", "catalog")
        store.insert_frame(cur, "items", items)
        store.insert_frame(cur, "users", pd.DataFrame({"dataset": "few",
                                                       "user_id": sorted(set(inter.user_id))}))
        store.insert_frame(cur, "interactions", inter)
    return store


def test_train_and_evaluate_a_catalog_smaller_than_k(few_items_store: Store):
    usecases.train(few_items_store, "few", "itemknn")
    frame = usecases.evaluate(few_items_store, "few", ["popularity", "ease", "itemknn"],
                              ks=(5, 20))
    recall = frame[(frame.metric == "recall") & (frame.k == 20) & (frame.slice == "all")]
    assert len(recall) == 3 and recall["value"].between(0, 1).all()
    assert frame[frame.metric == "auc"]["value"].between(0, 1).all()


def test_evaluate_stores_intervals_and_tests_against_the_best_single_signal_model(store):
    fill_store(store)
    frame = usecases.evaluate(store, DATASET, ["popularity", "itemknn", "content"], ks=(5,),
                              diversity=(0.5,))
    stored = usecases.evaluation_results(store, DATASET)
    all_ = stored[(stored.slice == "all") & (stored.metric == "ndcg")].set_index("model")
    per_user = all_.dropna(subset=["ci_low"])
    assert len(per_user) == 3
    assert ((per_user.ci_low <= per_user.value) & (per_user.value <= per_user.ci_high)).all()
    base = all_.loc["content", "baseline"]
    assert base in ("popularity", "itemknn"), "content reads two signals: never the baseline"
    assert pd.isna(all_.loc[base, "p_value"])
    assert all_.loc["content", "gain"] == pytest.approx(
        all_.loc["content", "value"] / all_.loc[base, "value"] - 1)
    assert 0 <= all_.loc["content", "p_value"] <= 1
    assert set(frame.columns) >= {"ci_low", "ci_high", "p_value", "gain_low", "baseline"}
    coverage = stored[stored.metric == "coverage"]
    assert coverage["ci_low"].isna().all(), "a catalog-level number has no per-user interval"


def test_a_single_signal_baseline_is_added_when_none_was_asked_for(store):
    fill_store(store)
    frame = usecases.evaluate(store, DATASET, ["content"], ks=(5,), diversity=())
    assert set(frame.model) == {"content", "ease"}
    with pytest.raises(Exception, match="one signal only"):
        usecases.evaluate(store, DATASET, ["popularity"], ks=(5,), baseline="content")


def test_diversity_reranking_is_measured_with_the_same_metrics(store):
    fill_store(store)
    usecases.evaluate(store, DATASET, ["itemknn", "content"], ks=(5,), diversity=(0.5, 1.0))
    effect = usecases.diversity_effect(store, DATASET)
    assert set(effect.diversity) == {0.0, 0.5, 1.0}
    for model, rows in effect[effect.metric == "diversity"].groupby("model"):
        by_level = rows.set_index("diversity")["value"]
        assert by_level[1.0] >= by_level[0.0] - 1e-9, model
    plain = usecases.evaluation_results(store, DATASET)
    ndcg0 = effect[(effect.metric == "ndcg") & (effect.diversity == 0)].set_index("model")
    plain = plain[(plain.slice == "all") & (plain.metric == "ndcg") & (plain.k == 5)]
    np.testing.assert_allclose(ndcg0.loc[plain.model, "value"], plain["value"])
    reranked = effect[effect.diversity > 0]
    tested = reranked.dropna(subset=["p_value"])
    assert set(tested.metric) == {"ndcg", "recall", "diversity", "novelty"}
    assert (tested["baseline"] == "diversity 0").all()
    assert reranked[reranked.metric == "coverage"]["p_value"].isna().all()


def test_cross_validation_reports_mean_and_std_over_folds(store):
    fill_store(store)
    frame = usecases.evaluate(store, DATASET, ["popularity", "itemknn"], ks=(5,), folds=3)
    assert set(frame.protocol) == {"3-fold"}
    ndcg = frame[(frame.slice == "all") & (frame.metric == "ndcg")].set_index("model")
    assert ndcg["std"].notna().all() and (ndcg["std"] >= 0).all()
    assert ((ndcg["ci_low"] <= ndcg["value"]) & (ndcg["value"] <= ndcg["ci_high"])).all()
    assert finished_runs(store, DATASET).empty, "fold models are not usable model runs"
    assert set(store.runs(DATASET, kind="evaluation")["model"]) == {"popularity", "itemknn"}
    assert "3-fold" in set(usecases.evaluation_results(store, DATASET)["protocol"])


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
    assert set(frame["model"]) == {"popularity", "itemknn", "userknn", "bpr", "ease", "lightgcn",
                                   "als", "bpr-implicit"}
    assert frame["users"].max() <= N_USERS


def test_first_start_leaves_an_evaluation_behind(app_db: Path):
    store = Store(app_db)
    try:
        results = usecases.evaluation_results(store)
        assert set(results["model"]) == set(usecases.first_evaluation_models(store))
        assert not usecases.diversity_effect(store).empty
        assert usecases.evaluation_summary(store).sentence
    finally:
        store.close()


def test_evaluate_passes_over_a_damaged_run(interactions_shop: Store):
    first = usecases.evaluate(interactions_shop, "shop", ["ease"], ks=[10], protocol="random")
    run_id = int(first["run_id"].iloc[0])
    damage_file(interactions_shop.run(run_id)["artifact_path"], "NaN weights")
    again = usecases.evaluate(interactions_shop, "shop", ["ease"], ks=[10], protocol="random")
    assert int(again["run_id"].iloc[0]) != run_id                  # trained again
    notes = again.attrs["notes"]
    assert any(f"Run {run_id}" in n and "damaged" in n for n in notes)
    assert any("trained again" in n for n in notes)


def test_evaluation_of_a_small_catalog_keeps_k_past_its_size(tiny_store: Store):
    """K larger than the catalog is measured as asked (recall@K is 1 there); only K past
    `MAX_METRIC_K` is lowered."""
    frame = usecases.evaluate(tiny_store, DATASET, ["popularity"], ks=(5, N_ITEMS + 10))
    assert set(frame["k"].dropna()) == {5, N_ITEMS + 10} and not frame.attrs["notes"]
