"""The store's connection: the database path, transactions, per-thread cursors, the lock held by
another process, `insert_frame`, reads that leave no half-read result; opening damaged,
truncated or shrunk files, folders and missing read-only files; a full disk inside a
transaction or an import (a clear StoreError, the file untouched, no masked error)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from recsys.store import Store, StoreError

ROOT = Path(__file__).resolve().parents[2]


def damaged(good: bytes) -> dict[str, bytes]:
    half = len(good) // 2
    return {"random bytes": os.urandom(len(good)), "text file": b"name,price\nshirt,10\n" * 50,
            "empty file": b"", "truncated to half": good[:half],
            "truncated to 4 KB": good[:4096], "truncated to 100 B": good[:100],
            "blocks zeroed": good[:8192] + b"\0" * (len(good) - 8192)}


@pytest.mark.parametrize("case", ["random bytes", "text file", "empty file", "truncated to half",
                                  "truncated to 4 KB", "truncated to 100 B", "blocks zeroed"])
def test_damaged_database_gives_a_clear_store_error(tmp_path: Path, good_db: bytes, case):
    path = tmp_path / "bad.duckdb"
    data = damaged(good_db)[case]
    path.write_bytes(data)
    for read_only in (False, True):
        with pytest.raises(StoreError, match="damaged or incomplete.*Restore it from a backup"):
            Store(path, read_only=read_only)
    assert path.read_bytes() == data            # never "repaired" or overwritten


def test_folder_and_missing_read_only_database(tmp_path: Path):
    (tmp_path / "dir.duckdb").mkdir()
    with pytest.raises(StoreError, match="is a folder"):
        Store(tmp_path / "dir.duckdb")
    with pytest.raises(StoreError, match="does not exist yet"):
        Store(tmp_path / "none.duckdb", read_only=True)


# -- full disk ---------------------------------------------------------------------------------
def test_disk_full_inside_a_transaction_is_a_store_error(store: Store):
    with pytest.raises(StoreError, match="disk holding the database .* is full"):
        with store.transaction() as cur:
            store.upsert_dataset(cur, "shop", "catalog")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert store.dataset_names() == []
    with pytest.raises(StoreError, match="is full"):
        with store.transaction():
            raise duckdb.IOException('IO Error: Could not write file "x.duckdb": No space left '
                                     "on device")


def test_a_failing_rollback_does_not_mask_the_original_error(store: Store):
    """When DuckDB has already ended the transaction, ROLLBACK fails ("no transaction is
    active"); the caller must still see the error that happened, not that one."""
    with pytest.raises(StoreError, match="is full"):
        with store.transaction() as cur:
            cur.rollback()
            raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(KeyError, match="original"):
        with store.transaction() as cur:
            cur.rollback()
            raise KeyError("original")
    assert store.dataset_names() == []          # and the store still works


def _fill_disk_script(db: Path, csv: Path, images: Path) -> str:
    return textwrap.dedent(f"""
        import resource, signal, sys
        from recsys.cli import main
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # writes past the limit fail with EFBIG
        limit = {db.stat().st_size} + 4096
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        sys.exit(main(["import-catalog", "--db", {str(db)!r}, "--csv", {str(csv)!r},
                       "--images", {str(images)!r}, "--dataset", "big"]))
    """)


def test_import_onto_a_full_disk_says_so_and_changes_nothing(tmp_path: Path):
    """A real write failure: the importing process may not grow any file past its size
    (RLIMIT_FSIZE, portable), so DuckDB's write or COMMIT fails like on a full disk."""
    from ..import_helpers import make_catalog

    db = tmp_path / "full.duckdb"
    s = Store(db)
    with s.transaction() as cur:
        s.upsert_dataset(cur, "shop", "catalog")
    s.close()
    rows = [{"id": f"i{n}", "title": "x" * 200 + str(n), "description": os.urandom(300).hex()}
            for n in range(6000)]
    csv = make_catalog(tmp_path, rows)
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", _fill_disk_script(db, csv, tmp_path / "images")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 2, out.stderr[-2000:]
    assert "is full" in out.stderr and "Traceback" not in out.stderr
    s = Store(db)
    assert s.dataset_names() == ["shop"] and s.counts("shop")["items"] == 0
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


def test_a_database_whose_checkpoint_cut_free_blocks_off_its_end_still_opens(tmp_path: Path):
    """Regression: DuckDB truncates trailing free blocks at a checkpoint while the header still
    counts them; the truncated-copy check took such a healthy file for a damaged one."""
    path = tmp_path / "shrunk.duckdb"
    ids = [f"i{i}" for i in range(2000)]
    rng = np.random.default_rng(0)
    store = Store(path)
    store.upsert_embeddings("d", "e", "1", "image", ids,
                            rng.random((2000, 64), dtype=np.float32), [None] * 2000)
    store.close()
    store = Store(path)
    store.upsert_embeddings("d", "e", "2", "image", ids,
                            rng.random((2000, 256), dtype=np.float32), [None] * 2000)
    store.close()
    store = Store(path)
    store.delete_embeddings("d", "e", "2", "image", ids)
    store.close()
    total, used = duckdb.connect(str(path), read_only=True).execute(
        "SELECT total_blocks, used_blocks FROM pragma_database_size()").fetchone()
    assert path.stat().st_size < 3 * 4096 + total * 262144 and used < total   # it did shrink
    store = Store(path)
    assert store.embedding_dim("d", "e", "1", "image") == 64
    store.close()
