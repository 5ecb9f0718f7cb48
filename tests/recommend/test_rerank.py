"""MMR diversity re-ranking: exact order at 0, near-duplicates pushed down, bounds checked."""

import numpy as np
import pytest

from recsys.recommend.rerank import intra_list_similarity, mmr_order, mmr_rerank_rows


def _vectors():
    # items 0-3: four near-identical socks; 4-5: two different products
    v = np.array([[1, 0, 0], [0.99, 0.14, 0], [0.99, 0, 0.14], [0.98, 0.1, 0.1],
                  [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_zero_diversity_keeps_the_model_order():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    assert mmr_order(scores, _vectors(), 4, 0.0).tolist() == [0, 1, 2, 3]


def test_diversity_pushes_near_duplicates_down():
    scores = np.array([0.9, 0.85, 0.84, 0.83, 0.6, 0.5])
    order = mmr_order(scores, _vectors(), 3, 0.5).tolist()
    assert order[0] == 0                      # the most relevant item stays first
    assert set(order[1:]) == {4, 5}           # the two different products replace the socks
    assert intra_list_similarity(_vectors(), np.array(order)) < \
        intra_list_similarity(_vectors(), np.array([0, 1, 2]))


def test_excluded_items_and_short_lists():
    scores = np.array([0.9, -np.inf, 0.7, -np.inf, -np.inf, -np.inf])
    assert mmr_order(scores, _vectors(), 5, 0.3).tolist() == [0, 2]
    assert mmr_order(np.full(3, -np.inf), None, 2).tolist() == []


def test_rows_version_matches_single_rows():
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(50, 8)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    scores = rng.random((3, 50))
    scores[1, :10] = -np.inf
    rows = mmr_rerank_rows(scores, vecs, 5, 0.4)
    for r in range(3):
        assert rows[r].tolist() == mmr_order(scores[r], vecs, 5, 0.4).tolist()


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_diversity_out_of_range_is_refused(bad):
    with pytest.raises(ValueError):
        mmr_order(np.ones(3), _vectors()[:3], 2, bad)
