"""The Evaluate and Train pages offer the new-arrivals protocol (AppTest)."""

from __future__ import annotations

from pathlib import Path

from recsys.data.interactions import NEW_ITEMS_NOTE

from ..app_helpers import app_test, problems


def test_the_evaluate_page_runs_the_new_items_protocol(app_db: Path):
    at = app_test(app_db, "app_pages/evaluate.py")
    at.selectbox(key="ev_protocol").set_value("new-items").run()
    assert NEW_ITEMS_NOTE in [c.value for c in at.caption]
    at.multiselect(key="ev_models").set_value(["ease", "content"]).run()
    next(b for b in at.button if b.label == "Run evaluation").click().run()
    assert not problems(at) and not at.error
    assert any("Not applicable to new items" in i.value and "EASE" in i.value for i in at.info)
    assert "new-items split" in at.selectbox(key="ev_show_protocol").options
    at.selectbox(key="ev_show_protocol").set_value("new-items").run()
    assert not problems(at) and not at.error
    # the results of the protocol say what it is, and show the baselines by their plain names
    assert NEW_ITEMS_NOTE in [c.value for c in at.caption]
    shown = at.multiselect(key="ev_shown")
    assert {"random", "attr-profile", "content"} <= set(shown.value)
    assert "ease" not in set(shown.options)


def test_the_train_page_offers_the_new_items_split(app_db: Path):
    at = app_test(app_db, "app_pages/train.py")
    assert "new-items" in at.selectbox(key="tr_protocol").options
    at.selectbox(key="tr_protocol").set_value("new-items").run()
    assert not problems(at) and NEW_ITEMS_NOTE in [c.value for c in at.caption]
