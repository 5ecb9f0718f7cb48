"""The DuckDB store: schema, per-thread cursors, transactions, embeddings and runs."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest

from recsys.store import Store, StoreError, UnknownDataset

REQUIRED_COLUMNS = {
    "items": {"dataset", "item_id", "title", "description", "article_type", "base_colour",
              "price", "image_path", "content_hash"},
    "users": {"dataset", "user_id", "name"},
    "interactions": {"dataset", "user_id", "item_id", "event", "ts", "weight", "split"},
    "embeddings": {"dataset", "item_id", "encoder", "version", "modality", "vector"},
    "encoders": {"name", "version", "path", "config"},
    "runs": {"run_id", "dataset", "model", "config", "status", "started_at", "finished_at",
             "seconds", "artifact_path"},
    "run_epochs": {"run_id", "epoch", "train_loss", "val_loss", "metrics"},
    "metrics": {"run_id", "protocol", "slice", "metric", "k", "value"},
}


def test_schema_is_created_with_required_columns(store: Store):
    for table, required in REQUIRED_COLUMNS.items():
        cols = set(store.query(f"DESCRIBE {table}")["column_name"])
        assert required <= cols, f"{table} lacks {required - cols}"
    assert store.path.is_file()


def test_reopening_keeps_data(tmp_path):
    s = Store(tmp_path / "a.duckdb")
    with s.transaction() as cur:
        s.upsert_dataset(cur, "shop", "catalog")
    s.close()
    s = Store(tmp_path / "a.duckdb")
    assert s.dataset_names() == ["shop"]
    assert s.active_dataset() == "shop"
    s.close()


def test_db_path_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_DB", str(tmp_path / "env.duckdb"))
    s = Store()
    assert s.path == tmp_path / "env.duckdb"
    s.close()


def test_transaction_rolls_back_on_error(store: Store):
    with store.transaction() as cur:
        store.upsert_dataset(cur, "shop", "catalog")
    with pytest.raises(RuntimeError):
        with store.transaction() as cur:
            cur.execute("INSERT INTO items (dataset, item_id, title) VALUES ('shop', '1', 'x')")
            raise RuntimeError("boom")
    assert store.counts("shop")["items"] == 0


def test_each_thread_gets_its_own_cursor_and_concurrent_writes_work(store: Store):
    with store.transaction() as cur:
        store.upsert_dataset(cur, "shop", "catalog")
    cursors, errors = [], []

    def work(n: int) -> None:
        try:
            cursors.append(id(store.cursor()))
            for j in range(20):
                with store.transaction() as cur:
                    cur.execute("INSERT INTO interactions (dataset, user_id, item_id, event) "
                                "VALUES ('shop', ?, ?, 'view')", [f"u{n}", f"i{j}"])
                store.query("SELECT count(*) FROM interactions")
        except Exception as exc:  # noqa: BLE001 - collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(cursors)) == 4
    assert store.counts("shop")["interactions"] == 80


def test_second_process_gets_a_clear_lock_message(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "locked.duckdb"
    s = Store(path)
    code = ("from recsys.store import Store, StoreError\n"
            f"try:\n    Store(r'{path}')\nexcept StoreError as e:\n    print('CLEAR', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    s.close()
    assert "CLEAR" in out.stdout and "in use by another process" in out.stdout


def test_unknown_dataset_is_a_clear_error(store: Store):
    with pytest.raises(UnknownDataset, match="init-demo"):
        store.resolve_dataset()
    with pytest.raises(UnknownDataset, match="Unknown dataset 'nope'"):
        store.resolve_dataset("nope")
    assert issubclass(UnknownDataset, StoreError)


def test_embeddings_round_trip_and_replace(store: Store):
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(5, 8)).astype(np.float32)
    ids = [f"i{k}" for k in range(5)]
    store.upsert_embeddings("shop", "enc", "v1", "image", ids, vecs, ["h"] * 5)
    got_ids, got = store.embeddings("shop", "enc", "v1", "image")
    assert got_ids == ids and np.allclose(got, vecs)
    store.upsert_embeddings("shop", "enc", "v1", "image", ["i0"], vecs[:1] * 2, ["h2"])
    _, got = store.embeddings("shop", "enc", "v1", "image")
    assert np.allclose(got[0], vecs[0] * 2) and len(got) == 5
    assert store.embedding_hashes("shop", "enc", "v1", "image")["i0"] == "h2"
    assert store.embeddings("shop", "enc", "v2", "image")[0] == []


def test_runs_epochs_and_metrics(store: Store):
    run = store.start_run("shop", "model", "pop", {"k": 1})
    store.add_epoch(run, 1, 0.5, float("nan"), {"ndcg@20": 0.1}, 1.0)
    store.add_metrics(run, [("random", "all", "recall", 20, 0.3), ("random", "all", "auc", None, 0.9)])
    store.add_metrics(run, [("random", "all", "recall", 20, 0.4)])  # replaces that protocol/slice
    store.finish_run(run, "finished", seconds=2.0, artifact_path="/x")
    assert store.run(run)["status"] == "finished"
    epochs = store.run_epochs(run)
    assert epochs["train_loss"].tolist() == [0.5] and pd.isna(epochs["val_loss"].iloc[0])
    m = store.run_metrics([run])
    assert m["value"].tolist() == [0.4] and m["model"].iloc[0] == "pop"


def test_delete_dataset_removes_everything(store: Store):
    with store.transaction() as cur:
        store.upsert_dataset(cur, "shop", "catalog")
        cur.execute("INSERT INTO items (dataset, item_id, title) VALUES ('shop', '1', 'x')")
    run = store.start_run("shop", "model", "pop", {})
    store.add_metrics(run, [("random", "all", "recall", 20, 0.3)])
    store.delete_dataset("shop")
    assert store.dataset_names() == []
    assert store.scalar("SELECT count(*) FROM metrics") == 0


def test_insert_frame_matches_columns_by_name_in_three_modes(store: Store):
    with store.transaction() as cur:
        store.upsert_dataset(cur, "shop", "catalog")
        rows = pd.DataFrame({"title": ["A", "B"], "item_id": ["a", "b"], "dataset": "shop"})
        assert store.insert_frame(cur, "items", rows) == 2
        assert store.insert_frame(cur, "items", rows.head(0)) == 0
    again = pd.DataFrame({"dataset": "shop", "item_id": ["b", "c"], "title": ["B2", "C"]})
    with store.transaction() as cur:
        store.insert_frame(cur, "items", again, mode="ignore")
    assert dict(zip(*store.items("shop")[["item_id", "title"]].T.values)) == \
        {"a": "A", "b": "B", "c": "C"}
    with store.transaction() as cur:
        store.insert_frame(cur, "items", again, mode="replace")
    assert store.items("shop", ["b"])["title"].iloc[0] == "B2"
    with pytest.raises(Exception):                  # a duplicate key in append mode
        with store.transaction() as cur:
            store.insert_frame(cur, "items", again)
    assert len(store.items("shop")) == 3            # rolled back, nothing half-written
    with pytest.raises(ValueError, match="unknown table"):
        store.insert_frame(store.cursor(), "items; DROP TABLE items", again)
    with pytest.raises(ValueError, match="mode"):
        store.insert_frame(store.cursor(), "items", again, mode="upsert")


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


def _shop(store: Store, n: int = 3000) -> list[str]:
    ids = [f"i{k:05d}" for k in range(n)]
    with store.transaction() as cur:
        store.upsert_dataset(cur, "shop", "catalog")
        store.insert_frame(cur, "items", pd.DataFrame({"dataset": "shop", "item_id": ids}))
    store.upsert_embeddings("shop", "enc", "v1", "image", ids,
                            np.random.default_rng(0).random((n, 8), dtype=np.float32), ids)
    return ids


def _cursor_uses(store: Store, ids: list[str]):
    """Everything that needs this thread's cursor: a registered frame in a transaction, a
    stream of vectors (registers the wanted ids), a join on ids, a run (INSERT ... RETURNING)."""

    def insert():
        with store.transaction() as cur:
            store.insert_frame(cur, "items", pd.DataFrame({"dataset": ["shop"],
                                                           "item_id": [f"new{len(ids)}"]}),
                               mode="replace")

    def stream():
        got = [i for b, _ in store.embedding_batches("shop", "enc", "v1", "image",
                                                     item_ids=ids[:5]) for i in b]
        assert got == ids[:5]

    def join():
        assert list(store.items("shop", ids[:3])["item_id"]) == ids[:3]

    def run():
        assert store.start_run("shop", "model", "pop", {}) > 0

    return [insert, stream, join, run]


@pytest.mark.parametrize("read", ["scalar of many rows", "scalar of one row", "versions",
                                  "fingerprint", "dataset kind", "interaction count"])
def test_single_row_reads_leave_no_half_read_result(store: Store, read):
    """Regression: DuckDB 2 keeps a result read with fetchone() open on the cursor, so after
    any `Store.scalar` call (or the index fingerprint) the next register / query on the same
    thread failed ("connection has an unfinished result"), e.g. `store.items(dataset, ids)`
    in the CLI's second search."""
    ids = _shop(store)
    first = {"scalar of many rows":
             lambda: store.scalar("SELECT item_id FROM items ORDER BY item_id"),
             "scalar of one row": lambda: store.scalar("SELECT count(*) FROM items"),
             "versions": lambda: (store.items_version("shop"),
                                  store.interactions_version("shop")),
             "fingerprint": lambda: store.embedding_fingerprint("shop", "enc", "v1"),
             "dataset kind": lambda: store.dataset_kind("shop"),
             "interaction count": lambda: store.interaction_count("shop")}[read]
    for use in _cursor_uses(store, ids):
        first()
        use()                    # failed for the register-based ones before the fix
    assert store.scalar("SELECT item_id FROM items ORDER BY item_id") == ids[0]
    assert store.scalar("SELECT item_id FROM items WHERE item_id = 'none'") is None


def test_a_vector_stream_stopped_early_frees_the_cursor(store: Store):
    """A consumer that stops reading `embedding_batches` (an error, a stopped progress bar)
    leaves no open reader on the cursor."""
    ids = _shop(store)
    stream = store.embedding_batches("shop", "enc", "v1", "image", item_ids=ids[:300],
                                     batch_rows=100)
    first_ids, vectors = next(stream)
    assert len(first_ids) == 100 and vectors.shape == (100, 8)
    stream.close()             # raised "unfinished result" (unregister under an open reader)
    for use in _cursor_uses(store, ids):
        use()


def test_a_file_whose_free_tail_was_cut_still_opens(tmp_path):
    """Regression: DuckDB cuts free blocks off the end of the file at a checkpoint while
    `pragma_database_size().total_blocks` still counts them; the truncation check compared the
    file with total_blocks and called a healthy database "damaged" after a few training runs
    (three `python -m recsys train` in a row on the test data)."""
    import duckdb

    from recsys.recommend.training import train_model
    from recsys.store import HEADER_BYTES

    from ..test_models_helpers import DATASET, fill_store

    path = tmp_path / "grow.duckdb"
    store = Store(path)
    fill_store(store)
    store.close()
    cut = False
    for _ in range(4):
        store = Store(path)                       # raised StoreError "damaged" on the 4th
        train_model(store, DATASET, "popularity", keep_models=0)
        store.close()
        with duckdb.connect(str(path), read_only=True) as con:
            size, total, used = con.execute("SELECT block_size, total_blocks, used_blocks "
                                            "FROM pragma_database_size()").fetchall()[0]
        cut |= path.stat().st_size < HEADER_BYTES + size * total
        assert path.stat().st_size >= HEADER_BYTES + size * used
    assert cut, "the situation of the bug (a file shorter than total_blocks) did not occur"
    Store(path).close()
    with pytest.raises(StoreError, match="damaged"):     # a truncated copy is still refused
        path.write_bytes(path.read_bytes()[:HEADER_BYTES + size * max(1, used // 2)])
        Store(path)
