"""The store's catalog: datasets (unknown ones, deleting everything (every table's rows of it,
another dataset's kept), the active one written in one place) and rated pairs."""

from __future__ import annotations

import numpy as np
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


def test_deleting_a_dataset_empties_every_table_of_it_and_keeps_the_others(store: Store):
    """Each part of the store deletes its own rows of a dataset: all of them go, in every
    table, and another dataset keeps all of its rows."""
    def fill(name: str) -> int:
        with store.transaction() as cur:
            store.upsert_dataset(cur, name, "catalog")
            store.upsert_items(cur, name, pd.DataFrame({"item_id": ["a", "b"]}))
            store.write_interactions(cur, name, pd.DataFrame({"dataset": name, "user_id": ["u"],
                                                              "name": ["U"]}), None,
                                     pd.DataFrame({"dataset": name, "user_id": ["u"],
                                                   "item_id": ["a"], "event": ["view"]}),
                                     replace=False)
        store.upsert_embeddings(name, "enc", "v1", "image", ["a", "b"],
                                np.ones((2, 4), np.float32), [None, None])
        run = store.start_run(name, "model", "pop", {})
        store.add_epoch(run, 1, 0.5, None, None, 1.0)
        rerank = pd.DataFrame({"protocol": ["random"], "diversity": [0.5], "slice": ["all"],
                               "metric": ["recall"], "k": [20], "value": [0.2]})
        store.save_evaluation(run, rerank.drop(columns="diversity"), rerank)
        store.finish_run(run, "finished", 1.0)
        return run

    gone, kept = fill("shop"), fill("other")
    store.delete_dataset("shop")
    assert store.dataset_names() == ["other"]
    assert store.counts("shop") == {"items": 0, "users": 0, "interactions": 0, "embeddings": 0,
                                    "runs": 0}
    assert store.counts("other") == {"items": 2, "users": 1, "interactions": 1,
                                     "embeddings": 2, "runs": 1}
    for table in ("run_epochs", "metrics", "rerank_metrics"):
        assert store.scalar(f"SELECT count(*) FROM {table} WHERE run_id = ?", [gone]) == 0
        assert store.scalar(f"SELECT count(*) FROM {table} WHERE run_id = ?", [kept]) == 1


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
