"""The Catalog page's narrow reads: one page of the filtered items, the match count and the
facet values, computed by the database; the same products as filtering the whole catalog."""

from __future__ import annotations

import pytest

from recsys.search.facets import (
    KEYWORD_COLUMNS,
    available_facets,
    facet_values,
    filter_items,
)
from recsys.store import Store


def test_browse_items_pages_what_filtering_the_whole_catalog_gives(demo_store: Store):
    every = demo_store.items("demo")
    colour = facet_values(every, "base_colour")[0]
    gender = facet_values(every, "gender")[:2]
    cases = [({}, ""), ({"base_colour": [colour]}, ""), ({"gender": gender}, ""),
             ({}, every["title"].iloc[5].split()[0].upper()),
             ({"gender": gender}, every["article_type"].iloc[3].lower())]
    for filters, words in cases:
        expected = filter_items(every, filters, words).sort_values("item_id")
        seen = []
        for offset in range(0, len(every) + 10, 10):
            rows, matched = demo_store.browse_items("demo", filters, words, offset, 10,
                                                    KEYWORD_COLUMNS)
            assert matched == len(expected)
            assert len(rows) == min(10, max(0, matched - offset))
            assert list(rows.columns) == list(every.columns)
            seen += list(rows["item_id"])
        assert seen == list(expected["item_id"]), (filters, words)
        assert demo_store.matching_item_ids("demo", filters, words, KEYWORD_COLUMNS) == seen
    assert demo_store.browse_items("demo", {}, "no-such-word-anywhere")[1] == 0
    with pytest.raises(ValueError):
        demo_store.browse_items("demo", {"nope; DROP TABLE items": ["x"]})


def test_item_facet_values_are_the_catalogs_facets(demo_store: Store):
    every = demo_store.items("demo")
    counted = demo_store.item_facet_values("demo", ["gender", "base_colour", "no_such"])
    assert set(counted) == {"gender", "base_colour"}
    for column, counts in counted.items():
        assert list(counts.index) == facet_values(every, column)
        assert {k: int(v) for k, v in counts.items()} == \
            every[column].value_counts().to_dict()
    assert set(available_facets(every)) >= {"gender", "base_colour"}
    assert demo_store.item_count("demo") == len(every)
    prices = every["price"].dropna()
    assert demo_store.item_price_range("demo") == (prices.min(), prices.max())
