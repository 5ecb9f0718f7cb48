"""DuckDB store: the single source of truth for catalogs, users, interactions, embeddings and runs.

One `Store` per database file and process. Each thread (Streamlit runs each session in its own
thread) gets its own cursor on the shared connection; every write goes through `transaction()`,
so a failure leaves the database exactly as it was.

This package is the only code that speaks SQL: everything else calls the named methods of
`Store`, so a schema change touches this package (and its tests) only. `Store` is one façade
composed of one part per aggregate, each a mixin on the shared connection (mixins rather than
repository objects, so call sites stay `store.items(...)` and a transaction can span parts):

- `schema`: the tables, the columns added since, the table names, the settings keys;
- `connection.ConnectionPart`: opening the file (locked, truncated, damaged: `StoreError`),
  guarded per-thread cursors, transactions (a full disk says so), `query`, `scalar`,
  `insert_frame` (the one way to insert a data frame), runs a dead process left running marked
  interrupted at open, the file's size on disk;
- `catalog.CatalogPart`: settings, datasets (the active one: `set_active_dataset` is its one
  writer), items, users, interactions and the importers' writes;
- `vectors.VectorPart`: item vectors (written, streamed, digested for the search indexes) and
  the encoder registry;
- `runs.RunPart`: runs, epochs, metrics and evaluations, model files of runs;
- `jobs.JobPart`: background jobs (kind, parameters, status, progress, timings, error).

What spans the aggregates (`counts`, `delete_dataset`) is on the façade itself. Apart from
the façade, `ga4.ga4_item_events` reads a GA4 export file with DuckDB (an in-memory database,
not the store's) for `recsys.data.feeds.ga4`.
"""

from __future__ import annotations

from recsys.store.catalog import CatalogPart, UnknownDataset
from recsys.store.connection import HEADER_BYTES, StoreError
from recsys.store.jobs import JobPart
from recsys.store.runs import RunPart
from recsys.store.schema import ACTIVE_DATASET, SCHEMA, SCHEMA_VERSION, TABLES
from recsys.store.vectors import VectorPart

__all__ = ["ACTIVE_DATASET", "HEADER_BYTES", "SCHEMA", "SCHEMA_VERSION", "TABLES", "Store",
           "StoreError", "UnknownDataset"]


class Store(CatalogPart, VectorPart, RunPart, JobPart):
    """A DuckDB database file with the recsys schema; safe to share across threads."""

    def counts(self, dataset: str) -> dict[str, int]:
        """Row counts per table for one dataset."""
        out = {}
        for table in ("items", "users", "interactions", "embeddings", "runs"):
            out[table] = int(self.scalar(f"SELECT count(*) FROM {table} WHERE dataset = ?",
                                         [dataset]))
        return out

    def delete_dataset(self, name: str) -> None:
        """Remove a dataset and everything recorded about it (its runs with their epochs and
        metrics, its vectors, interactions, users and items), in one transaction."""
        with self.transaction() as cur:
            self._delete_dataset_runs(cur, name)
            self._delete_dataset_vectors(cur, name)
            self._delete_dataset_catalog(cur, name)
