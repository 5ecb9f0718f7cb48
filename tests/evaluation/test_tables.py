"""The tables of an evaluation as data (what the Evaluate page and the command line show), and
the one significance rule they, the summary sentence, the charts and the A/B test share."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.evaluation import tables
from recsys.evaluation.stats import ALPHA, is_significant
from recsys.simulation.abtest import DEFAULT_ALPHA, compare
from ui import charts


def _row(model: str, metric: str, k: int | None, value: float, *, slice_: str = "all",
         base: str | None = None, gain: float = np.nan, p: float = np.nan,
         std: float = np.nan, ci: bool = True) -> dict:
    return dict(model=model, run_id=1, protocol="random", slice=slice_, metric=metric, k=k,
                value=value, users=400, ci_low=value - 0.01 if ci else np.nan,
                ci_high=value + 0.01 if ci else np.nan, std=std, baseline=base, gain=gain,
                gain_low=gain - 0.05, gain_high=gain + 0.05, p_value=p)


def _overall() -> pd.DataFrame:
    """Three models on all test users: EASE the baseline, late fusion significantly better,
    content-image not significantly different; content-image has no coverage."""
    rows = []
    for model, value, gain, p in (("ease", 0.20, np.nan, np.nan),
                                  ("late-fusion", 0.25, 0.25, 0.001),
                                  ("content-image", 0.19, -0.05, 0.30)):
        base = None if model == "ease" else "ease"
        for metric, k in (("ndcg", 20), ("recall", 20), ("precision", 20), ("f1", 20),
                          ("hit_rate", 20), ("map", 20), ("mrr", 20), ("auc", None),
                          ("coverage", 20), ("diversity", 20), ("novelty", 20)):
            if model == "content-image" and metric == "coverage":
                continue
            rows.append(_row(model, metric, k, value, base=base, gain=gain, p=p))
    return pd.DataFrame(rows)


# -- the significance rule ----------------------------------------------------------------------
def test_is_significant_is_below_alpha_and_a_missing_test_is_not():
    assert ALPHA == 0.05 and DEFAULT_ALPHA == ALPHA
    assert is_significant(0.001) is True and is_significant(0.049) is True
    assert is_significant(ALPHA) is False and is_significant(0.5) is False
    assert is_significant(None) is False and is_significant(float("nan")) is False
    assert is_significant(0.02, alpha=0.01) is False
    got = is_significant(np.array([0.01, 0.05, np.nan, 0.2]))
    assert got.dtype == bool and got.tolist() == [True, False, False, False]
    assert is_significant(pd.Series([0.01, None])).tolist() == [True, False]


def test_the_ab_test_and_the_charts_use_the_same_rule():
    a = np.zeros(200)
    b = np.r_[np.ones(40), np.zeros(160)]
    c = compare("click", a, b, np.full(200, 0.1), np.full(200, 0.2))
    assert c.significant == is_significant(c.p_value) and c.significant
    sel = pd.DataFrame({"p_value": [0.001, ALPHA, np.nan, 0.4]})
    assert charts.not_significant(sel).tolist() == [False, True, False, True]


# -- lookups and cells --------------------------------------------------------------------------
def test_metric_row_picks_model_metric_k_and_slice():
    frame = pd.DataFrame([_row("ease", "ndcg", 20, 0.2), _row("ease", "ndcg", 10, 0.1),
                          _row("ease", "ndcg", 20, 0.3, slice_="cold_items"),
                          _row("ease", "auc", None, 0.9)])
    assert tables.metric_row(frame, "ease", "ndcg", 20)["value"] == 0.2
    assert tables.metric_row(frame, "ease", "ndcg", 20, "cold_items")["value"] == 0.3
    assert tables.metric_row(frame, "ease", "auc", None)["value"] == 0.9
    assert tables.metric_row(frame, "ease", "recall", 20) is None
    assert tables.metric_row(frame, "bpr", "ndcg", 20) is None
    no_slices = frame[frame["slice"] == "all"].drop(columns="slice")
    assert tables.metric_row(no_slices, "ease", "ndcg", 10)["value"] == 0.1


def test_baseline_of_names_the_model_tested_against():
    assert tables.baseline_of(_overall()) == "ease"
    assert tables.baseline_of(_overall().assign(baseline=None)) is None
    assert tables.baseline_of(pd.DataFrame({"model": ["ease"]})) is None


def test_a_value_carries_its_std_over_folds_else_its_interval():
    assert tables.value_text(pd.Series(_row("ease", "ndcg", 20, 0.2, std=0.004))) == \
        "0.2000 ± 0.0040"
    interval = pd.Series(_row("ease", "ndcg", 20, 0.2))
    assert tables.value_text(interval) == "0.2000 (0.1900–0.2100)"
    assert tables.value_text(interval, "[{:.4f}, {:.4f}]") == "0.2000 [0.1900, 0.2100]"
    assert tables.value_text(pd.Series(_row("ease", "ndcg", 20, 0.2, ci=False))) == "0.2000"


# -- the page's tables --------------------------------------------------------------------------
def test_the_results_table_has_one_row_per_model_in_order_with_gains_and_verdicts():
    table = tables.results_table(_overall(), ["late-fusion", "ease", "content-image"], 20,
                                 "ease")
    assert table["Model"].tolist() == ["Combined: weighted blend", "Behaviour: EASE",
                                       "Content: photo"]
    assert table["Family"].tolist() == ["combined", "behaviour", "content"]
    assert list(table.columns[2:]) == [
        "Ranking quality (NDCG) @20", "Recall @20", "Precision @20", "Balance (F1) @20",
        "Hit rate @20", "Average precision (MAP) @20", "First hit's rank (MRR) @20",
        "Accuracy (AUC)", "Catalog coverage @20", "Intra-list diversity @20", "Novelty @20",
        "Ranking quality @20 vs baseline"]
    fusion, ease, photo = (row for _, row in table.iterrows())
    assert fusion["Ranking quality (NDCG) @20"] == "0.2500 (0.2400–0.2600)"
    assert fusion["Accuracy (AUC)"] == "0.2500 (0.2400–0.2600)"
    assert fusion["Ranking quality @20 vs baseline"] == "+25.0% (+20.0% to +30.0%), significant, p = 0.001"
    assert ease["Ranking quality @20 vs baseline"] == "baseline"
    assert photo["Ranking quality @20 vs baseline"] == "-5.0% (-10.0% to +0.0%), n.s., p = 0.3"
    assert photo["Catalog coverage @20"] == "–"
    assert "None" not in table.to_string() and "nan" not in table.to_string()


def test_the_results_table_of_an_unknown_model_keeps_its_name():
    frame = pd.DataFrame([_row("retired-model", "ndcg", 20, 0.1)])
    table = tables.results_table(frame, ["retired-model"], 20, None)
    assert table.loc[0, "Model"] == "retired-model" and table.loc[0, "Family"] == ""
    assert table.loc[0, "Ranking quality @20 vs baseline"] == "–"


def test_the_headline_tiles_show_best_baseline_and_fusion_gain():
    best, base, gain = tables.headline_tiles(_overall(), 20, "ease")
    assert (best.label, best.value) == ("Best ranking quality (NDCG@20)", "0.250")
    assert best.caption == "Combined: weighted blend · 95% CI 0.240–0.260"
    assert (base.label, base.value) == ("Baseline's quality (NDCG@20)", "0.200")
    assert base.caption.startswith("Behaviour: EASE: the baseline")
    assert (gain.label, gain.value) == ("Gain in ranking quality", "+25.0%")
    assert gain.caption == ("Combined: weighted blend · 95% CI +20.0% to +30.0% · significant "
                            "(p = 0.001)")
    assert gain.help
    folds = _overall().assign(std=0.01)
    assert tables.headline_tiles(folds, 20, "ease")[0].caption == \
        "Combined: weighted blend · ± 0.010 over folds"


def test_the_headline_tiles_leave_out_what_there_is_not():
    frame = _overall()
    assert tables.headline_tiles(frame, 10, "ease") == []          # no NDCG@10
    best, base, gain = tables.headline_tiles(frame, 20, None)        # no baseline
    assert best is not None and base is None and gain is None
    not_fusion = frame[frame["model"] != "late-fusion"]
    assert tables.headline_tiles(not_fusion, 20, "ease")[2] is None
    weak = frame.assign(p_value=np.where(frame["model"] == "late-fusion", 0.3, np.nan))
    assert "not significant (p = 0.3)" in tables.headline_tiles(weak, 20, "ease")[2].caption


def test_the_diversity_table_orders_models_then_levels_and_marks_changes():
    rows = []
    for model in ("late-fusion", "ease"):
        for level, gain, p in ((0.0, np.nan, np.nan), (0.5, -0.10, 0.001), (0.2, -0.01, 0.6)):
            for metric in ("ndcg", "recall", "diversity"):
                rows.append(dict(model=model, run_id=1, protocol="random", diversity=level,
                                 metric=metric, k=20, value=0.3, gain=gain, p_value=p))
    effect = pd.DataFrame(rows)
    table = tables.diversity_table(effect, 20, ["ease", "late-fusion"])
    assert list(zip(table["Model"], table["Level"])) == [
        ("Behaviour: EASE", "0"), ("Behaviour: EASE", "0.2"), ("Behaviour: EASE", "0.5"),
        ("Combined: weighted blend", "0"), ("Combined: weighted blend", "0.2"),
        ("Combined: weighted blend", "0.5")]
    ndcg = "Ranking quality (NDCG) @20"
    assert list(table.columns) == ["Model", "Level", ndcg, "Recall@20", "Diversity@20",
                                   "Coverage@20"]
    assert table.loc[0, ndcg] == "0.300"                        # the model's own list
    assert table.loc[1, ndcg] == "0.300 (-1.0%, n.s.)"
    assert table.loc[2, ndcg] == "0.300 (-10.0%)"
    assert (table["Coverage@20"] == "–").all()
    assert tables.diversity_table(effect, 10, ["ease"]).empty


@pytest.mark.parametrize("p, verdict", [(0.001, "significant"), (0.05, "not significant"),
                                        (np.nan, "not significant")])
def test_the_verdict_follows_the_rule(p, verdict):
    assert tables.verdict(p) == verdict
