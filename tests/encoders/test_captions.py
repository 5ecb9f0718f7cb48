"""Captions made from the catalog's fields."""

from __future__ import annotations

from recsys.encoders import (
    caption_variants,
    item_caption,
)


def test_caption_uses_every_field_and_skips_empty_ones():
    item = {"title": "Turtle Check Men Navy Blue Shirt", "gender": "Men", "article_type": "Shirts",
            "base_colour": "Navy Blue", "sub_category": "Topwear", "master_category": "Apparel",
            "usage": "Casual", "season": "Fall", "year": 2011.0, "brand": "Turtle",
            "description": "Slim fit cotton shirt"}
    cap = item_caption(item)
    for word in ("Turtle Check", "Navy Blue Shirts for Men", "Topwear", "Apparel", "Casual",
                 "Fall 2011", "Slim fit cotton shirt"):
        assert word in cap
    assert "By Turtle" not in cap   # the brand is already in the title
    assert item_caption({"title": "Mug", "brand": "Acme", "description": None,
                         "gender": float("nan")}) == "Mug. By Acme."
    kinds = dict(caption_variants(item))
    assert kinds["title"] == item["title"] and kinds["category:a photo of {}"] == \
        "a photo of Shirts"
    assert kinds["attributes"] == "navy blue shirts for men"
