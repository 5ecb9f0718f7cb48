"""The catalog importer: column mapping and aliases, CSV and Parquet, bad files and rows reported
(duplicates, missing titles, broken photos, malformed lines, bad prices and years), refusals
and failures that change nothing, re-imports that keep unchanged items, photos only from inside
the images folder, and the real Myntra catalog."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from recsys.data.catalog_import import import_catalog
from recsys.data.report import DataImportError
from recsys.store import Store

from ..import_helpers import (
    adds_up,
    make_catalog,
    snapshot,
    write_file,
)


def test_generic_catalog_import_with_column_mapping(store: Store, tmp_path: Path):
    csv = make_catalog(tmp_path)
    rep = import_catalog(store, csv, tmp_path / "images", dataset="shop",
                         columns={"item_id": "sku", "title": "name", "image_path": "image"})
    assert rep.imported == 4 and not rep.problems
    items = store.items("shop")
    assert items["item_id"].tolist() == ["a", "b", "c", "d"]
    assert items["price"].tolist()[:2] == [10.0, 20.0] and pd.isna(items["price"].iloc[2])
    assert all(Path(p).is_file() for p in items["image_path"])
    assert items["content_hash"].str.len().eq(40).all()
    assert store.active_dataset() == "shop"


def test_aliases_are_recognised_without_options(store: Store, tmp_path: Path):
    csv = make_catalog(tmp_path, [{"id": "a", "title": "Red Shirt", "image_path": "a.png"}])
    assert import_catalog(store, csv, tmp_path / "images", dataset="s").imported == 1


def test_parquet_catalog(store: Store, tmp_path: Path):
    csv = make_catalog(tmp_path)
    parquet = tmp_path / "catalog.parquet"
    pd.read_csv(csv).to_parquet(parquet)
    rep = import_catalog(store, parquet, tmp_path / "images", dataset="pq",
                         columns={"item_id": "sku", "title": "name", "image_path": "image"})
    assert rep.imported == 4


def test_missing_required_column_is_refused_before_writing(store: Store, tmp_path: Path):
    csv = make_catalog(tmp_path, [{"sku": "a", "image": "a.png"}])
    with pytest.raises(DataImportError, match="missing required column"):
        import_catalog(store, csv, tmp_path / "images", dataset="shop")
    assert store.dataset_names() == []


def test_duplicate_ids_missing_titles_and_broken_images_are_reported(store: Store,
                                                                   tmp_path: Path):
    csv = make_catalog(tmp_path, [
        {"id": "a", "title": "Red Shirt", "image": "a.png"},
        {"id": "a", "title": "Red Shirt again", "image": "a.png"},
        {"id": "b", "title": "", "image": "b.png"},
        {"id": "c", "title": "Broken", "image": "broken.jpg"},
        {"id": "d", "title": "Missing photo", "image": "nowhere.jpg"},
        {"id": "e", "title": "Good", "image": "d.png"},
    ])
    (tmp_path / "images" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    rep = import_catalog(store, csv, tmp_path / "images", dataset="shop")
    assert rep.imported == 1
    assert rep.problems == {"missing title": 1, "duplicate item id": 1, "unreadable image": 1,
                            "image file not found": 1}
    assert "id a" in rep.examples["duplicate item id"][0]
    assert "REFUSED" not in rep.summary() and "duplicate item id" in rep.summary()
    assert store.item_ids("shop") == ["e"]


def test_refuse_mode_writes_nothing(store: Store, tmp_path: Path):
    csv = make_catalog(tmp_path, [{"id": "a", "title": "x", "image": "a.png"},
                                  {"id": "a", "title": "y", "image": "b.png"}])
    rep = import_catalog(store, csv, tmp_path / "images", dataset="shop", on_error="refuse")
    assert rep.refused and rep.imported == 0 and "REFUSED" in rep.summary()
    assert store.dataset_names() == []


@pytest.mark.parametrize("content,match", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR binary", "binary file"),
    (b"", "empty"),
    (b"just one column\nvalue\n", "column"),
])
def test_non_csv_files_are_refused_clearly(store: Store, tmp_path: Path, content, match):
    path = tmp_path / "catalog.csv"
    path.write_bytes(content)
    with pytest.raises(DataImportError, match=match):
        import_catalog(store, path, None, dataset="shop")


def test_missing_file_and_folder(store: Store, tmp_path: Path):
    with pytest.raises(DataImportError, match="not found"):
        import_catalog(store, tmp_path / "nope.csv", None)
    csv = make_catalog(tmp_path)
    with pytest.raises(DataImportError, match="Image folder not found"):
        import_catalog(store, csv, tmp_path / "no-images")


def test_malformed_lines_are_reported(store: Store, tmp_path: Path):
    make_catalog(tmp_path)
    csv = tmp_path / "bad.csv"
    csv.write_text("id,title,image\na,Red,a.png\nb,Blue,b.png,extra,fields\n")
    rep = import_catalog(store, csv, tmp_path / "images", dataset="shop")
    assert rep.imported == 1 and rep.problems == {"malformed CSV line": 1}


def test_failed_import_leaves_database_exactly_as_it_was(store: Store, tmp_path: Path,
                                                         monkeypatch):
    csv = make_catalog(tmp_path)
    cols = {"item_id": "sku", "title": "name", "image_path": "image"}
    import_catalog(store, csv, tmp_path / "images", dataset="shop", columns=cols)
    before = snapshot(store)
    original = Store.upsert_dataset

    def failing(self, cur, *args, **kwargs):
        original(self, cur, *args, **kwargs)
        cur.execute("DELETE FROM items")
        raise OSError("disk full")

    monkeypatch.setattr(Store, "upsert_dataset", failing)
    with pytest.raises(OSError):
        import_catalog(store, csv, tmp_path / "images", dataset="other", columns=cols)
    assert snapshot(store) == before


def test_reimport_updates_and_keeps_hash_for_unchanged_items(store: Store, tmp_path: Path):
    csv = make_catalog(tmp_path)
    cols = {"item_id": "sku", "title": "name", "image_path": "image"}
    import_catalog(store, csv, tmp_path / "images", dataset="shop", columns=cols)
    hashes = store.items("shop").set_index("item_id")["content_hash"]
    Image.new("RGB", (32, 32), "white").save(tmp_path / "images" / "a.png")
    rep = import_catalog(store, csv, tmp_path / "images", dataset="shop", columns=cols)
    after = store.items("shop").set_index("item_id")["content_hash"]
    assert rep.details["updated items"] == 4 and rep.details["new items"] == 0
    assert after["a"] != hashes["a"] and after["b"] == hashes["b"]


# -- real data -------------------------------------------------------------------------------
@pytest.mark.slow
def test_myntra_catalog_import(store: Store, myntra_dir: Path):
    rep = import_catalog(store, myntra_dir / "styles.csv", myntra_dir / "images", fmt="myntra")
    assert rep.imported == 9583 and rep.dataset == "myntra"
    assert not rep.problems
    items = store.items("myntra")
    assert items["image_path"].notna().all() and items["article_type"].notna().all()


# -- photos only from inside the images folder ----------------------------------------------------
def test_absolute_and_dotdot_paths_outside_the_folder_are_refused(store, tmp_path, outside_photo):
    images = tmp_path / "cat" / "images"
    csv = make_catalog(tmp_path / "cat", [
        {"id": "ok", "title": "Fine", "image": "a.png"},
        {"id": "abs", "title": "Absolute", "image": str(outside_photo)},
        {"id": "abs-missing", "title": "Absolute", "image": str(outside_photo.parent / "none.png")},
        {"id": "up", "title": "Up", "image": "../../private/secret.png"},
        {"id": "up-missing", "title": "Up", "image": "../../private/none.png"},
        {"id": "inside-abs", "title": "Inside", "image": str(images.resolve() / "b.png")},
    ])
    rep = import_catalog(store, csv, images, dataset="shop")
    assert store.item_ids("shop") == ["inside-abs", "ok"]
    assert rep.problems == {"image path outside the images folder": 4} and adds_up(rep)
    text = rep.summary() + json.dumps(rep.to_dict())
    assert "private" not in text and "secret" not in text and "none.png" not in text
    # whether the outside file exists changes nothing in what is reported
    assert rep.examples["image path outside the images folder"] == \
        ["id abs", "id abs-missing", "id up", "id up-missing"]


def test_symlinks_out_of_the_folder_are_refused(store, tmp_path, outside_photo):
    images = tmp_path / "cat" / "images"
    csv = make_catalog(tmp_path / "cat", [
        {"id": "link", "title": "Named link", "image": "link.png"},
        {"id": "auto", "title": "Photo found by id", "image": ""},
        {"id": "dirlink", "title": "Through a linked folder", "image": "sub/secret.png"},
        {"id": "ok", "title": "Fine", "image": "a.png"},
    ])
    os.symlink(outside_photo, images / "link.png")
    os.symlink(outside_photo, images / "auto.png")
    os.symlink(outside_photo.parent, images / "sub")
    rep = import_catalog(store, csv, images, dataset="shop")
    assert rep.problems == {"image path outside the images folder": 2}
    items = store.items("shop").set_index("item_id")
    assert sorted(items.index) == ["auto", "ok"]       # 'auto' imported, but not with the secret
    assert pd.isna(items.loc["auto", "image_path"])
    assert adds_up(rep)


def test_symlinked_images_folder_and_links_inside_it_work(store, tmp_path):
    real = tmp_path / "cat" / "images"
    csv = make_catalog(tmp_path / "cat", [{"id": "a", "title": "A", "image": "a.png"},
                                          {"id": "b", "title": "B", "image": "alias.png"}])
    os.symlink(real / "b.png", real / "alias.png")
    os.symlink(real, tmp_path / "linked")
    rep = import_catalog(store, csv, tmp_path / "linked", dataset="shop")
    assert rep.imported == 2 and not rep.problems


def test_image_paths_without_a_folder_are_refused_per_row(store, tmp_path, outside_photo):
    csv = make_catalog(tmp_path / "cat", [{"id": "a", "title": "A", "image": str(outside_photo)},
                                          {"id": "b", "title": "B", "image": ""}])
    rep = import_catalog(store, csv, None, dataset="shop")
    assert rep.problems == {"image path given but no images folder": 1}
    assert store.item_ids("shop") == ["b"] and "secret" not in rep.summary() and adds_up(rep)


# -- prices, years, empty catalogs ----------------------------------------------------------------
def test_negative_infinite_and_nan_prices_are_rejected(store, tmp_path):
    make_catalog(tmp_path)
    csv = write_file(tmp_path / "p.csv", "id,title,price,image\na,A,10,a.png\nb,B,-5,b.png\n"
                                    "c,C,inf,c.png\nd,D,nan,d.png\ne,E,1e400,a.png\nf,F,,b.png\n"
                                    "g,G,0,c.png\n")
    rep = import_catalog(store, csv, tmp_path / "images", dataset="shop")
    assert rep.problems == {"price is not a number": 1, "price is negative or infinite": 3}
    assert store.item_ids("shop") == ["a", "f", "g"] and adds_up(rep)


def test_absurd_years_are_left_empty_not_crashing(store, tmp_path):
    make_catalog(tmp_path)
    csv = write_file(tmp_path / "y.csv", "id,title,year,image\na,A,2011,a.png\nb,B,1e20,b.png\n"
                                    "c,C,inf,c.png\nd,D,-3,d.png\n")
    rep = import_catalog(store, csv, tmp_path / "images", dataset="shop")
    assert rep.imported == 4 and rep.details["years not understood (left empty)"] == 3
    assert store.items("shop")["year"].tolist()[0] == 2011


@pytest.mark.parametrize("content", ["id,title,image\n", "id,title,image\n,,\n,x,\n"])
def test_catalog_without_valid_rows_creates_nothing(store, tmp_path, content):
    make_catalog(tmp_path / "old")
    import_catalog(store, make_catalog(tmp_path / "old"), tmp_path / "old" / "images",
                   dataset="old", columns={"item_id": "sku", "title": "name",
                                           "image_path": "image"})
    before = snapshot(store)
    rep = import_catalog(store, write_file(tmp_path / "empty.csv", content), None, dataset="new")
    assert rep.refused and rep.imported == 0 and rep.reason
    assert snapshot(store) == before and store.active_dataset() == "old"


def test_catalog_mixing_rows_with_and_without_photos(store, tmp_path):
    """Used to crash (a missing path became NaN, then a TypeError while hashing)."""
    csv = make_catalog(tmp_path, [{"id": "a", "title": "A", "image": "a.png"},
                                  {"id": "z", "title": "Z", "image": ""}])
    rep = import_catalog(store, csv, tmp_path / "images", dataset="shop")
    items = store.items("shop").set_index("item_id")
    assert rep.imported == 2 and Path(items.loc["a", "image_path"]).is_file()
    assert pd.isna(items.loc["z", "image_path"])
