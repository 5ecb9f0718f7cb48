"""DOCSTRING TO WRITE."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


# -- the catalog map -----------------------------------------------------------------------------
def test_purity_counts_majority_labels():
    from recsys.explore.projection import name_clusters, purity

    labels = np.array([0, 0, 0, 1, 1, 1])
    truth = ["a", "a", "b", "c", "c", "c"]
    assert purity(labels, truth) == pytest.approx(5 / 6)
    assert purity(np.zeros(6, int), truth) == pytest.approx(3 / 6)
    items = pd.DataFrame({"article_type": truth, "gender": ["Men"] * 3 + ["Women"] * 3,
                          "base_colour": ["Red", "Blue", "Green", "Black", "Black", "Black"]})
    named = name_clusters(labels, items).set_index("cluster")
    assert named.loc[0, "name"] == "a · Men" and named.loc[1, "name"] == "c · Black"
    assert named.loc[0, "size"] == 3 and named.loc[1, "share_base_colour"] == 1.0
