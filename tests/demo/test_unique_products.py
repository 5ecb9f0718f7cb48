"""A demo catalog without twins (issue 24): no two products share a name or a drawing, and the
name says what the drawing shows (type, colour, gender)."""

from __future__ import annotations

from recsys.demo.art import ARTICLE_TYPES, drawing_key, generate_catalog


def test_no_two_demo_products_share_a_name_or_a_drawing():
    specs = generate_catalog(320, seed=0)
    assert len(specs) == 320
    assert len({s["title"] for s in specs}) == 320
    assert len({drawing_key(s) for s in specs}) == 320
    for s in specs:
        title = s["title"]
        assert ARTICLE_TYPES[s["article_type"]].label in title
        assert s["base_colour"] in title and s["gender"] in title
    assert len({s["article_type"] for s in specs}) == len(ARTICLE_TYPES)


def test_other_seeds_and_sizes_are_unique_too():
    for seed, n in ((1, 64), (7, 500)):
        specs = generate_catalog(n, seed=seed)
        assert len({s["title"] for s in specs}) == n == len({drawing_key(s) for s in specs})
