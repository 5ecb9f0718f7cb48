"""The dashboard's parts for modalities: importing features on the Data page, choosing the
modalities of a model on the Train page, a video as a Visual search query."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from recsys.store import Store

from ..app_helpers import app_test, html_of, problems


def demo_ids(db: Path) -> list[str]:
    store = Store(db)
    try:
        return store.item_ids("demo")
    finally:
        store.close()


def test_data_page_imports_features_with_their_id_mapping(app_db: Path):
    ids = demo_ids(app_db)
    buf = io.BytesIO()
    np.save(buf, np.random.default_rng(0).normal(size=(len(ids) + 1, 6)).astype(np.float32))
    mapping = ("\n".join(ids + ["ghost"]) + "\n").encode()
    at = app_test(app_db, "app_pages/data.py")
    at.text_input(key="feat_path")            # the section is on the page
    uploads = {u.label: u for u in at.file_uploader}
    uploads["Features (.npy, .parquet, .csv)"].set_value(("style.npy", buf.getvalue(),
                                                           "application/octet-stream"))
    uploads["Id mapping of a .npy (optional)"].set_value(("ids.txt", mapping, "text/plain"))
    at.text_input(key="feat_modality").input("style")
    next(b for b in at.button if b.label == "Import features").click().run()
    assert not problems(at) and not at.error
    assert any(f"Imported {len(ids)} feature vectors" in s.value for s in at.success)
    assert any("item not in the dataset" in w.value for w in at.warning)      # the ghost row
    store = Store(app_db)
    try:
        sets = store.embedding_sets("demo")
    finally:
        store.close()
    assert "style" in set(sets["modality"])
    assert not any((app_db.parent / "uploads").rglob("*.npy"))              # cleaned up


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


def test_visual_search_takes_a_short_video(app_db: Path):
    from ..data.test_video import make_video

    clip = make_video(seconds=2, size=(96, 96))
    at = app_test(app_db, "app_pages/visual_search.py")
    at.file_uploader[0].set_value(("clip.mp4", clip, "video/mp4")).run()
    assert not problems(at) and not at.error
    page = html_of(at)
    assert page.count('class="rs-card"') == at.slider(key="vs_k").value
