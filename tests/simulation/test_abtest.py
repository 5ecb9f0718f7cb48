"""The simulated A/B test against simulation noise, its sample size and paired comparison, and the
verdict when offline and online disagree.

Before common random numbers, shoppers were split at random and their visits drawn from one
random stream; the same model on both arms came out "significant +145%" at seed 0 (6 of 40
seeds significant on the 600-shopper demo, 21 of 300 on clicks). Now every shopper sees both
arms with the same random draws and the test is paired over shoppers (visits of one shopper are
not independent), so the same model is never significant, while a real difference still is."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from recsys import usecases
from recsys.simulation.abtest import METRICS, compare, simulate_both_arms
from recsys.simulation.shoppers import HiddenTastes, SimulationConfig
from recsys.store import Store

from ..conftest import DEMO_USERS


@pytest.fixture(scope="module")
def ab_store(ready_demo_db: Path, tmp_path_factory):
    """One copy of the set-up demo for the module (the tests only read it, after the first
    replay caches the shoppers' tastes and the runs exist)."""
    path = tmp_path_factory.mktemp("ab") / "recsys.duckdb"
    shutil.copy(ready_demo_db, path)
    store = Store(path)
    yield store
    store.close()


def test_the_same_model_on_both_arms_is_not_significant_across_seeds(ab_store: Store):
    significant = {m: 0 for m in METRICS}
    seeds = range(40)
    for seed in seeds:
        r = usecases.ab_test(ab_store, "demo", "popularity", "popularity", k=10, visits=2,
                             seed=seed)
        assert r.population == DEMO_USERS
        for m, c in r.comparisons.items():
            significant[m] += c.significant
            # the same shoppers and the same luck: the same outcome, the same expected rate
            assert c.a.rate == c.b.rate and c.expected_lift == 0.0
            assert c.lift in (None, 0.0)
    for m in METRICS:
        assert significant[m] <= 0.05 * len(seeds), significant


def test_a_real_difference_is_still_detected(ab_store: Store):
    """Personal picks (item k-NN) against bestsellers: the simulator's tastes favour the
    personal ones (noise-free lift > 0), and the paired test finds it at every seed tried.
    40 visits per shopper: the 90-shopper fixture's noise-free lift is 0.37 (its drawings at
    2x since the first-start speed-up), and with 5 or 10 visits the test's own power estimate
    asks for 120-560 shoppers per arm, so some seeds missed it."""
    for seed in range(5):
        r = usecases.ab_test(ab_store, "demo", "popularity", "itemknn", k=10, visits=40,
                             seed=seed)
        clicks = r.comparisons["click"]
        assert clicks.expected_lift > 0.2
        assert clicks.significant and clicks.lift > 0 and clicks.lift_low > 0, clicks
        # clicks and purchases each carry their own test
        data = r.to_dict()
        assert set(data["significant"]) == {"click", "cart", "purchase"}
        assert data["significant"]["click"] is True
        buys = data["metrics"]["purchase"]
        assert 0.0 <= buys["p_value"] <= 1.0 and isinstance(buys["significant"], bool)
        assert data["significant"]["purchase"] == buys["significant"]
        assert data["design"].startswith("every shopper sees both arms")


def _toy_tastes(n_users: int, n_items: int = 40, seed: int = 0) -> HiddenTastes:
    rng = np.random.default_rng(seed)
    return HiddenTastes([f"u{i}" for i in range(n_users)], [f"i{i}" for i in range(n_items)],
                        rng.normal(size=(n_users, n_items)).astype(np.float32),
                        np.full((n_users, 2), 0.5, dtype=np.float32),
                        np.arange(n_items) % 2, None)


def test_both_arms_use_the_same_draws_per_shopper():
    hidden = _toy_tastes(30)
    config = SimulationConfig(cart_rate=0.3, purchase_rate=0.5)
    top = {u: np.argsort(-hidden.affinity[u])[:5] for u in range(30)}
    worst = {u: np.argsort(hidden.affinity[u])[:5] for u in range(30)}
    same = simulate_both_arms({"A": top, "B": dict(top)}, hidden, config, visits=20, seed=3)
    for m in METRICS:
        np.testing.assert_array_equal(same["A"].counts[m], same["B"].counts[m])
    again = simulate_both_arms({"A": top, "B": worst}, hidden, config, visits=20, seed=3)
    np.testing.assert_array_equal(again["A"].counts["click"], same["A"].counts["click"])
    other = simulate_both_arms({"A": top, "B": worst}, hidden, config, visits=20, seed=4)
    assert not np.array_equal(other["A"].counts["click"], same["A"].counts["click"])
    # the draws follow the choice probabilities: observed rates near the expected ones
    for arm in ("A", "B"):
        observed = again[arm].counts["click"].sum() / (20 * 30)
        assert observed == pytest.approx(again[arm].expected["click"].mean(), abs=0.05)
    assert again["A"].expected["click"].mean() > again["B"].expected["click"].mean()
    with pytest.raises(Exception, match="same shoppers"):
        simulate_both_arms({"A": top, "B": {0: worst[0]}}, hidden, config, visits=1)


def test_the_paired_test_holds_its_level_on_clustered_visits():
    """No common random numbers here (independent draws in each arm), shoppers whose click
    rates differ a lot (Beta(0.5, 3)) and 20 visits each: the per-shopper paired test rejects
    about alpha of the time. Counting visits as independent (a visit-level two-proportion test
    on the split design the test used before) rejects far more often."""
    from scipy import stats

    rng = np.random.default_rng(0)
    n, visits, reps = 200, 20, 400
    paired_rejects = naive_rejects = 0
    for _ in range(reps):
        p = rng.beta(0.5, 3.0, n)
        a = rng.binomial(visits, p) / visits
        b = rng.binomial(visits, p) / visits
        paired_rejects += compare("click", a, b, p, p).significant
        # the old design: half the shoppers in each arm, visits counted as independent
        half = rng.permutation(n)
        xa, xb = a[half[: n // 2]] * visits, b[half[n // 2:]] * visits
        table = [[xa.sum(), visits * len(xa) - xa.sum()], [xb.sum(), visits * len(xb) - xb.sum()]]
        naive_rejects += stats.chi2_contingency(table, correction=False).pvalue < 0.05
    assert 0.02 <= paired_rejects / reps <= 0.09
    assert naive_rejects / reps > 0.25


def test_sample_size_matches_the_textbook_number():
    from recsys.simulation.abtest import needed_per_arm

    # 10% vs 12%, alpha 0.05 two-sided, power 0.8: about 3,840 per arm
    assert needed_per_arm(0.02, 0.1 * 0.9, 0.12 * 0.88) == 3839
    assert needed_per_arm(0.0, 0.1, 0.1) is None


def test_comparison_is_a_paired_test_over_shoppers_with_a_lift_interval():
    from scipy import stats

    from recsys.simulation.abtest import compare

    # row i is the same shopper in both arms: 100 click in both, 30 more only with B
    a = np.r_[np.ones(100), np.zeros(900)]
    b = np.r_[np.ones(130), np.zeros(870)]
    c = compare("click", a, b, a * 0 + 0.1, b * 0 + 0.13)
    assert c.a.rate == pytest.approx(0.10) and c.b.rate == pytest.approx(0.13)
    assert c.lift == pytest.approx(0.3)
    assert c.p_value == pytest.approx(stats.ttest_rel(b, a).pvalue)
    assert c.significant and c.lift_low < 0.3 < c.lift_high
    assert c.expected_lift == pytest.approx(0.3)
    # a live split test would need more shoppers per arm than this paired one has
    assert c.needed_per_arm > 1000
    same = compare("click", a, a.copy(), a * 0 + 0.1, a * 0 + 0.1)
    assert same.p_value == pytest.approx(1.0) and not same.significant
    assert same.needed_per_arm is None and same.lift == pytest.approx(0.0)
    with pytest.raises(Exception, match="same shoppers"):
        compare("click", a, b[:10], a * 0, b[:10] * 0)


def test_verdict_flags_offline_and_online_disagreeing():
    from recsys.simulation.abtest import compare, verdict

    a = np.r_[np.ones(50), np.zeros(950)]
    b = np.r_[np.ones(52), np.zeros(948)]
    # offline B is 3x better, yet the noise-free click rates are equal: they disagree
    c = compare("click", a, b, a * 0 + 0.05, b * 0 + 0.0505)
    v = verdict("A", "B", 0.037, 0.111, c, 10)
    assert v.agree is None and v.truth_agree is False and v.disagree
    assert "practically equal" in v.summary and "disagree" in v.summary
    # B better offline and truly better online: they agree
    c = compare("click", a, b, a * 0 + 0.05, b * 0 + 0.06)
    v = verdict("A", "B", 0.10, 0.12, c, 10)
    assert v.truth_agree and not v.disagree and "the direction offline predicts" in v.summary
    # a significant online result the other way round
    worse = np.r_[np.ones(20), np.zeros(980)]
    c = compare("click", a, worse, a * 0 + 0.05, worse * 0 + 0.02)
    v = verdict("A", "B", 0.10, 0.12, c, 10)
    assert v.agree is False and v.disagree and "opposite" in v.summary


def test_verdict_of_two_equal_offline_scores_names_no_winner():
    """Two runs of the same model score the same NDCG: offline has no direction, so the verdict
    neither names a better model nor says online agrees or disagrees with it."""
    from recsys.simulation.abtest import verdict

    a = np.r_[np.ones(50), np.zeros(950)]
    c = compare("click", a, a.copy(), a * 0 + 0.05, a * 0 + 0.05)
    v = verdict("A", "B", 0.1338, 0.13381, c, 10)
    assert "equally well" in v.summary and "ranks the held-out interactions better" not in v.summary
    assert v.agree is None and v.truth_agree is None and not v.disagree
    assert "practically equal" in v.summary
    worse = np.r_[np.ones(20), np.zeros(980)]
    c = compare("click", a, worse, a * 0 + 0.05, worse * 0 + 0.02)
    v = verdict("A", "B", 0.1338, 0.1338, c, 10)
    assert v.agree is None and not v.disagree and "offline could not tell them apart" in v.summary
    assert "a difference offline does not show" in v.summary
