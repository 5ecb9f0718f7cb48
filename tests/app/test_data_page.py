"""The Data page (issue 11): one click to the Myntra sample, fields that follow the radio, and
an app that asks nothing from the internet."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PIL import Image

from recsys import usecases
from recsys.core.errors import RecsysError
from recsys.store import Store

from ..app_helpers import ROOT, app_test, problems

TYPES = [("Tshirts", "Men", "Apparel"), ("Tops", "Women", "Apparel"),
         ("Casual Shoes", "Men", "Footwear"), ("Handbags", "Women", "Accessories")]
COLOURS = [("Red", (200, 30, 30)), ("Blue", (30, 40, 190)), ("Black", (20, 20, 20)),
           ("White", (235, 235, 235))]


def fake_myntra(folder: Path, n: int = 40) -> Path:
    """A folder in the Kaggle layout: styles.csv for n products, photos for all but two."""
    (folder / "images").mkdir(parents=True)
    with open(folder / "styles.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "gender", "masterCategory", "subCategory", "articleType",
                    "baseColour", "season", "year", "usage", "productDisplayName"])
        for i in range(n):
            article, gender, master = TYPES[i % len(TYPES)]
            colour, rgb = COLOURS[(i // 4) % len(COLOURS)]
            w.writerow([10000 + i, gender, master, "Sub", article, colour, "Summer", 2012,
                        "Casual", f"Brand {i % 3} {gender} {colour} {article}"])
            if i < n - 2:
                img = Image.new("RGB", (60, 80), (250, 250, 250))
                img.paste(rgb, (10 + i % 7, 15, 50, 70))
                img.save(folder / "images" / f"{10000 + i}.jpg")
    return folder


def test_myntra_sample_is_found_and_loaded(tmp_path: Path):
    root = tmp_path / "datasets"
    fake_myntra(root / "myntra_fashion")
    assert usecases.find_myntra_sample(root) == root / "myntra_fashion"
    assert usecases.find_myntra_sample(root / "myntra_fashion") == root / "myntra_fashion"
    assert usecases.find_myntra_sample(tmp_path / "nothing") is None
    store = Store(tmp_path / "db.duckdb")
    try:
        events = []
        info = usecases.load_myntra_sample(store, root, users=30, progress=events.append)
        assert info["items"] == 38 and info["users"] == 30 and info["interactions"] > 0
        assert store.active_dataset() == "myntra"
        assert events[-1].fraction == pytest.approx(1.0)
        fractions = [e.fraction for e in events]
        assert fractions == sorted(fractions)
        with pytest.raises(RecsysError, match="No Myntra sample"):
            usecases.load_myntra_sample(store, tmp_path / "nothing")
    finally:
        store.close()


def test_shared_myntra_sample_is_found(myntra_dir: Path):
    assert usecases.find_myntra_sample() == myntra_dir


def test_data_page_loads_the_sample_in_one_click(app_db: Path, tmp_path: Path, monkeypatch):
    fake_myntra(tmp_path / "shared" / "myntra_fashion")
    monkeypatch.setenv("RECSYS_SHARED_DATASETS", str(tmp_path / "shared"))
    at = app_test(app_db, "app_pages/data.py")
    button = at.button(key="myntra_one_click")
    assert button.label == "Load the Myntra sample"
    button.click().run()
    assert not problems(at) and not at.error
    assert any("Loaded 'myntra'" in s.value for s in at.success)
    store = Store(app_db)
    try:
        assert store.counts("myntra")["items"] == 38 and store.counts("myntra")["users"] == 2000
    finally:
        store.close()
    at = app_test(app_db, "app_pages/data.py")                 # loaded: no offer any more
    assert not any(b.key == "myntra_one_click" for b in at.button)


def test_data_page_offers_no_sample_that_is_not_there(app_db: Path, tmp_path: Path,
                                                      monkeypatch):
    monkeypatch.setenv("RECSYS_SHARED_DATASETS", str(tmp_path / "empty"))
    monkeypatch.setenv("RECSYS_DATA_ROOTS", str(tmp_path))     # typed paths: only under it
    at = app_test(app_db, "app_pages/data.py")
    assert not any(b.key == "myntra_one_click" for b in at.button)
    folder = at.text_input(key="myntra_folder")
    assert folder.value == ""
    folder.input(str(tmp_path / "nowhere")).run()
    at.button(key="myntra_load").click().run()
    assert not problems(at) and at.error and "No Myntra sample" in at.error[0].value


def test_data_page_shows_only_the_fields_of_the_chosen_source(app_db: Path):
    at = app_test(app_db, "app_pages/data.py")
    labels = {w.label for w in at.text_input}
    uploads = {u.label for u in at.get("file_uploader")}
    assert {"Catalog table (CSV or Parquet)", "Photos (zip)", "Interaction file"} <= uploads
    assert not {"Table path", "Images folder", "Path"} & labels
    at.radio(key="cat_source").set_value("Folder path on this machine").run()
    at.radio(key="inter_source").set_value("Path on this machine").run()
    labels = {w.label for w in at.text_input}
    uploads = {u.label for u in at.get("file_uploader")}
    assert {"Table path", "Images folder", "Path"} <= labels
    assert not uploads & {"Catalog table (CSV or Parquet)", "Photos (zip)", "Interaction file"}
    assert not problems(at)


def test_page_icon_is_local():
    """A ":material/...:" page icon makes the browser fetch an SVG from fonts.gstatic.com on
    every page (an error offline); an emoji is drawn from a data URI. The browser test checks
    that the app makes no outside request at all."""
    import re

    source = (ROOT / "app.py").read_text()
    icon = re.search(r'^PAGE_ICON = "([^"]*)"', source, re.M)
    assert icon and not icon.group(1).startswith(":") and "page_icon=PAGE_ICON" in source
