"""The Train page's Tune button: a search on validation, then the best settings trained."""

from __future__ import annotations

import json
from pathlib import Path

from recsys.store import Store

from ..app_helpers import app_test, problems


def test_tune_button_searches_and_trains_the_best(app_db: Path):
    at = app_test(app_db, "app_pages/train.py")
    at.selectbox(key="tr_model").set_value("itemknn").run()
    at.number_input(key="tr_budget").set_value(10).run()
    next(b for b in at.button if b.label == "Tune").click().run()
    assert not problems(at) and not at.error
    assert any("saved" in s.value for s in at.success)
    store = Store(app_db)
    runs = store.runs(store.resolve_dataset(None), kind="model")
    store.close()
    tuned = runs[runs["model"] == "itemknn"]
    assert len(tuned) == 1 and tuned["status"].iloc[0] == "finished"
    config = json.loads(tuned["config"].iloc[0])
    assert config["tuning"]["trials"] and config["tuning"]["budget_seconds"] == 10
