"""The interaction importer: CSV logs (bad rows and columns reported, an unclosed quote costs one
row, timezones converted, bad weights refused, unknown events kept and reported, ratings kept),
MMRec and JSON split folders (a deeply nested file refused), interactions never wiped or
shrunk unasked, and the real Amazon sets."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from recsys import usecases
from recsys.data.catalog_import import import_catalog
from recsys.data.interactions_import import import_interactions
from recsys.data.report import DataImportError
from recsys.store import Store

from ..import_helpers import (
    adds_up,
    check_counts,
    make_catalog,
    snapshot,
    write_file,
)


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


@pytest.fixture
def shop(store: Store, tmp_path: Path) -> Store:
    """A 4-item catalog 'shop' (items a-d) with 6 interactions."""
    csv = make_catalog(tmp_path / "cat")
    import_catalog(store, csv, tmp_path / "cat" / "images", dataset="shop",
                   columns={"item_id": "sku", "title": "name", "image_path": "image"})
    log = write_file(tmp_path / "events.csv", "user,item,event\nu1,a,view\nu1,b,cart\nu2,c,view\n"
                                         "u2,d,purchase\nu3,a,view\nu3,b,view\n")
    rep = import_interactions(store, log, dataset="shop")
    assert rep.imported == 6
    return store


# -- interactions are never wiped unasked ---------------------------------------------------------
@pytest.mark.parametrize("content", ["user,item,event\n", "user,item,event\nu9,zzz,view\n"
                                     "u9,yyy,view\n"])
def test_header_only_or_all_unknown_items_never_wipes(shop, tmp_path, content):
    before = snapshot(shop)
    for kwargs in ({}, {"replace": True}, {"append": True}):
        rep = import_interactions(shop, write_file(tmp_path / "log.csv", content), dataset="shop",
                                  **kwargs)
        assert rep.refused and rep.imported == 0 and "no" in rep.reason
        assert "REFUSED" in rep.summary() and snapshot(shop) == before


def test_replacing_with_fewer_rows_needs_replace(shop, tmp_path):
    log = write_file(tmp_path / "few.csv", "user,item\nu7,a\nu7,b\n")
    before = snapshot(shop)
    rep = import_interactions(shop, log, dataset="shop")
    assert rep.refused and "remove more than it adds" in rep.reason and "--replace" in rep.reason
    assert snapshot(shop) == before
    rep = import_interactions(shop, log, dataset="shop", append=True)
    assert rep.imported == 2 and shop.interaction_count("shop") == 8
    rep = import_interactions(shop, log, dataset="shop", replace=True)
    assert rep.imported == 2 and shop.interaction_count("shop") == 2
    assert rep.details["interactions replaced"] == 8
    with pytest.raises(DataImportError, match="not both"):
        import_interactions(shop, log, dataset="shop", append=True, replace=True)


def test_replacing_with_as_many_rows_is_allowed(shop, tmp_path):
    log = write_file(tmp_path / "same.csv", "user,item\n" + "".join(f"u{i},a\n" for i in range(6)))
    rep = import_interactions(shop, log, dataset="shop")
    assert not rep.refused and shop.interaction_count("shop") == 6


# -- every CSV row imported or reported, with its line --------------------------------------------
def test_unclosed_quote_costs_one_row_not_the_rest_of_the_file(shop, tmp_path):
    log = write_file(tmp_path / "q.csv", 'user,item,event\nu1,a,view\nu2,"b,view\nu3,c,view\n'
                                    'u4,d,view\nu5,a,view\nu6,b,view\nu7,c,view\n')
    rep = import_interactions(shop, log, dataset="shop", replace=True)
    assert rep.rows_read == 7 and rep.imported == 6 and adds_up(rep)
    assert rep.lines == {"malformed line": [3]} and "line 3" in rep.summary()
    rep = import_interactions(shop, log, dataset="shop", on_error="refuse")
    assert rep.refused and rep.imported == 0


# -- timestamps, nesting and numbers --------------------------------------------------------------
def test_mixed_timezone_offsets_are_converted_to_utc(store, tmp_path):
    log = write_file(tmp_path / "tz.csv", "user,item,timestamp\nu1,a,2024-01-01 10:00+01:00\n"
                                     "u1,b,2024-01-01 10:00-05:00\nu2,a,2024-01-02 08:00\n"
                                     "u2,b,2024-01-02T08:00:00Z\n")
    rep = import_interactions(store, log, dataset="x")
    assert rep.imported == 4 and not rep.problems
    ts = store.interactions("x").set_index(["user_id", "item_id"])["ts"]
    assert str(ts["u1", "a"]) == "2024-01-01 09:00:00"
    assert str(ts["u1", "b"]) == "2024-01-01 15:00:00"
    assert str(ts["u2", "a"]) == str(ts["u2", "b"]) == "2024-01-02 08:00:00"


def test_deeply_nested_json_split_file(store, tmp_path):
    (tmp_path / "train.json").write_text('{"0": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(DataImportError, match="nested too deeply"):
        import_interactions(store, tmp_path, fmt="json", dataset="x")
    (tmp_path / "train.json").write_text(json.dumps({"0": [1, [2, [3]], {"a": 1}, True, "4"]}))
    rep = import_interactions(store, tmp_path, fmt="json", dataset="x")
    assert rep.imported == 2 and rep.problems == {"item is not an id (a number or a string)": 3}
    assert adds_up(rep)


def test_infinite_negative_and_nan_weights_are_rejected(store, tmp_path):
    log = write_file(tmp_path / "w.csv", "user,item,weight\nu,a,1\nu,b,inf\nu,c,-2\nu,d,nan\n"
                                    "u,e,-inf\nu,f,0\nu,g,\n")
    rep = import_interactions(store, log, dataset="x")
    assert rep.problems == {"weight is negative or infinite": 3, "weight is not a number": 1}
    x = store.interactions("x").set_index("item_id")["weight"]
    assert sorted(x.index) == ["a", "f", "g"] and x["f"] == 0.0 and adds_up(rep)


def test_unknown_event_names_are_imported_and_reported(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    try:
        log = tmp_path / "log.csv"
        log.write_text("user,item,event,weight\nu1,a,view,\nu2,b,addtocart,\nu3,c,like,\n"
                       "u4,d,like,4\nu5,e,Purchase,\n")
        rep = import_interactions(store, log, dataset="log")
        assert rep.imported == 5 and not rep.problems
        check_counts(rep)
        assert rep.details["rows with an unknown event (imported)"] == 3
        note = " ".join(rep.notes)
        assert "'like' x2" in note and "'addtocart' x1" in note and "2 of them with weight 1" \
            in note
        assert "Note:" in rep.summary() and rep.to_dict()["notes"] == rep.notes
        rows = store.query("SELECT item_id, event, weight FROM interactions "
                           "ORDER BY item_id").to_dict("records")
        assert [r["weight"] for r in rows] == [1.0, 1.0, 1.0, 4.0, 5.0]
        log.write_text("user,item,event\nu1,a,view\nu2,b,cart\n")
        rep = import_interactions(store, log, dataset="log2")
        assert not rep.notes and "rows with an unknown event (imported)" not in rep.details
        json.dumps(rep.to_dict())
    finally:
        store.close()


# -- explicit ratings ---------------------------------------------------------------------------
def test_the_csv_importer_keeps_the_rating_column(store, tmp_path):
    pd.DataFrame({"user": ["a", "a", "b", "b"], "item": ["x", "y", "x", "z"],
                  "stars": ["5", "3", "oops", "4"]}).to_csv(tmp_path / "r.csv", index=False)
    rep = usecases.import_interactions(store, tmp_path / "r.csv", dataset="r")
    assert rep.imported == 3 and rep.problems == {"rating is not a finite number": 1}
    rated = store.rated_pairs("r")
    assert rated["rating"].tolist() == [5.0, 3.0, 4.0]
    assert store.interactions("r")["weight"].tolist() == [1.0, 1.0, 1.0]  # no weight given
