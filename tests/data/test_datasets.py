"""Catalog and interaction importers, including bad files, and that failures change nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from recsys.data.datasets import DataImportError, import_catalog, import_interactions
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


# -- interactions ----------------------------------------------------------------------------
def test_csv_interactions_with_bad_rows(store: Store, tmp_path: Path):
    csv = make_catalog(tmp_path)
    import_catalog(store, csv, tmp_path / "images", dataset="shop",
                   columns={"item_id": "sku", "title": "name", "image_path": "image"})
    log = tmp_path / "events.csv"
    log.write_text("user,item,event,timestamp\n"
                   "u1,a,view,2024-01-01 10:00\n"
                   "u1,a,purchase,2024-01-01 10:05\n"
                   "u2,b,cart,2024-01-02\n"
                   "u2,zzz,view,2024-01-02\n"
                   "u3,c,view,not a date\n"
                   ",c,view,2024-01-02\n")
    rep = import_interactions(store, log, fmt="csv", dataset="shop")
    assert rep.imported == 3
    assert rep.problems == {"item not in the catalog": 1, "unreadable timestamp": 1,
                            "missing user or item": 1}
    x = store.interactions("shop")
    assert x["event"].tolist() == ["view", "purchase", "cart"]
    assert x["weight"].tolist() == [1.0, 5.0, 3.0]
    assert x["ts"].notna().all()
    assert store.users("shop")["user_id"].tolist() == ["u1", "u2"]


def test_csv_interactions_missing_columns(store: Store, tmp_path: Path):
    log = tmp_path / "events.csv"
    log.write_text("who,what\nu1,a\n")
    with pytest.raises(DataImportError, match="user_id, item_id"):
        import_interactions(store, log, fmt="csv", dataset="x")


def test_mmrec_inter_keeps_split(store: Store, tmp_path: Path):
    inter = tmp_path / "tiny.inter"
    inter.write_text("userID\titemID\tx_label\n0\t1\t0\n0\t2\t1\n1\t1\t2\n1\t3\t7\n")
    rep = import_interactions(store, inter, fmt="mmrec")
    assert rep.dataset == "tiny" and rep.imported == 3
    assert rep.problems == {"unknown split label": 1}
    x = store.interactions("tiny")
    assert sorted(x["split"]) == ["test", "train", "valid"]
    assert store.counts("tiny")["items"] == 2


def test_json_split_folder(store: Store, tmp_path: Path):
    for name, data in {"train": {"0": [1, 2], "1": [2]}, "val": {"0": [3]},
                       "test": {"1": [1]}}.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(data))
    (tmp_path / "item2id.json").write_text(json.dumps({"B00ASIN1": 1}))
    rep = import_interactions(store, tmp_path, fmt="json", dataset="mini")
    assert rep.imported == 5
    assert rep.details["split train"] == 3
    assert "B00ASIN1" in store.items("mini")["title"].tolist()


def test_bad_json_is_refused(store: Store, tmp_path: Path):
    (tmp_path / "train.json").write_text("{not json")
    with pytest.raises(DataImportError, match="not valid JSON"):
        import_interactions(store, tmp_path, fmt="json", dataset="x")
    assert store.dataset_names() == []


# -- real data -------------------------------------------------------------------------------
@pytest.mark.slow
def test_myntra_catalog_import(store: Store, myntra_dir: Path):
    rep = import_catalog(store, myntra_dir / "styles.csv", myntra_dir / "images", fmt="myntra")
    assert rep.imported == 9583 and rep.dataset == "myntra"
    assert not rep.problems
    items = store.items("myntra")
    assert items["image_path"].notna().all() and items["article_type"].notna().all()


@pytest.mark.slow
def test_amazon_baby_import(store: Store, amazon_dir: Path):
    rep = import_interactions(store, amazon_dir / "baby", fmt="json", dataset="baby")
    counts = store.counts("baby")
    assert (counts["users"], counts["items"], counts["interactions"]) == (19445, 7050, 160792)
    assert rep.details["split train"] == 119674
    assert rep.details["split valid"] == rep.details["split test"] == 20559


@pytest.mark.slow
def test_amazon_sports_mmrec_import(store: Store, amazon_dir: Path):
    import_interactions(store, amazon_dir / "sports" / "sports.inter", fmt="mmrec")
    counts = store.counts("sports")
    assert (counts["users"], counts["items"], counts["interactions"]) == (35598, 18357, 296337)
