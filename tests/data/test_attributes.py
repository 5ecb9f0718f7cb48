"""Catalog attributes for explanations: full brand names, price bands at quartiles, and only the
attributes that can tell items apart."""

from __future__ import annotations

import pandas as pd

from recsys.data.attributes import attribute_table, infer_brands, price_bands


def test_brands_are_full_names_not_first_words():
    titles = ["Reid & Taylor Men Solid Grey Socks", "United Colors of Benetton Men Blue Shirt",
              "United Colors Of Benetton Women Red Top", "United Colors of Benetton Teal Top",
              "M Men Black Shirt", "Manchester United Men Printed Black Cap",
              "Genesis Maroon Formal Shirt", "", None]
    assert infer_brands(titles) == [
        "Reid & Taylor", "United Colors of Benetton", "United Colors of Benetton",
        "United Colors of Benetton", "M", "Manchester United", "Genesis", "", ""]
    assert infer_brands(["Loomcraft Men Tee"], ["Tidewell"]) == ["Tidewell"]


def test_price_bands_cut_at_quartiles():
    bands = price_bands([100, 200, 300, 400, 500, 600, 700, 800, None])
    assert bands[-1] is None and len(set(bands[:-1])) == 4
    assert bands[0] == bands[1] and bands[0].startswith("₹100-")
    assert price_bands([None, None, 5.0]) == [None, None, None]


def test_attribute_table_leaves_out_what_cannot_tell_items_apart():
    items = pd.DataFrame({"item_id": ["a", "b", "c"],
                          "title": ["X Men Tee", "Y Men Tee", "X Men Cap"],
                          "article_type": ["Tee", "Tee", "Cap"], "usage": ["Casual"] * 3,
                          "base_colour": ["Red", None, "Blue"], "price": [None] * 3})
    table = attribute_table(items)
    assert list(table.columns) == ["item_id", "article_type", "base_colour", "brand"]
    assert table["brand"].tolist() == ["X", "Y", "X"]
