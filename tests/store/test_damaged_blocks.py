"""A database file damaged *inside*: blocks that pass the open-time check and fail only when a
query reads them. Every query of the store turns DuckDB's "Corrupt database file: computed
checksum ..." into the same StoreError as at open (the CLI and the pages showing it:
tests/cli/test_data.py, tests/app/test_app.py)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from recsys.store import Store, StoreError

from ..damaged_files import DAMAGED, add_big_dataset, damage, data_blocks


def test_the_damaged_block_passes_the_open_check_and_every_query_says_so(damaged_db: Path):
    for read_only in (False, True):
        store = Store(damaged_db, read_only=read_only)     # the open-time check passes
        try:
            assert store.dataset_names() == ["big"]        # blocks that are fine still answer
            with pytest.raises(StoreError, match=f"{DAMAGED}.*Corrupt database file.*Restore "
                                                 "it from a backup"):
                store.datasets()                           # a query (.df())
            with pytest.raises(StoreError, match=DAMAGED):
                store.scalar("SELECT count(DISTINCT item_id) FROM items")   # fetchmany
            with pytest.raises(StoreError, match=DAMAGED):
                store.item_ids("big")                      # fetchall
            with pytest.raises(StoreError, match=DAMAGED):
                store.items("big")
            assert store.runs().empty and store.active_dataset() == "big"   # still working
        finally:
            store.close()


def test_a_damaged_block_inside_a_transaction(damaged_db: Path):
    store = Store(damaged_db)
    try:
        with pytest.raises(StoreError, match=DAMAGED):
            with store.transaction() as cur:
                store.set_setting("probe", "written", cur)
                cur.execute("UPDATE items SET title = item_id || '!'")
        assert store.get_setting("probe") is None              # rolled back
        assert store.dataset_names() == ["big"]
    finally:
        store.close()


def test_a_damaged_block_met_while_streaming_batches(tmp_path: Path):
    """The titles' last block damaged: the reader opens, then fails while batches are read
    (Arrow reports it as an OSError "Data Corruption Error"): the same StoreError."""
    path = tmp_path / "late.duckdb"
    add_big_dataset(path, items=40000)
    damage(path, max(data_blocks(path, "items", "title")), 4096)
    store = Store(path)
    try:
        reader = store.cursor().sql("SELECT title FROM items").to_arrow_reader(1000)
        rows = 0
        with pytest.raises(StoreError, match=DAMAGED):
            for batch in reader:
                rows += len(batch)
        reader.close()
        assert rows < 40000
    finally:
        store.close()


def test_other_query_errors_stay_what_they_are(store: Store):
    with pytest.raises(duckdb.Error) as caught:
        store.query("SELECT 'abc'::INTEGER")
    assert not isinstance(caught.value, StoreError)
