"""The Catalog page (AppTest): filters and CLIP text search, "Similar items" opening Visual
search, and search as a shopper with the query's and the taste's shares."""

from __future__ import annotations

import re
from pathlib import Path

from ..app_helpers import app_test, html_of, problems, watch_whole_catalog_reads


def test_catalog_filters_and_clip_text_search(app_db: Path):
    at = app_test(app_db, "app_pages/catalog.py")
    assert "**64** of 64 products" in html_of(at)
    colour = at.multiselect(key="cat_f_base_colour")
    first = colour.options[0]
    colour.set_value([first]).run()
    assert "of 64 products" in html_of(at) and "**64** of 64" not in html_of(at)
    colour.set_value([]).run()
    at.text_input(key="cat_query").input("red handbag").run()
    assert not problems(at)
    page = html_of(at)
    assert "The best **" in page and "most relevant first" in page


def test_catalog_similar_items_opens_visual_search(app_db: Path):
    at = app_test(app_db, "app_pages/catalog.py")
    pick = at.selectbox(key="cat_pick")
    item = pick.options[2]
    pick.set_value(item).run()
    next(b for b in at.button if b.label == "Similar items").click().run()
    assert not problems(at)
    assert at.title[0].value == "Visual search"
    assert at.session_state["vs_item"] in item             # options show "title (id)"
    assert html_of(at).count('class="rs-card"') == at.slider(key="vs_k").value


def test_search_as_a_shopper_on_the_catalog_shows_query_and_taste_shares(app_db: Path):
    at = app_test(app_db, "app_pages/catalog.py")
    at.text_input(key="cat_query").input("red").run()
    user = at.selectbox(key="cat_as").options[1]
    at.selectbox(key="cat_as").select(user).run()
    at.slider(key="cat_taste").set_value(0.8).run()
    assert not problems(at), problems(at)
    page = html_of(at)
    assert "for shopper" in page and "20% query, 80% taste" in page
    shares = re.findall(r"query (\d+)%</span>.*?taste (\d+)%", page)
    assert shares and all(int(q) + int(t) in (99, 100, 101) for q, t in shares)


def test_catalog_browses_by_pages_without_reading_the_whole_catalog(app_db: Path, monkeypatch):
    """Browsing, filtering and paging read only the rows shown (the database filters, counts
    and pages): never `Store.items` of the whole dataset."""
    whole = watch_whole_catalog_reads(monkeypatch)
    at = app_test(app_db, "app_pages/catalog.py")
    assert "**64** of 64 products" in html_of(at)
    assert html_of(at).count('class="rs-card"') == 24
    at.number_input(key="cat_page").set_value(3).run()
    assert not problems(at)
    assert html_of(at).count('class="rs-card"') == 64 - 48
    gender = at.multiselect(key="cat_f_gender")
    gender.set_value([gender.options[0]]).run()          # back to page 1 of fewer matches
    assert not problems(at)
    page = html_of(at)
    matched = int(re.search(r"\*\*(\d+)\*\* of 64 products", page).group(1))
    assert 0 < matched < 64 and page.count('class="rs-card"') == min(24, matched)
    assert whole == []
