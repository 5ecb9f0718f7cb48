"""The personal blend of query and taste: its two ends, bad taste weights, and its evaluation."""

from __future__ import annotations

import numpy as np
import pytest


def test_taste_zero_is_the_query_order_and_one_the_taste_order():
    from recsys.search.personal import blend

    query = np.array([0.9, 0.8, 0.7, 0.6])
    liking = np.array([1.0, 3.0, 2.0, 4.0])
    assert list(blend(query, liking, 0.0).order) == [0, 1, 2, 3]
    assert list(blend(query, liking, 1.0).order) == [3, 1, 2, 0]
    half = blend(query, liking, 0.5)
    # rescaled: query (1, 2/3, 1/3, 0), taste (0, 2/3, 1/3, 1): item 1 scores 2/3
    assert list(half.order) == [1, 0, 3, 2]
    np.testing.assert_allclose(half.score, [2 / 3, 0.5, 0.5, 1 / 3])
    np.testing.assert_allclose(half.query_part + half.taste_part, half.score)
    np.testing.assert_allclose(half.query_share, [0.5, 1.0, 0.0, 0.5])
    assert (blend(query, liking, 0.0).query_share == 1.0).all()


def test_bad_taste_weights_are_clear_errors():
    from recsys.search.personal import BlendError, blend

    with pytest.raises(BlendError, match="between 0"):
        blend(np.ones(3), np.ones(3), 1.5)


def test_evaluation_finds_a_target_only_taste_can_lift():
    from recsys.search.personal import BlendCase, evaluate_blend

    query = np.array([[0.9, 0.8, 0.7, 0.6, 0.5, -np.inf]])       # item 5: not a match
    liking = {0: np.array([0.0, 0.0, 0.0, 0.0, 9.0, 5.0])}       # loves 4, likes 5
    case = BlendCase(0, 0, np.array([4]), np.array([0]))       # item 0 already owned
    out = evaluate_blend(query, liking, [case], [0.0, 1.0], k=2, pool=5)
    assert out["ndcg@2 taste=0.00"] == 0.0                     # 4 is 4th of the matches
    assert out["ndcg@2 taste=1.00"] == 1.0
    assert out["ndcg@2 taste_only"] == 1.0 and out["pool_recall"] == 1.0
