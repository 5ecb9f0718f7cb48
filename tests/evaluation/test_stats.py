"""Uncertainty of the evaluation: exact per-user AUC, bootstrap intervals, paired tests,
K-fold cross-validation, the diversity re-ranking measured, the summary sentence, and a catalog
smaller than K (issue 9 item 5)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recsys import usecases
from recsys.cli import main
from recsys.data.interactions import EvaluationError, implicit_pairs, load_data
from recsys.evaluation import stats
from recsys.evaluation.crossval import fold_data, kfold_codes
from recsys.evaluation.metrics import pairwise_auc, ranking_metrics, top_k, user_auc
from recsys.evaluation.ranking import evaluate_users
from recsys.models import create_model
from recsys.recommend.training import finished_runs
from recsys.store import Store
from recsys.usecases.evaluation import summarize

from ..test_models_helpers import DATASET, fill_store, tiny_data


# -- metrics ---------------------------------------------------------------------------------
def _brute_auc(scores: np.ndarray, truth: np.ndarray) -> float:
    ok = np.isfinite(scores)
    pos, neg = scores[truth & ok], scores[~truth & ok]
    if not len(pos) or not len(neg):
        return np.nan
    return float(np.mean([1.0 if a > b else 0.5 if a == b else 0.0 for a in pos for b in neg]))


def test_user_auc_is_the_exact_per_user_auc_with_ties_and_excluded_items():
    rng = np.random.default_rng(3)
    scores = np.round(rng.random((40, 30)) * 6).astype(np.float32)     # many ties
    scores[:, :4] = -np.inf                                              # training items
    truth = (rng.random((40, 30)) < 0.15) & np.isfinite(scores)
    truth[0] = False                                                     # no positive: NaN
    got = user_auc(scores, sp.csr_matrix(truth.astype(np.float32)), chunk=7)
    want = np.array([_brute_auc(scores[u], truth[u]) for u in range(40)])
    assert np.isnan(got[0]) and np.isnan(want[0])
    np.testing.assert_allclose(got[1:], want[1:], atol=1e-12)


def test_user_auc_is_deterministic_where_the_sampled_auc_is_a_coin_flip():
    """The old "Accuracy (AUC)" sampled one negative per positive: a model that ranks a
    positive in the middle of the catalog scores 0 or 1 by luck. The per-user AUC says 0.5."""
    scores = np.arange(100, dtype=np.float64)[None, :]
    truth = sp.csr_matrix(([1.0], ([0], [50])), shape=(1, 100))
    exact = user_auc(scores, truth)[0]
    assert exact == pytest.approx(50 / 99)
    sampled = [pairwise_auc(scores, truth, np.random.default_rng(s)).mean() for s in range(20)]
    assert {0.0, 1.0} <= set(sampled)


def test_a_catalog_smaller_than_k_is_measured_not_crashed():
    """Issue 9 item 5: 15 items and K = 20 broadcast (738, 15) against (20,)."""
    top = np.array([[3, 1, 4], [2, 0, -1]])                 # -1: nothing left to list
    truth = sp.csr_matrix(np.array([[0, 1, 0, 0, 1], [1, 0, 0, 0, 0]], dtype=np.float32))
    m = ranking_metrics(top, truth, [2, 20])
    assert m[("recall", 20)].tolist() == [1.0, 1.0]
    assert m[("precision", 20)].tolist() == [2 / 20, 1 / 20]
    assert m[("ndcg", 20)][1] == pytest.approx(1 / np.log2(3))
    assert (m[("ndcg", 20)] <= 1).all() and (m[("map", 20)] <= 1).all()


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


# -- statistics --------------------------------------------------------------------------------
def test_bootstrap_intervals_are_seeded_and_cover_the_true_mean():
    rng = np.random.default_rng(0)
    samples = rng.exponential(0.2, size=(300, 200))          # 200 experiments of 300 users
    low, high = stats.bootstrap_ci(samples, n_boot=400, seed=1)
    again = stats.bootstrap_ci(samples, n_boot=400, seed=1)
    np.testing.assert_array_equal(low, again[0])
    coverage = np.mean((low <= 0.2) & (0.2 <= high))
    assert 0.88 <= coverage <= 0.99
    assert np.all(low <= samples.mean(axis=0)) and np.all(samples.mean(axis=0) <= high)
    narrow = stats.bootstrap_ci(np.tile(samples[:, :1], (16, 1)), n_boot=400)
    assert (narrow[1] - narrow[0])[0] < (high - low)[0] / 2     # 16x the users: 1/4 the width


def test_paired_comparison_matches_scipy_and_finds_a_real_gain():
    from scipy.stats import ttest_rel

    rng = np.random.default_rng(1)
    base = rng.random((400, 2))
    better = base * np.array([1.15, 1.0]) + rng.normal(0, 0.02, (400, 2))
    c = stats.paired_comparison(better, base, n_boot=500, seed=0)
    assert c.p_value[0] == pytest.approx(ttest_rel(better[:, 0], base[:, 0]).pvalue)
    assert c.gain_low[0] < 0.15 < c.gain_high[0] and c.gain_low[0] > 0.1
    assert c.significant().tolist() == [True, False]
    same = stats.paired_comparison(base, base)
    assert same.p_value.tolist() == [1.0, 1.0] and same.gain.tolist() == [0.0, 0.0]


# -- cross-validation --------------------------------------------------------------------------
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


# -- the evaluate use case ---------------------------------------------------------------------
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


def test_evaluate_users_without_vectors_measures_only_the_models_order():
    data = tiny_data(with_vectors=False)
    levels = evaluate_users(create_model("itemknn").fit(data), data, (5,), diversity=(0.0, 0.3))
    assert [u.diversity for u in levels] == [0.0]


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


# -- the sentence ------------------------------------------------------------------------------
def _frame(gain: float, p: float, low: float, high: float) -> pd.DataFrame:
    rows = []
    for model, recall, base in (("popularity", 0.05, "ease"), ("ease", 0.20, None),
                                ("late-fusion", 0.20 * (1 + gain), "ease")):
        stats_ = dict(gain=gain, gain_low=low, gain_high=high, p_value=p) \
            if model == "late-fusion" else dict(gain=np.nan, gain_low=np.nan,
                                                gain_high=np.nan, p_value=np.nan)
        for metric in ("recall", "ndcg"):
            rows.append(dict(model=model, run_id=1, protocol="random", slice="all",
                             metric=metric, k=20, value=recall, users=500, baseline=base,
                             **stats_))
    return pd.DataFrame(rows)


def test_the_sentence_states_a_significant_gain_with_its_interval():
    s = summarize(_frame(0.13, 0.001, 0.05, 0.21), "demo")
    assert s.best == "late-fusion" and s.baseline == "ease" and s.significant
    assert s.sentence.startswith("Fusion: late finds 13% more of what shoppers")
    assert "Behaviour: EASE, the best single-signal model (95% CI +5% to +21%)" in s.sentence
    assert s.sentence.endswith(", and 4.5× as much as Bestsellers.")       # 0.226 / 0.05


def test_the_sentence_hedges_a_difference_within_the_noise():
    s = summarize(_frame(0.03, 0.4, -0.04, 0.10), "demo")
    assert not s.significant
    assert s.sentence.startswith("Fusion: late and Behaviour: EASE (the best single-signal "
                                 "model) find about as much of what shoppers went on to choose "
                                 "in their top 20: the +3% difference is within the noise")
    assert "(95% CI −4% to +10%, p = 0.40)" in s.sentence
    assert s.sentence.endswith("Fusion: late finds 4.1× as much as Bestsellers.")


# -- the command line ----------------------------------------------------------------------------
def test_cli_evaluate_prints_intervals_folds_and_diversity(store, capsys):
    fill_store(store)
    db = str(store.path)
    store.close()
    code = main(["evaluate", "--db", db, "--models", "popularity", "itemknn", "content",
                 "--k", "5", "--diversity", "0", "0.5"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Uncertainty at K=5" in out and "[" in out and "p=" in out
    assert "Diversity re-ranking (MMR) at K=5" in out and "0.5" in out
    assert "the best single-signal model" in out and "as much as Bestsellers" in out
    code = main(["evaluate", "--db", db, "--models", "popularity", "itemknn", "--k", "5",
                 "--folds", "2", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert code == 0 and {r["protocol"] for r in rows} == {"2-fold"}
    ndcg = [r for r in rows if r["metric"] == "ndcg" and r["slice"] == "all"]
    assert len(ndcg) == 2                                      # one row per model
    assert all(r["std"] is not None for r in ndcg)
    code = main(["evaluate", "--db", db, "--models", "itemknn", "--folds", "1", "--k", "5"])
    assert code == 2 and "between 2 and 20" in capsys.readouterr().err
