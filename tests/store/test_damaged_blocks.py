"""A database file damaged *inside* (issue 19, item 4): blocks that pass the open-time check and
fail only when a query reads them. Every query of the store turns DuckDB's "Corrupt database
file: computed checksum ..." into the same StoreError as at open; the CLI prints it as one line
and every page of the app shows it instead of a traceback.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from recsys.cli import main
from recsys.store import HEADER_BYTES, TABLES, Store, StoreError

from ..app_helpers import app_test, problems

DAMAGED = "is damaged or incomplete"
PAGES = ["app_pages/home.py", "app_pages/catalog.py", "app_pages/visual_search.py",
         "app_pages/catalog_map.py", "app_pages/user_picks.py", "app_pages/new_shopper.py",
         "app_pages/train.py", "app_pages/evaluate.py", "app_pages/ab_test.py",
         "app_pages/data.py"]


def add_big_dataset(path: Path, name: str = "big", items: int = 20000) -> None:
    """A dataset large enough that its columns fill blocks of their own."""
    s = Store(path)
    with s.transaction() as cur:
        s.upsert_dataset(cur, name, "catalog")
        cur.execute("INSERT INTO items (dataset, item_id, title, image_path, price) SELECT ?, "
                    "'b' || i, 'product number ' || i || ' ' || md5(i::VARCHAR), "
                    "'/photos/' || md5(i::VARCHAR) || '.jpg', i FROM range(?) t(i)",
                    [name, items])
    s.close()


def data_blocks(path: Path, table: str, column: str) -> list[int]:
    """The file offsets of the blocks that hold `table.column` data and nothing but columns of
    `table` (no catalog metadata, no other table): damaging them leaves the file openable
    and breaks the queries that read that column."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        size = con.execute("SELECT block_size FROM pragma_database_size() WHERE "
                           "database_name = current_database()").fetchone()[0]
        owners: dict[int, set] = {}
        for t in TABLES:
            for col, block in con.execute(
                    f"SELECT column_name, block_id FROM pragma_storage_info('{t}') "
                    "WHERE block_id >= 0").fetchall():
                owners.setdefault(int(block), set()).add((t, col))
    finally:
        con.close()
    own = [b for b, who in owners.items()
           if (table, column) in who and all(t == table for t, _ in who)]
    assert own, f"no block holds {table}.{column} apart from other tables"
    return [HEADER_BYTES + b * int(size) for b in own]


def damage(path: Path, offsets: int | list[int], length: int = 1 << 20) -> None:
    with open(path, "r+b") as fh:
        for offset in [offsets] if isinstance(offsets, int) else offsets:
            fh.seek(offset)
            fh.write(b"\xff" * length)


@pytest.fixture
def damaged_db(tmp_path: Path) -> Path:
    """A healthy database with the blocks of `items.dataset` damaged (read by `status`)."""
    path = tmp_path / "damaged.duckdb"
    add_big_dataset(path)
    damage(path, data_blocks(path, "items", "dataset"), 4096)
    return path


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


def add_shoppers(path: Path, name: str = "big", users: int = 6000,
                 interactions: int = 60000, items: int = 20000) -> None:
    s = Store(path)
    with s.transaction() as cur:
        cur.execute("INSERT INTO users (dataset, user_id, name) SELECT ?, 'u' || i, "
                    "'shopper ' || md5(i::VARCHAR) FROM range(?) t(i)", [name, users])
        cur.execute("INSERT INTO interactions (dataset, user_id, item_id, event, ts, weight) "
                    "SELECT ?, 'u' || (i % ?), 'b' || (i * 7 % ?), 'view', "
                    "TIMESTAMP '2025-01-01' + to_seconds(i), 1.0 FROM range(?) t(i)",
                    [name, users, items, interactions])
    s.close()


def shop_database(path: Path) -> Path:
    """A catalog with its shoppers and their interactions, as `status` reads them."""
    add_big_dataset(path, items=20000)
    add_shoppers(path)
    return path


def test_status_over_every_damaged_block_is_a_message_or_an_answer(tmp_path: Path, capsys):
    """Each block of a real database damaged in turn (the issue's 1 MB of 0xff at offset
    2,000,000 too): `status` answers, or exits 2 with the damaged-file message; never a
    traceback. Most damage is only met by a query, after the open-time check passed."""
    good = shop_database(tmp_path / "good.duckdb")
    size = good.stat().st_size
    block = 262144
    offsets = [2_000_000] + list(range(HEADER_BYTES, size, block))
    at_query = 0
    for offset in offsets:
        path = tmp_path / "bad.duckdb"
        shutil.copy(good, path)
        damage(path, offset, (1 << 20) if offset == 2_000_000 else block)
        try:
            Store(path, read_only=True).close()
            opens = True
        except StoreError as exc:
            assert DAMAGED in str(exc)
            opens = False
        code = main(["status", "--db", str(path)])
        err = capsys.readouterr().err
        assert code in (0, 2), (offset, err)
        if code == 2:
            assert DAMAGED in err and err.count("\n") == 1, (offset, err)
            at_query += opens
    assert at_query >= 3          # blocks of users, interactions and items met by queries


def test_cli_status_on_a_damaged_block_is_one_line(damaged_db: Path, capsys):
    code = main(["status", "--db", str(damaged_db)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and DAMAGED in err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.fixture(scope="module")
def damaged_app_dbs(ready_demo_db: Path, tmp_path_factory) -> dict[str, Path]:
    """The set-up demo plus a large dataset 'big' (active), damaged two ways: the blocks of its
    titles (read by the pages), the blocks of its dataset column (read by the sidebar too)."""
    folder = tmp_path_factory.mktemp("damaged_app")
    healthy = folder / "healthy.duckdb"
    shutil.copy(ready_demo_db, healthy)
    add_big_dataset(healthy)
    add_shoppers(healthy, users=300, interactions=3000)
    out = {}
    for column in ("title", "dataset"):
        path = folder / column / "recsys.duckdb"
        path.parent.mkdir()
        shutil.copy(healthy, path)
        damage(path, data_blocks(path, "items", column), 4096)
        out[column] = path
    return out


@pytest.mark.parametrize("page", PAGES)
def test_every_page_shows_a_damaged_block_as_the_message(damaged_app_dbs, page: str):
    # the sidebar's query fails: before any page runs
    at = app_test(damaged_app_dbs["dataset"], page)
    assert not problems(at), problems(at)
    assert any(DAMAGED in e.value for e in at.error)
    # the page's own queries fail (the titles): the same message (never DuckDB's own words
    # alone, never a traceback), or the page did not need the titles
    at = app_test(damaged_app_dbs["title"], page)
    assert not problems(at), problems(at)
    assert all(DAMAGED in e.value for e in at.error if "checksum" in e.value)


def test_home_reads_the_damaged_titles_and_says_so(damaged_app_dbs):
    at = app_test(damaged_app_dbs["title"])
    assert not problems(at)
    assert [e.value for e in at.error if DAMAGED in e.value]
