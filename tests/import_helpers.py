"""Files the importer tests write: a 4-product catalog with photos, zips, small photos, text
files; and the checks they share (a database snapshot, a report whose rows add up)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pandas as pd
from PIL import Image

from recsys.data.report import ImportReport
from recsys.store import Store


def make_catalog(folder: Path, rows: list[dict] | None = None) -> Path:
    """A 4-product CSV with real PNG photos in folder/images."""
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    colours = {"a": "red", "b": "blue", "c": "green", "d": "black"}
    for name, colour in colours.items():
        Image.new("RGB", (32, 32), colour).save(images / f"{name}.png")
    rows = rows or [
        {"sku": "a", "name": "Red Shirt", "description": "cotton", "image": "a.png", "price": "10"},
        {"sku": "b", "name": "Blue Jeans", "description": "denim", "image": "b.png", "price": "20"},
        {"sku": "c", "name": "Green Cap", "description": "wool", "image": "c.png", "price": ""},
        {"sku": "d", "name": "Black Bag", "description": "leather", "image": "d.png",
         "price": "5.5"},
    ]
    csv = folder / "catalog.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return csv


def snapshot(store: Store) -> dict:
    return {t: store.query(f"SELECT * FROM {t} ORDER BY ALL").to_json(date_format="iso")
            for t in ("datasets", "items", "users", "interactions", "settings")}


def colour_png(colour: str = "red", size=(16, 16)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def adds_up(rep: ImportReport) -> bool:
    """The report's promise: every row read was imported or reported."""
    return rep.rows_read == rep.imported + rep.rows_skipped


def write_file(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def make_zip(entries: dict[str, bytes], method=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def check_counts(rep) -> None:
    assert rep.rows_read == rep.imported + rep.rows_skipped, rep.summary()


def movielens_dir() -> Path | None:
    """MovieLens-100k's folder (ratings.csv, items.csv, users.csv): `$RECSYS_MOVIELENS100K`,
    else `../shared/datasets/movielens_100k`; None when absent (the tests that need it skip)."""
    import os

    root = Path(__file__).resolve().parents[1]
    for folder in (os.environ.get("RECSYS_MOVIELENS100K", ""),
                   str(root.parent / "shared" / "datasets" / "movielens_100k")):
        if folder and (Path(folder) / "ratings.csv").is_file():
            return Path(folder)
    return None


MOVIELENS_MISSING = ("MovieLens-100k is not here: fetch it with `python "
                     "../shared/datasets/get_movielens100k.py DIR` and set RECSYS_MOVIELENS100K=DIR")
