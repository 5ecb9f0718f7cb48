"""Ranking metrics at K against hand-computed values, top-K order, AUC with ties, the exact
per-user AUC (deterministic where the sampled one is a coin flip), and a catalog smaller than K
measured, not crashed."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.evaluation.metrics import ranking_metrics, top_k, user_auc


def _brute_auc(scores: np.ndarray, truth: np.ndarray) -> float:
    ok = np.isfinite(scores)
    pos, neg = scores[truth & ok], scores[~truth & ok]
    if not len(pos) or not len(neg):
        return np.nan
    return float(np.mean([1.0 if a > b else 0.5 if a == b else 0.0 for a in pos for b in neg]))


def _sampled_auc(scores: np.ndarray, truth: sp.csr_matrix, rng: np.random.Generator
                 ) -> np.ndarray:
    """The estimate many papers report: per held-out positive, 1 if it outranks one random
    non-positive item, 0.5 on ties."""
    coo = truth.tocoo()
    neg = rng.integers(0, scores.shape[1], len(coo.row))
    is_pos = truth.toarray()[coo.row, neg] > 0
    s_pos = scores[coo.row, coo.col]
    s_neg = scores[coo.row, neg]
    keep = ~is_pos & np.isfinite(s_neg)
    return np.where(s_pos > s_neg, 1.0, np.where(s_pos == s_neg, 0.5, 0.0))[keep]


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
    sampled = [_sampled_auc(scores, truth, np.random.default_rng(s)).mean() for s in range(20)]
    assert {0.0, 1.0} <= set(sampled)


def test_a_catalog_smaller_than_k_is_measured_not_crashed():
    """Regression: 15 items and K = 20 broadcast (738, 15) against (20,)."""
    top = np.array([[3, 1, 4], [2, 0, -1]])                 # -1: nothing left to list
    truth = sp.csr_matrix(np.array([[0, 1, 0, 0, 1], [1, 0, 0, 0, 0]], dtype=np.float32))
    m = ranking_metrics(top, truth, [2, 20])
    assert m[("recall", 20)].tolist() == [1.0, 1.0]
    assert m[("precision", 20)].tolist() == [2 / 20, 1 / 20]
    assert m[("ndcg", 20)][1] == pytest.approx(1 / np.log2(3))
    assert (m[("ndcg", 20)] <= 1).all() and (m[("map", 20)] <= 1).all()


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
    aucs = user_auc(flat, truth)
    assert set(aucs) <= {0.5}
    assert user_auc(scores, truth).mean() == 1.0
