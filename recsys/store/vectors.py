"""The vectors aggregate: item embeddings per (dataset, encoder, version, modality), and the
registry of encoder checkpoints that produced them.

`VectorPart` writes vectors (from memory, from a modality's feature file, from the Ray
pipeline's Parquet shards) and reads them whole, streamed in batches, or as the cheap digests the
persisted search indexes compare to know whether they are still current. Reads for the search
(`embedding_dims`, `embedding_fingerprint`, `embedding_signatures`, `embedding_batches`) never
return vectors of items that are no longer in the catalog.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from recsys.store.connection import ConnectionPart, first_row, json_or_null

# The vectors of one encoder version joined with the catalog ($d dataset, $e encoder, $v version).
_CATALOG_VECTORS = """FROM embeddings e JOIN items i
                      ON i.dataset = e.dataset AND i.item_id = e.item_id
                      WHERE e.dataset = $d AND e.encoder = $e AND e.version = $v"""


class VectorPart(ConnectionPart):
    """Item vectors and the encoder registry."""

    # -- writing vectors ----------------------------------------------------------------------
    def upsert_embeddings(self, dataset: str, encoder: str, version: str, modality: str,
                          item_ids: Sequence[str], vectors: np.ndarray,
                          content_hashes: Sequence[str | None]) -> None:
        """Insert or replace item vectors in one transaction."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(item_ids) != len(vectors) or len(item_ids) != len(content_hashes):
            raise ValueError("item_ids, vectors and content_hashes must have the same length")
        if len(item_ids) == 0:
            return
        table = _vector_table(dataset, encoder, version, modality, list(item_ids), vectors,
                              list(content_hashes))
        with self.transaction() as cur, self._registered(cur, table) as name:
            # created_at is written on replace too (INSERT OR REPLACE keeps the columns it is
            # not given): a rewritten vector must change `embedding_sets().updated_at` and
            # `embeddings_token`, the cache keys of the search index and of a run's data
            cur.execute(f"INSERT OR REPLACE INTO embeddings BY NAME SELECT *, "
                        f"current_timestamp::TIMESTAMP AS created_at FROM {name}")

    def replace_modality_vectors(self, dataset: str, encoder: str, version: str,
                                 modality: str,
                                 chunks: Iterable[tuple[Sequence[str], np.ndarray]]) -> int:
        """Replace every set of `encoder` in `modality` (all versions) by the vectors of
        `chunks` ((item ids, float32 matrix) pairs, read one at a time), in one transaction:
        an import that fails halfway leaves the old vectors. Returns the rows written."""
        written = 0
        with self.transaction() as cur:
            cur.execute("DELETE FROM embeddings WHERE dataset = ? AND encoder = ? AND modality = ?",
                        [dataset, encoder, modality])
            for ids, vectors in chunks:
                vectors = np.ascontiguousarray(vectors, dtype=np.float32)
                if len(ids) == 0:
                    continue
                table = _vector_table(dataset, encoder, version, modality,
                                      [str(i) for i in ids], vectors, None)
                self.insert_frame(cur, "embeddings", table, mode="replace")
                written += len(ids)
        return written

    def import_embedding_shards(self, dataset: str, encoder: str, version: str,
                                files: Sequence[str | Path]) -> dict[str, int]:
        """Import item vectors written as Parquet shards by the Ray embedding pipeline, in one
        transaction (all or nothing); returns the rows imported per modality.

        A shard has the columns item_id, modality, content_hash, vector (list of float32),
        error (null when the vector is good) and shard (its sequence number). Rows with an
        error are left out; so are rows of items no longer in the catalog or whose
        `content_hash` changed since they were embedded. When several shards hold a good row of
        the same item and modality with its current hash, the highest shard number wins.
        `created_at` is written on replace too (INSERT OR REPLACE keeps the columns it is not
        given), so re-embedded vectors change `embedding_sets().updated_at`, which caches of
        the vectors are keyed on.
        """
        paths = [str(f) for f in files]
        if not paths:
            return {}
        with self.transaction() as cur:
            rows = cur.execute("""
                INSERT OR REPLACE INTO embeddings
                    (dataset, item_id, encoder, version, modality, content_hash, vector,
                     created_at)
                SELECT $d, s.item_id, $e, $v, s.modality, s.content_hash, s.vector,
                       current_timestamp::TIMESTAMP
                FROM read_parquet($files) AS s
                JOIN items AS i ON i.dataset = $d AND i.item_id = s.item_id
                               AND i.content_hash IS NOT DISTINCT FROM s.content_hash
                WHERE s.error IS NULL
                QUALIFY row_number() OVER (PARTITION BY s.item_id, s.modality
                                           ORDER BY s.shard DESC) = 1
                RETURNING modality""",
                {"d": dataset, "e": encoder, "v": version, "files": paths}).fetchall()
        counts: dict[str, int] = {}
        for (modality,) in rows:
            counts[modality] = counts.get(modality, 0) + 1
        return counts

    def delete_embeddings(self, dataset: str, encoder: str, version: str, modality: str,
                          item_ids: Sequence[str]) -> int:
        """Remove the vectors of `item_ids` from one encoder version and modality."""
        ids = list(item_ids)
        if not ids:
            return 0
        with self.transaction() as cur:
            cur.execute("""DELETE FROM embeddings WHERE dataset = ? AND encoder = ? AND version = ?
                           AND modality = ? AND list_contains(?, item_id)""",
                        [dataset, encoder, version, modality, ids])
        return len(ids)

    @staticmethod
    def _delete_dataset_vectors(cur: duckdb.DuckDBPyConnection, name: str) -> None:
        """Delete every vector of a dataset (a step of `Store.delete_dataset`)."""
        cur.execute("DELETE FROM embeddings WHERE dataset = ?", [name])

    # -- reading vectors ----------------------------------------------------------------------
    def embeddings(self, dataset: str, encoder: str, version: str,
                   modality: str) -> tuple[list[str], np.ndarray]:
        """(item_ids, float32 matrix) of stored vectors, ordered by item_id."""
        tbl = self.cursor().sql(
            """SELECT item_id, vector FROM embeddings WHERE dataset = $d AND encoder = $e
               AND version = $v AND modality = $m ORDER BY item_id""",
            params={"d": dataset, "e": encoder, "v": version, "m": modality}).to_arrow_table()
        ids = tbl.column("item_id").to_pylist()
        if not ids:
            return [], np.zeros((0, 0), dtype=np.float32)
        col = tbl.column("vector").combine_chunks()
        flat = np.asarray(col.flatten(), dtype=np.float32)
        return ids, flat.reshape(len(ids), -1)

    def embedding_batches(self, dataset: str, encoder: str, version: str, modality: str,
                          item_ids: Sequence[str] | None = None, batch_rows: int = 65536,
                          ordered: bool = True) -> Iterator[tuple[list[str], np.ndarray]]:
        """Stream (item_ids, float32 rows) of catalog items' vectors in batches of `batch_rows`.

        Only one batch is in memory at a time (a 1M-item catalog's 1 GB of vectors is never
        materialised twice); `item_ids` restricts the stream to those items. `ordered=False`
        leaves the rows in storage order: no sort, which would hold every vector of the
        modality in DuckDB's memory first (a caller placing rows by id needs no order).
        """
        params = {"d": dataset, "e": encoder, "v": version, "m": modality}
        cur = self.cursor()
        # a consumer that stops early (an error, a stopped progress) must not leave the
        # reader's open result on this thread's cursor: the next statement would fail. The
        # reader is closed first, then the id list unregistered.
        with ExitStack() as cleanup:
            wanted = ""
            if item_ids is not None:
                ids = pa.table({"item_id": pa.array([str(i) for i in item_ids],
                                                    type=pa.string())})
                name = cleanup.enter_context(self._registered(cur, ids))
                wanted = f"AND e.item_id IN (SELECT item_id FROM {name})"
            reader = cur.sql(f"""SELECT e.item_id, e.vector {_CATALOG_VECTORS}
                                 AND e.modality = $m {wanted}
                                 {"ORDER BY e.item_id" if ordered else ""}""",
                             params=params).to_arrow_reader(batch_rows)
            cleanup.callback(reader.close)
            for batch in reader:
                batch_ids = batch.column(0).to_pylist()
                if not batch_ids:
                    continue
                values = batch.column(1).flatten().to_numpy(zero_copy_only=False)
                yield batch_ids, values.astype(np.float32, copy=False).reshape(len(batch_ids), -1)

    def embedding_hashes(self, dataset: str, encoder: str, version: str,
                         modality: str) -> dict[str, str | None]:
        """item_id -> the content hash its stored vector was computed from."""
        rows = self.cursor().execute(
            """SELECT item_id, content_hash FROM embeddings WHERE dataset = ? AND encoder = ?
               AND version = ? AND modality = ?""",
            [dataset, encoder, version, modality]).fetchall()
        return dict(rows)

    def embedding_sets(self, dataset: str) -> pd.DataFrame:
        """Which (encoder, version, modality) vectors exist for a dataset, with counts."""
        return self.query("""SELECT encoder, version, modality, count(*) AS n_items,
                                    max(created_at) AS updated_at
                             FROM embeddings WHERE dataset = ?
                             GROUP BY ALL ORDER BY updated_at DESC""", [dataset])

    def embeddings_token(self, dataset: str) -> str:
        """A cheap token that changes whenever a dataset's item vectors change: their number
        and newest write time (~1 ms at 2M vectors, answered from DuckDB's statistics, where
        `embedding_sets` groups every row: ~50 ms). A cache key for `embedding_sets`."""
        row = first_row(self.cursor(), "SELECT count(*), max(created_at) FROM embeddings "
                                       "WHERE dataset = ?", [dataset])
        return f"{row[0]}:{row[1]}"

    def embedding_dim(self, dataset: str, encoder: str, version: str, modality: str) -> int:
        """The dimension of one stored vector set (0 when the set is empty)."""
        return int(self.scalar(
            """SELECT len(vector) FROM embeddings WHERE dataset = ? AND encoder = ?
               AND version = ? AND modality = ? LIMIT 1""",
            [dataset, encoder, version, modality]) or 0)

    def embedding_dims(self, dataset: str, encoder: str, version: str) -> dict[str, int]:
        """Vector length per modality of one encoder version's vectors of catalog items."""
        rows = self.cursor().execute(
            f"SELECT e.modality, max(len(e.vector)) {_CATALOG_VECTORS} GROUP BY e.modality",
            {"d": dataset, "e": encoder, "v": version}).fetchall()
        return {str(m): int(n) for m, n in rows}

    def embedding_fingerprint(self, dataset: str, encoder: str, version: str) -> str:
        """A cheap digest of which catalog items have vectors of one encoder version, with their
        content hashes and write times: it changes whenever a vector is added, removed or
        rewritten, so a persisted index can tell in one query that it is still current."""
        row = first_row(
            self.cursor(),
            f"""SELECT count(*), coalesce(bit_xor(hash(e.item_id, e.modality,
                       coalesce(e.content_hash, ''), epoch_us(e.created_at))), 0)
                {_CATALOG_VECTORS}""",
            {"d": dataset, "e": encoder, "v": version})
        return f"{int(row[0])}:{int(row[1]):x}"

    def embedding_signatures(self, dataset: str, encoder: str, version: str) -> pd.DataFrame:
        """(item_id, modality, signature) of every catalog item's vectors: the content hash and
        write time joined into one string, compared by the incremental index update."""
        return self.cursor().execute(
            f"""SELECT e.item_id, e.modality,
                       coalesce(e.content_hash, '') || '@' || epoch_us(e.created_at) AS signature
                {_CATALOG_VECTORS} ORDER BY e.item_id, e.modality""",
            {"d": dataset, "e": encoder, "v": version}).df()

    # -- encoder registry ---------------------------------------------------------------------
    def register_encoder(self, name: str, version: str, kind: str, dataset: str | None,
                         path: str | None, config_: dict, metrics: dict | None = None) -> None:
        with self.transaction() as cur:
            cur.execute("INSERT OR REPLACE INTO encoders (name, version, kind, dataset, path, "
                        "config, metrics) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [name, version, kind, dataset, path, json_or_null(config_),
                         json_or_null(metrics)])

    def encoders(self, dataset: str | None = None) -> pd.DataFrame:
        """Registered encoder checkpoints, newest first (optionally those of one dataset)."""
        if dataset is None:
            return self.query("SELECT * FROM encoders ORDER BY created_at DESC")
        return self.query("SELECT * FROM encoders WHERE dataset = ? ORDER BY created_at DESC",
                          [dataset])

    def encoder_files(self) -> pd.DataFrame:
        """Registered encoder checkpoints with their file path (name, version, dataset, path)."""
        return self.query("SELECT name, version, dataset, path FROM encoders "
                          "WHERE path IS NOT NULL ORDER BY created_at DESC")


def _vector_table(dataset: str, encoder: str, version: str, modality: str,
                  item_ids: list, vectors: np.ndarray,
                  content_hashes: list[str | None] | None) -> pa.Table:
    """Rows of the embeddings table as an Arrow table: one per item, its float32 row of
    `vectors` as a list column (no per-row Python objects); `content_hashes` None: all NULL."""
    n, dim = vectors.shape
    return pa.table({
        "dataset": pa.array([dataset] * n), "item_id": pa.array(item_ids),
        "encoder": pa.array([encoder] * n), "version": pa.array([version] * n),
        "modality": pa.array([modality] * n),
        "content_hash": pa.array(content_hashes if content_hashes is not None else [None] * n,
                                 type=pa.string()),
        "vector": pa.ListArray.from_arrays(
            pa.array(np.arange(0, n * dim + 1, dim, dtype=np.int32)),
            pa.array(vectors.ravel())),
    })
