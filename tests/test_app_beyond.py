"""The dashboard's pages beyond ranked lists (AppTest on the small set-up demo): search as a
shopper on Catalog and Visual search, New shopper, Catalog map and A/B test."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .app_helpers import app_test, html_of, problems

NEW_PAGES = ["app_pages/new_shopper.py", "app_pages/catalog_map.py", "app_pages/ab_test.py"]


def test_the_new_pages_are_in_the_navigation():
    from ui import state

    paths = [p.path for p in state.PAGES]
    assert all(p in paths for p in NEW_PAGES)
    assert all(Path(p).exists() or (Path(__file__).parent.parent / p).exists() for p in paths)


@pytest.mark.parametrize("page", NEW_PAGES)
def test_new_pages_render(app_db: Path, page: str):
    at = app_test(app_db, page)
    assert not problems(at), problems(at)
    assert at.title


def test_new_shopper_gets_picks_as_soon_as_a_product_is_ticked(app_db: Path):
    at = app_test(app_db, "app_pages/new_shopper.py")
    assert "Tick at least one product" in "".join(i.value for i in at.info)
    boxes = [c for c in at.checkbox if c.key and c.key.startswith("ns_pick_")]
    assert len(boxes) >= 6
    boxes[0].check().run()
    boxes = [c for c in at.checkbox if c.key and c.key.startswith("ns_pick_")]
    boxes[1].check().run()
    assert not problems(at), problems(at)
    page = html_of(at)
    assert "because you like:" in page and "without retraining" in page
    liked = {boxes[0].key[len("ns_pick_"):], boxes[1].key[len("ns_pick_"):]}
    assert at.session_state["ns_liked"] and set(at.session_state["ns_liked"]) == liked
    values = [m.value for m in at.markdown]
    head = next(n for n, v in enumerate(values) if "picks** by" in v)
    assert values[head + 1].count('class="rs-card"') == at.slider(key="ns_k").value
    at.text_input(key="ns_query").input("red").run()        # search with the likes as taste
    assert not problems(at), problems(at)
    assert "products for you**" in html_of(at)


def test_search_as_a_shopper_on_the_catalog_shows_query_and_taste_shares(app_db: Path):
    at = app_test(app_db, "app_pages/catalog.py")
    at.text_input(key="cat_query").input("red").run()
    user = at.selectbox(key="cat_as").options[1]
    at.selectbox(key="cat_as").select(user).run()
    at.slider(key="cat_taste").set_value(0.8).run()
    assert not problems(at), problems(at)
    page = html_of(at)
    assert f"for shopper" in page and "20% query, 80% taste" in page
    shares = re.findall(r"query (\d+)%</span>.*?taste (\d+)%", page)
    assert shares and all(int(q) + int(t) in (99, 100, 101) for q, t in shares)


def test_search_as_a_shopper_on_visual_search(app_db: Path):
    at = app_test(app_db, "app_pages/visual_search.py")
    at.segmented_control(key="vs_mode").set_value("Pick a catalog item").run()
    user = at.selectbox(key="vs_as").options[2]
    at.selectbox(key="vs_as").select(user).run()
    assert not problems(at), problems(at)
    page = html_of(at)
    assert "products for shopper" in page and "taste" in page


def test_catalog_map_draws_clusters_purity_and_a_shopper(app_db: Path):
    at = app_test(app_db, "app_pages/catalog_map.py")
    assert not problems(at), problems(at)
    labels = {m.label: m.value for m in at.metric}
    assert labels["Products"] == "64" and "Group purity" in labels
    assert "Agreement with categories (NMI)" in labels
    assert len(at.get("plotly_chart")) >= 1
    user = at.selectbox(key="map_user").options[1]
    at.selectbox(key="map_user").select(user).run()
    assert not problems(at), problems(at)
    assert "their top" in "".join(c.value for c in at.caption)
    at.button[0].click().run()                      # compare photo, text and fused
    assert not problems(at), problems(at)
    assert "group products by type best" in html_of(at)


def test_ab_test_page_reports_in_words(app_db: Path):
    at = app_test(app_db, "app_pages/ab_test.py")
    at.selectbox(key="ab_b").select("itemknn").run()
    at.slider(key="ab_visits").set_value(5).run()
    at.button[0].click().run()
    assert not problems(at), problems(at)
    page = html_of(at)
    assert "more clicks** per visit" in page and "shoppers)" in page
    assert len(at.metric) == 3
    verdict = [e.value for e in (*at.success, *at.warning, *at.info)]
    assert any("Offline" in v for v in verdict)


def test_new_shopper_page_measures_first_picks(app_db: Path):
    at = app_test(app_db, "app_pages/new_shopper.py")
    at.multiselect(key="ns_eval_models").set_value(["popularity", "content"]).run()
    at.number_input(key="ns_eval_n").set_value(10).run()
    next(b for b in at.button if b.label == "Measure").click().run()
    assert not problems(at), problems(at)
    assert not at.error, [e.value for e in at.error]
    frame = at.session_state["ns_eval"][1]
    assert set(frame["model"]) == {"popularity", "content"} and set(frame["history"]) == {1, 3, 5}
    assert len(at.get("plotly_chart")) == 1
