"""Attribute attribution: the attribute that drives the scores comes first; scores without any
attribute signal give no strong driver."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data.attributes import attribute_table
from recsys.explain.attribution import AttributeCodes, explain_attributes


# -- the surrogate ---------------------------------------------------------------------------
def _catalog(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "item_id": [f"i{i}" for i in range(n)],
        "title": [f"{b} Men Thing" for b in rng.choice(["Alpha", "Beta", "Gamma"], n)],
        "article_type": rng.choice(["Socks", "Caps", "Shirts", "Shoes"], n),
        "base_colour": rng.choice(["Grey", "Red", "Blue", "Black"], n),
        "usage": rng.choice(["Casual", "Sports"], n)})


@pytest.mark.parametrize("driver, column", [("colour", "base_colour"),
                                            ("type", "article_type")])
def test_the_attribute_that_drives_the_scores_comes_first(driver, column):
    items = _catalog()
    codes = AttributeCodes(attribute_table(items), items["item_id"])
    rng = np.random.default_rng(1)
    pick = 7
    value = items[column].iloc[pick]
    scores = 2.0 * (items[column] == value).to_numpy() + rng.normal(0, 0.3, len(items))
    out = explain_attributes(scores, codes, pick, "i7")
    assert out.drivers and out.drivers[0].attribute == driver
    assert out.drivers[0].value == value and out.drivers[0].effect > 1.0
    assert 0.3 < out.fit <= 1.0 and out.items == len(items)
    other = explain_attributes(scores, codes, pick, "i7", exclude=np.arange(50))
    assert other.items == len(items) - 50 + (1 if pick < 50 else 0)


def test_scores_without_any_attribute_signal_give_no_strong_driver():
    items = _catalog()
    codes = AttributeCodes(attribute_table(items), items["item_id"])
    scores = np.random.default_rng(2).normal(size=len(items))
    out = explain_attributes(scores, codes, 3, "i3")
    assert out.effects
    assert all(abs(e.effect) < 0.5 for e in out.effects)
