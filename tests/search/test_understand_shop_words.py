"""Query understanding on a Myntra-like catalog (issue 24): shoppers' words for types that
the titles do not use ("sneakers"), title words that nearly only one type uses ("analogue"),
and a type named by its own name beating one a word merely hints at ("formal shirt")."""

from __future__ import annotations

import pandas as pd

from recsys.search.understand import Vocabulary


def _catalog() -> pd.DataFrame:
    rows = []
    for n in range(30):                      # 12 of 30 watch titles say "Analogue"
        rows.append(("Watches", "Men", "Black",
                     f"Titan{n} Men {'Analogue ' if n < 12 else ''}Black Watch"))
    for n in range(20):                      # Myntra titles its sneakers "Casual Shoes"
        rows.append(("Casual Shoes", "Women", "White", f"Puma{n} Women White Casual Shoes"))
        rows.append(("Sports Shoes", "Men", "Black", f"Nike{n} Men Black Sports Shoes"))
        rows.append(("Formal Shoes", "Men", "Brown", f"Clarks{n} Men Brown Formal Shoes"))
        rows.append(("Shirts", "Men", "Navy Blue", f"Arrow{n} Men Navy Blue Shirt"))
    frame = pd.DataFrame(rows, columns=["article_type", "gender", "base_colour", "title"])
    return frame.assign(item_id=[str(i) for i in range(len(frame))])


def test_sneakers_mean_casual_or_sports_shoes_even_when_no_title_says_so():
    q = Vocabulary(_catalog()).understand("white sneakers women")
    assert q.full["type"] == {"Casual Shoes", "Sports Shoes"}
    assert q.full["gender"] == {"Women"} and q.full["colour"] == {"White"}


def test_a_telling_title_word_names_its_type():
    assert Vocabulary(_catalog()).understand("men's analogue watch").full["type"] == {"Watches"}
    assert Vocabulary(_catalog()).understand("analogue for him").full["type"] == {"Watches"}


def test_a_type_named_by_its_name_beats_a_hint():
    q = Vocabulary(_catalog()).understand("navy blue formal shirt for office")
    assert q.full["type"] == {"Shirts"} and not q.partial["type"]
    assert Vocabulary(_catalog()).understand("formal for office").full["type"] == \
        {"Formal Shoes"}


def test_synonyms_only_name_types_the_catalog_has():
    vocab = Vocabulary(_catalog())
    assert "Sports Sandals" not in vocab.type_words
    assert vocab.understand("men black running shoes").full["type"] == {"Sports Shoes"}


def test_a_type_sold_for_one_gender_implies_it_softly():
    frame = pd.concat([_catalog(), pd.DataFrame({
        "article_type": ["Dresses"] * 5 + ["Shirts"] * 3, "item_id": [f"d{i}" for i in range(8)],
        "gender": ["Women"] * 5 + ["Women"] * 3, "base_colour": "Red",
        "title": ["W Women Red Dress"] * 5 + ["W Women Red Shirt"] * 3})])
    vocab = Vocabulary(frame)
    q = vocab.understand("red summer dress")
    assert q.partial["gender"] == {"Women"} and not q.full["gender"]
    assert not vocab.understand("navy blue shirt").partial["gender"]    # shirts: both genders
    assert vocab.understand("men red dress").full["gender"] == {"Men"}  # a said gender wins
    assert not vocab.understand("men red dress").partial["gender"]
