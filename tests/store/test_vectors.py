"""The store's modalities section (issue-modal): vector sets replaced in one transaction, the
rating column added to existing databases, and a database that shrank on a checkpoint."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from recsys.store import SCHEMA, Store


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


def test_an_older_database_gets_the_rating_column_and_keeps_its_rows(tmp_path: Path):
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute(SCHEMA.split("-- issue-modal")[0])
    con.execute("ALTER TABLE interactions DROP COLUMN IF EXISTS rating")
    con.execute("INSERT INTO interactions (dataset, user_id, item_id, event, weight) "
                "VALUES ('d', 'u', 'i', 'view', 1.0)")
    con.close()
    store = Store(path)
    try:
        assert "rating" in set(store.query("DESCRIBE interactions")["column_name"])
        assert store.interaction_count("d") == 1 and store.rating_count("d") == 0
        assert store.rated_pairs("d").empty
    finally:
        store.close()


def test_replacing_a_modality_keeps_one_set_and_other_encoders(tmp_path: Path):
    store = Store(tmp_path / "s.duckdb")
    try:
        store.upsert_embeddings("d", "clip", "1", "image", ["a", "b"],
                                np.ones((2, 4), np.float32), [None, None])
        for version, dim in (("v1", 3), ("v2", 5)):
            written = store.replace_modality_vectors(
                "d", "features", version, "image",
                iter([(["a"], np.ones((1, dim))), (["b", "c"], np.ones((2, dim)))]))
            assert written == 3
        sets = store.embedding_sets("d")
        assert sorted(zip(sets["encoder"], sets["version"])) == [("clip", "1"),
                                                                 ("features", "v2")]
        assert store.embedding_dim("d", "features", "v2", "image") == 5
        assert store.embedding_dim("d", "features", "v1", "image") == 0
    finally:
        store.close()


def test_rated_pairs_average_repeated_ratings(store):
    frame = pd.DataFrame({"dataset": "d", "user_id": ["u", "u", "u", "v"],
                          "item_id": ["i", "i", "j", "i"], "event": "rating",
                          "weight": 1.0, "rating": [4.0, 2.0, None, 5.0]})
    with store.transaction() as cur:
        store.insert_frame(cur, "interactions", frame)
    rated = store.rated_pairs("d")
    assert rated.values.tolist() == [["u", "i", 3.0], ["v", "i", 5.0]]
    assert store.rating_count("d") == 3
