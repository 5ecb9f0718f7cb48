"""Live picks: the seen items left out and near-duplicates spread."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.recommend.picks import rank_picks

from ..test_models_helpers import tiny_data


def test_rank_picks_leaves_out_the_seen_and_spreads_near_duplicates():
    data = tiny_data()
    scores = np.linspace(1.0, 0.0, data.n_items)
    seen = np.array([0, 1, 2])
    items, _, picked, plain_sim = rank_picks(scores, data, 5, 0.0, exclude=seen)
    assert items.tolist() == [3, 4, 5, 6, 7]          # the model's order, seen items left out
    assert picked == pytest.approx(plain_sim)
    varied, _, picked, plain_sim = rank_picks(scores, data, 5, 0.9, exclude=seen)
    assert varied[0] == 3 and not set(varied) & set(seen)
    assert picked < plain_sim                        # the two taste groups get mixed in
    with pytest.raises(ValueError):
        rank_picks(scores, data, 5, 1.5)
