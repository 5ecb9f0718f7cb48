"""Uncertainty of the evaluation: seeded bootstrap intervals that cover the true mean, and the
paired comparison (it matches scipy and finds a real gain)."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.evaluation import stats


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
    assert stats.is_significant(c.p_value).tolist() == [True, False]
    same = stats.paired_comparison(base, base)
    assert same.p_value.tolist() == [1.0, 1.0] and same.gain.tolist() == [0.0, 0.0]
