"""The store's catalog: datasets (unknown ones, deleting everything, the active one written in
one place) and rated pairs."""

from __future__ import annotations

import pandas as pd
import pytest

from recsys.store import Store, StoreError, UnknownDataset


def test_unknown_dataset_is_a_clear_error(store: Store):
    with pytest.raises(UnknownDataset, match="init-demo"):
        store.resolve_dataset()
    with pytest.raises(UnknownDataset, match="Unknown dataset 'nope'"):
        store.resolve_dataset("nope")
    assert issubclass(UnknownDataset, StoreError)


def test_delete_dataset_removes_everything(store: Store):
    with store.transaction() as cur:
        store.upsert_dataset(cur, "shop", "catalog")
        cur.execute("INSERT INTO items (dataset, item_id, title) VALUES ('shop', '1', 'x')")
    run = store.start_run("shop", "model", "pop", {})
    store.add_metrics(run, [("random", "all", "recall", 20, 0.3)])
    store.delete_dataset("shop")
    assert store.dataset_names() == []
    assert store.scalar("SELECT count(*) FROM metrics") == 0


def test_active_dataset_is_written_in_one_place(store: Store):
    with store.transaction() as cur:
        store.upsert_dataset(cur, "one", "catalog")
        store.upsert_dataset(cur, "two", "catalog")
    assert store.active_dataset() == "two"          # the last one registered
    store.set_active_dataset("one")
    assert store.active_dataset() == "one"
    with pytest.raises(RuntimeError):
        with store.transaction() as cur:
            store.set_active_dataset("two", cur)
            raise RuntimeError("abort")
    assert store.active_dataset() == "one"          # inside a rolled-back transaction


def test_rated_pairs_average_repeated_ratings(store):
    frame = pd.DataFrame({"dataset": "d", "user_id": ["u", "u", "u", "v"],
                          "item_id": ["i", "i", "j", "i"], "event": "rating",
                          "weight": 1.0, "rating": [4.0, 2.0, None, 5.0]})
    with store.transaction() as cur:
        store.insert_frame(cur, "interactions", frame)
    rated = store.rated_pairs("d")
    assert rated.values.tolist() == [["u", "i", 3.0], ["v", "i", 5.0]]
    assert store.rating_count("d") == 3
