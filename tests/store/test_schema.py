"""The store's schema: the required columns, data kept on reopening, and an older database
brought up to date (the rating column added, its rows kept)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from recsys.store import Store
from recsys.store.schema import CREATE_TABLES

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


def test_an_older_database_gets_the_rating_column_and_keeps_its_rows(tmp_path: Path):
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute(CREATE_TABLES)      # as made before any column of ADD_COLUMNS
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
