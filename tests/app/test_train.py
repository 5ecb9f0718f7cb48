"""The Train page (AppTest): training a model, offering training for an interaction-only
dataset, the EASE memory settings and the dataset's modalities."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys.store import Store

from ..app_helpers import app_test, html_of, problems


def test_train_page_offers_the_ease_memory_settings(app_db: Path):
    """EASE's new hyperparameters (mode, support, memory share) reach the Train page by
    themselves, from the model's description."""
    at = app_test(app_db, "app_pages/train.py")
    at.selectbox(key="tr_model").set_value("ease").run()
    assert not problems(at)
    mode = at.selectbox(key="tr_ease_mode")
    assert mode.value == "auto" and set(mode.options) == {"auto", "dense", "sparse"}
    assert at.number_input(key="tr_ease_support").value == 128
    assert at.number_input(key="tr_ease_memory_fraction").value == pytest.approx(0.25)
    assert at.number_input(key="tr_ease_dense_max_items").value == 30_000


@pytest.fixture
def log_only_db(app_db: Path, tmp_path: Path) -> Path:
    """The ready demo plus an interaction-only dataset 'log' (like the Amazon sets), active."""
    from recsys.data.interactions_import import import_interactions

    csv = tmp_path / "log.csv"
    rows = ["user_id,item_id,event,timestamp"]
    for u in range(30):
        for i in range(8):
            rows.append(f"u{u},i{(u * 3 + i * 7) % 40},view,2025-01-{1 + i:02d}")
    csv.write_text("\n".join(rows))
    store = Store(app_db)
    import_interactions(store, csv, "csv", dataset="log")
    store.close()
    return app_db


def test_interaction_only_dataset_offers_training(log_only_db: Path):
    at = app_test(log_only_db, "app_pages/user_picks.py")
    assert at.session_state["dataset"] == "log"
    assert any("No trained model" in w.value for w in at.warning)
    next(b for b in at.button if b.label.startswith("Train ")).click().run()
    assert not problems(at) and not at.error
    assert 'class="rs-weights"' in html_of(at)      # picks with explanations
    at = app_test(log_only_db, "app_pages/visual_search.py")
    assert not problems(at)
    assert any("interactions only" in i.value for i in at.info)


def test_train_page_trains_a_model(app_db: Path):
    at = app_test(app_db, "app_pages/train.py")
    at.selectbox(key="tr_model").set_value("bpr").run()
    at.number_input(key="tr_bpr_epochs").set_value(3).run()
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not problems(at) and not at.error
    assert any("saved" in s.value for s in at.success)
    store = Store(app_db)
    runs = store.runs("demo", kind="model")
    store.close()
    assert "bpr" in set(runs["model"]) and (runs["status"] == "finished").all()


def test_train_page_offers_the_datasets_modalities(app_db: Path):
    at = app_test(app_db, "app_pages/train.py")
    at.selectbox(key="tr_model").set_value("content-knn").run()
    picker = at.multiselect(key="tr_content-knn_modalities")
    assert set(picker.options) == {"image", "text"} and picker.value == []
    picker.set_value(["text"]).run()
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not problems(at) and not at.error
    store = Store(app_db)
    try:
        runs = store.runs("demo", kind="model")
    finally:
        store.close()
    import json
    config = json.loads(runs[runs.model == "content-knn"]["config"].iloc[0])
    assert config["params"]["modalities"] == ["text"]
