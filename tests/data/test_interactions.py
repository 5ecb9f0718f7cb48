"""Interaction data for training and evaluation: repeated events collapse to one positive, the
random (8/1/1 per user) and temporal splits, a stored split used as is, ratings that follow a
re-split, clear errors without interactions or with an unknown protocol."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data.interactions import (
    EvaluationError,
    assign_split,
    implicit_pairs,
    load_data,
)

from ..test_models_helpers import DATASET, N_ITEMS, fill_store, tiny_data


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


def test_a_re_split_copy_splits_its_ratings_alike():
    """Cross-validation folds are copies of the data with other matrices
    (`dataclasses.replace`): their ratings must follow the new split, not the original."""
    import dataclasses

    data = tiny_data()
    swapped = dataclasses.replace(data, train=data.test, test=data.train)
    assert len(swapped.ratings.part(0)[2]) == len(data.ratings.part(2)[2])
    assert len(swapped.ratings.part(2)[2]) == len(data.ratings.part(0)[2])
    assert swapped.modalities == data.modalities and swapped.image is data.image
