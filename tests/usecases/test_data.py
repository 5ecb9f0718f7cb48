"""The data use cases: the Myntra sample found and loaded (a fake one, and the shared one)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PIL import Image

from recsys import usecases
from recsys.core.errors import RecsysError
from recsys.store import Store

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
