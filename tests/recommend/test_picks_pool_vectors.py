"""A shopper switch on User picks re-ranks a pool of a few dozen candidates: their diversity
vectors are built from those rows only, not from the whole catalog's vectors (on Myntra the
whole matrix cost a quarter of a second per switch)."""

from __future__ import annotations

import numpy as np

from recsys.evaluation.ranking import content_matrix
from recsys.recommend.picks import diversity_vectors

from ..test_models_helpers import tiny_data


class _Rows(np.ndarray):
    """An item-vector matrix that records which rows are read through indexing."""

    read: list = []

    def __getitem__(self, key):
        _Rows.read.append(key)
        return np.asarray(self)[key]


def test_diversity_vectors_read_only_the_pool_and_equal_the_catalog_matrix_rows():
    data = tiny_data()
    pool = np.array([5, 1, 7])
    want = content_matrix(data)[pool]
    for name in ("image", "text"):
        data.vectors[name] = np.asarray(data.vectors[name]).view(_Rows)
    _Rows.read = []
    got = diversity_vectors(data, pool)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    assert len(_Rows.read) == 2                     # image and text, each indexed once
    assert all(np.array_equal(np.asarray(k), pool) for k in _Rows.read)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, rtol=1e-5)
