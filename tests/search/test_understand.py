"""Query understanding (issue 24): gender, colour and type words recognised from the catalog's
own facet values and titles, as soft boosts."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.search.hits import Hits
from recsys.search.understand import Vocabulary, boosted, matching_ids, words

ITEMS = pd.DataFrame({
    "item_id": ["a", "b", "c", "d", "e", "f"],
    "gender": ["Women", "Women", "Men", "Unisex", "Women", "Men"],
    "base_colour": ["Black", "Pink", "Black", "Navy Blue", "Blue", "Blue"],
    "article_type": ["Heels", "Casual Shoes", "Casual Shoes", "Casual Shoes", "Tshirts",
                     "Jeans"],
    "title": ["X Women Black Heels", "Y Women Pink Sneakers", "Z Men Black Sneakers",
              "W Unisex Navy Blue Sneakers", "V Women Blue T-shirt", "U Men Blue Jeans"],
})


def test_words_are_singular_and_hyphen_free():
    assert words("T-Shirts for Women's dresses") == ["tshirt", "for", "women", "dress"]


def test_catalog_values_and_title_words_are_recognised():
    vocab = Vocabulary(ITEMS)
    q = vocab.understand("black running shoes for women")
    assert q.full["gender"] == {"Women"} and q.full["colour"] == {"Black"}
    assert q.partial["type"] == {"Casual Shoes"}          # "shoes": the head word only
    assert vocab.understand("pink sneakers").full["type"] == {"Casual Shoes"}   # a title word
    assert vocab.understand("navy blue tshirt").full["colour"] == {"Navy Blue"}
    assert vocab.understand("ladies t-shirts").describe() == {"gender": ["Women"],
                                                              "type": ["Tshirts"]}
    assert not vocab.understand("something nice")
    assert matching_ids(q, ITEMS) == []                   # no women's black shoes here
    assert matching_ids(vocab.understand("shoes for women"), ITEMS) == ["b", "d"]  # + unisex


def test_boosts_put_the_named_type_and_gender_first_but_keep_the_encoder_order():
    vocab = Vocabulary(ITEMS)
    q = vocab.understand("black running shoes for women")
    # the encoder alone prefers the black heels and the men's black sneakers
    scores = np.array([0.6, 0.5, 0.55, 0.45, 0.3, 0.2], np.float32)
    hits = Hits(np.arange(6), list(ITEMS["item_id"]), scores,
                {"text": scores, "image": scores})
    out = boosted([hits], ITEMS, q, 4)
    assert out.item_ids[0] == "b"                         # the women's sneakers first
    assert out.item_ids.index("d") < out.item_ids.index("a")  # unisex sneakers before heels
    assert set(out.item_ids) == {"a", "b", "c", "d"}
    assert np.all(np.diff(out.scores) <= 0)


def test_catalog_headline_is_not_a_match_count_when_ranked():
    from recsys.usecases.search import CatalogPage, catalog_count_words

    ranked = CatalogPage("demo", ITEMS, 320, ranked=True, seconds=0.012)
    assert "best **6** of 320" in catalog_count_words(ranked)
    assert "match" not in catalog_count_words(ranked)
    assert catalog_count_words(CatalogPage("demo", ITEMS, 320)) == "**6** of 320 products match"
