"""Databases damaged inside: blocks that pass the open-time check and fail only when a query
reads them (the `damaged_db` fixture in conftest.py uses these)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from recsys.store import HEADER_BYTES, TABLES, Store

DAMAGED = "is damaged or incomplete"


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
