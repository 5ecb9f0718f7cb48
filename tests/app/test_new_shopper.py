"""The New shopper page (AppTest): picks as soon as a product is ticked, and the measured quality
of first picks."""

from __future__ import annotations

from pathlib import Path

from ..app_helpers import app_test, html_of, problems


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
