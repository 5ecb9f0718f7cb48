"""Damaged files made by the tests: databases damaged inside (blocks that pass the open-time
check and fail only when a query reads them) and saved model files damaged one way at a time.
The `damaged_db` and `interactions_shop` fixtures in conftest.py use these."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np

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


def interaction_log(path: Path, users: int = 40, items: int = 25, per_user: int = 8) -> Path:
    rng = np.random.default_rng(0)
    rows = [(f"u{u:03d}", f"i{i:03d}") for u in range(users)
            for i in rng.choice(items, per_user, replace=False)]
    path.write_text("user,item,event\n" + "".join(f"{u},{i},view\n" for u, i in rows))
    return path


def arrays_of(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def write_npz(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def key_of(arrays: dict, *names: str) -> str:
    return next(k for k in arrays if any(k.endswith(n) for n in names))


def damage_file(path: str, kind: str) -> None:
    """Damage a saved model file in place, one way."""
    data = Path(path).read_bytes()
    if kind == "truncated":
        Path(path).write_bytes(data[: len(data) // 2])
        return
    if kind == "flipped bytes":
        mid = len(data) // 2
        Path(path).write_bytes(data[:mid] + bytes(b ^ 0xFF for b in data[mid:mid + 64])
                               + data[mid + 64:])
        return
    if kind == "not a zip":
        Path(path).write_bytes(b"\x93NUMPY" + data[:200])
        return
    arrays = arrays_of(path)
    if kind == "bad header JSON":
        arrays["__meta__"] = np.frombuffer(b'{"format": 1, "name": "ease", "cla', np.uint8)
    elif kind == "header of another kind":
        arrays["__meta__"] = np.frombuffer(b'[1, 2, 3]', np.uint8)
    elif kind == "unknown class":
        meta = arrays["__meta__"].tobytes().replace(b'"EASE"', b'"Evil\\nClass"')
        arrays["__meta__"] = np.frombuffer(meta, np.uint8)
    elif kind == "NaN weights":
        key = key_of(arrays, "weights", "::data")
        w = arrays[key].astype(np.float32)
        w.reshape(-1)[0] = np.nan
        arrays[key] = w
    elif kind == "wrong-shape weights":
        key = key_of(arrays, "weights")
        arrays[key] = arrays[key][:-1]
    elif kind == "bad index pointer":
        key = key_of(arrays, "::indptr")
        ptr = arrays[key].copy()
        ptr[len(ptr) // 2] = ptr[-1] + 1000
        arrays[key] = ptr
    elif kind == "index out of range":
        key = key_of(arrays, "::indices")
        idx = arrays[key].copy()
        idx[0] = 10 ** 6
        arrays[key] = idx
    elif kind == "repeated ids":
        items = arrays["__items__"].copy()
        items[1] = items[0]
        arrays["__items__"] = items
    elif kind == "seen table of another size":
        arrays["__seen__::shape"] = arrays["__seen__::shape"] + np.array([0, 1])
    elif kind == "unknown array":
        arrays["extra::blob"] = np.zeros(3)
    else:
        raise ValueError(kind)
    write_npz(path, arrays)
