"""DuckDB store: the single source of truth for catalogs, users, interactions, embeddings and runs.

One `Store` per database file and process. Each thread (Streamlit runs each session in its own
thread) gets its own cursor on the shared connection; every write goes through `transaction()`,
so a failure leaves the database exactly as it was.

This is the only module that speaks SQL: everything else calls its named methods, so a schema
change touches this file. `insert_frame` is the one way to insert a data frame into a table
(register -> INSERT BY NAME -> unregister) and `set_active_dataset` the one writer of the active
dataset setting.
"""

from __future__ import annotations

import itertools
import json
import threading
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from recsys.core import config
from recsys.core.errors import RecsysError, disk_full_message, is_disk_full

SCHEMA_VERSION = "1"

SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (key VARCHAR PRIMARY KEY, value VARCHAR);

CREATE TABLE IF NOT EXISTS datasets (
    name VARCHAR PRIMARY KEY,
    kind VARCHAR NOT NULL,              -- catalog | interactions | demo
    source VARCHAR,
    attribution VARCHAR,
    description VARCHAR,
    created_at TIMESTAMP DEFAULT current_timestamp
);

CREATE TABLE IF NOT EXISTS items (
    dataset VARCHAR NOT NULL,
    item_id VARCHAR NOT NULL,
    title VARCHAR,
    description VARCHAR,
    gender VARCHAR,
    master_category VARCHAR,
    sub_category VARCHAR,
    article_type VARCHAR,
    base_colour VARCHAR,
    season VARCHAR,
    usage VARCHAR,
    year INTEGER,
    brand VARCHAR,
    price DOUBLE,
    image_path VARCHAR,
    content_hash VARCHAR,
    extra JSON,
    PRIMARY KEY (dataset, item_id)
);

CREATE TABLE IF NOT EXISTS users (
    dataset VARCHAR NOT NULL,
    user_id VARCHAR NOT NULL,
    name VARCHAR,
    segment VARCHAR,
    profile JSON,
    PRIMARY KEY (dataset, user_id)
);

CREATE TABLE IF NOT EXISTS interactions (
    dataset VARCHAR NOT NULL,
    user_id VARCHAR NOT NULL,
    item_id VARCHAR NOT NULL,
    event VARCHAR NOT NULL,             -- view | cart | purchase | rating | interaction
    ts TIMESTAMP,
    weight DOUBLE NOT NULL DEFAULT 1.0,
    split VARCHAR                       -- train | valid | test when the data came with a split
);

CREATE TABLE IF NOT EXISTS embeddings (
    dataset VARCHAR NOT NULL,
    item_id VARCHAR NOT NULL,
    encoder VARCHAR NOT NULL,
    version VARCHAR NOT NULL,
    modality VARCHAR NOT NULL,          -- image | text
    content_hash VARCHAR,
    vector FLOAT[] NOT NULL,
    created_at TIMESTAMP DEFAULT current_timestamp,
    PRIMARY KEY (dataset, item_id, encoder, version, modality)
);

CREATE TABLE IF NOT EXISTS encoders (
    name VARCHAR NOT NULL,
    version VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    dataset VARCHAR,
    path VARCHAR,
    config JSON,
    metrics JSON,
    created_at TIMESTAMP DEFAULT current_timestamp,
    PRIMARY KEY (name, version)
);

CREATE SEQUENCE IF NOT EXISTS run_ids START 1;

CREATE TABLE IF NOT EXISTS runs (
    run_id INTEGER PRIMARY KEY DEFAULT nextval('run_ids'),
    dataset VARCHAR,
    kind VARCHAR NOT NULL,              -- model | encoder | evaluation
    model VARCHAR NOT NULL,
    config JSON,
    status VARCHAR NOT NULL,            -- running | finished | failed | interrupted
    started_at TIMESTAMP DEFAULT current_timestamp,
    finished_at TIMESTAMP,
    seconds DOUBLE,
    artifact_path VARCHAR,
    message VARCHAR
);

CREATE TABLE IF NOT EXISTS run_epochs (
    run_id INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    train_loss DOUBLE,
    val_loss DOUBLE,
    metrics JSON,
    seconds DOUBLE,
    PRIMARY KEY (run_id, epoch)
);

CREATE TABLE IF NOT EXISTS metrics (
    run_id INTEGER NOT NULL,
    protocol VARCHAR NOT NULL,          -- the split protocol the numbers come from
    slice VARCHAR NOT NULL,             -- all | cold_items | short_history ...
    metric VARCHAR NOT NULL,
    k INTEGER,                          -- NULL for metrics without a cut-off (auc, coverage)
    value DOUBLE
);

-- evaluation (issue-eval): uncertainty of each metric, and metrics of diversity re-ranked lists
ALTER TABLE metrics ADD COLUMN IF NOT EXISTS users INTEGER;     -- users measured
ALTER TABLE metrics ADD COLUMN IF NOT EXISTS ci_low DOUBLE;     -- 95% bootstrap interval
ALTER TABLE metrics ADD COLUMN IF NOT EXISTS ci_high DOUBLE;
ALTER TABLE metrics ADD COLUMN IF NOT EXISTS std DOUBLE;        -- over cross-validation folds
ALTER TABLE metrics ADD COLUMN IF NOT EXISTS baseline VARCHAR;  -- the model compared with
ALTER TABLE metrics ADD COLUMN IF NOT EXISTS gain DOUBLE;       -- value / baseline's - 1
ALTER TABLE metrics ADD COLUMN IF NOT EXISTS gain_low DOUBLE;
ALTER TABLE metrics ADD COLUMN IF NOT EXISTS gain_high DOUBLE;
ALTER TABLE metrics ADD COLUMN IF NOT EXISTS p_value DOUBLE;    -- paired test vs baseline

CREATE TABLE IF NOT EXISTS rerank_metrics (
    run_id INTEGER NOT NULL,
    protocol VARCHAR NOT NULL,
    diversity DOUBLE NOT NULL,          -- MMR level (recsys.recommend.rerank); 0 = the model's order
    slice VARCHAR NOT NULL,
    metric VARCHAR NOT NULL,
    k INTEGER,
    value DOUBLE,
    users INTEGER,
    ci_low DOUBLE,
    ci_high DOUBLE,
    baseline VARCHAR,                   -- e.g. "diversity 0": the same model unre-ranked
    gain DOUBLE,
    gain_low DOUBLE,
    gain_high DOUBLE,
    p_value DOUBLE
);

-- issue-modal: an explicit rating (e.g. 1-5 stars) kept beside the event weight
ALTER TABLE interactions ADD COLUMN IF NOT EXISTS rating DOUBLE;
ALTER TABLE datasets ADD COLUMN IF NOT EXISTS items_rev BIGINT DEFAULT 0;  -- item writes so far
"""

TABLES = ("settings", "datasets", "items", "users", "interactions", "embeddings", "encoders",
          "runs", "run_epochs", "metrics", "rerank_metrics")
ACTIVE_DATASET = "active_dataset"
"""The settings key naming the active dataset (written only by `Store.set_active_dataset`)."""

ITEM_COLUMNS = ("item_id", "title", "description", "gender", "master_category", "sub_category",
                "article_type", "base_colour", "season", "usage", "year", "brand", "price",
                "image_path", "content_hash", "extra")
USER_COLUMNS = ("user_id", "name", "segment", "profile")
INTERACTION_COLUMNS = ("user_id", "item_id", "event", "ts", "weight", "split")


_frame_ids = itertools.count()
HEADER_BYTES = 3 * 4096     # a DuckDB file: main header, two database headers, then the blocks
# Words in DuckDB's errors for a file that is not (or no longer) a readable database.
DAMAGED_SIGNS = ("not a valid duckdb database", "could not read enough bytes", "corrupt",
                 "checksum", "version number", "serialization", "invalid database",
                 "failed to read", "unexpected end", "truncated")
# Words in DuckDB's errors for a block that turns out damaged while a query reads it (the open
# check cannot see those: DuckDB reads a block only when a query needs it). Narrower than
# DAMAGED_SIGNS: a query's own errors (a conversion, a constraint) must stay what they are.
BLOCK_DAMAGE_SIGNS = ("corrupt database file", "data corruption error", "checksum",
                      "could not read enough bytes")
INVALIDATED_SIGN = "database has been invalidated"
# (resolved database path, run_id) of the runs this process started and has not finished.
_LIVE_RUNS: set[tuple[str, int]] = set()


class StoreError(RecsysError):
    """A database problem explained for a person (locked file, unknown dataset...)."""


class UnknownDataset(StoreError):
    pass


class Store:
    """A DuckDB database file with the recsys schema; safe to share across threads."""

    def __init__(self, path: str | Path | None = None, read_only: bool = False):
        self.path = config.db_path(path)
        self.read_only = read_only
        if str(self.path) != ":memory:":
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"Cannot create the folder for the database {self.path}: "
                                 f"{exc.strerror or exc}.") from None
        try:
            self._conn = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.Error as exc:
            raise self._open_error(exc) from exc
        self._local = threading.local()
        self._lock = threading.Lock()
        try:
            self._check_length()
        except StoreError:
            self._conn.close()
            raise
        if not read_only:
            try:
                self._conn.execute(SCHEMA)
                self._conn.execute("INSERT OR REPLACE INTO settings VALUES ('schema_version', ?)",
                                   [SCHEMA_VERSION])
                self._mark_interrupted_runs()
            except (duckdb.Error, OSError) as exc:
                self._conn.close()
                raise self._open_error(exc) from exc

    def _open_error(self, exc: BaseException) -> StoreError:
        """A StoreError that says what is wrong with the database file and what to do."""
        text = str(exc)
        low = text.lower()
        if "could not set lock" in low or "conflicting lock" in low:
            return StoreError(
                f"The database {self.path} is in use by another process (for example the "
                "running Streamlit app). Stop that process, or point this command at another "
                "database with --db PATH or RECSYS_DB=PATH.")
        if _disk_full(exc):
            return StoreError(disk_full_message("the database", self.path,
                                                "it cannot be opened for writing"))
        if "read-only mode" in low and "does not exist" in low:
            return StoreError(f"The database {self.path} does not exist yet. Import data first "
                              "(python -m recsys init-demo or import-catalog).")
        if "is a directory" in low:
            return StoreError(f"{self.path} is a folder, not a database file; give the path of "
                              "a .duckdb file with --db PATH or RECSYS_DB=PATH.")
        if any(sign in low for sign in DAMAGED_SIGNS):
            return self._damaged_error(text)
        return StoreError(f"Cannot open the database {self.path}: {_first_line(text)}")

    def _damaged_error(self, text: str) -> StoreError:
        """The one message for a damaged database file, at open and on any later query."""
        return StoreError(
            f"The database file {self.path} is damaged or incomplete (for example truncated "
            f"by a copy or a full disk) and cannot be read ({_first_line(text)}). Nothing "
            "was changed. Restore it from a backup, or move it aside and start a new one "
            "(python -m recsys init-demo, or --db NEW.duckdb).")

    def _query_error(self, exc: BaseException) -> StoreError | None:
        """The StoreError for a DuckDB error raised by a query on a damaged file (a block
        whose checksum fails, a block cut off the file) or on a connection DuckDB gave up after
        a fatal error; None for any other error (it stays as it is)."""
        if not isinstance(exc, (duckdb.Error, OSError)) or isinstance(exc, RecsysError):
            return None
        low = str(exc).lower()
        if any(sign in low for sign in BLOCK_DAMAGE_SIGNS):
            return self._damaged_error(str(exc))
        if INVALIDATED_SIGN in low:
            return StoreError(
                f"The database {self.path} stopped answering after an earlier internal error "
                f"({_first_line(str(exc))}). Restart the app or the command; if it happens "
                "again the file may be damaged: restore it from a backup, or move it aside and "
                "start a new one (python -m recsys init-demo, or --db NEW.duckdb).")
        return None

    def _check_length(self) -> None:
        """Refuse a file shorter than the blocks in use need (a truncated copy).

        DuckDB reads blocks only when a query needs them, so such a file opens and then fails
        (or, in read-only mode, answers from what is left) somewhere later. The bound is the
        blocks in use, not `total_blocks`: a checkpoint cuts free blocks off the end of the
        file while `total_blocks` still counts them, so a healthy file may be shorter than
        `total_blocks` says (it was, after a few training runs), never shorter than its used
        blocks.
        """
        if str(self.path) == ":memory:" or not self.path.is_file():
            return
        # used, not total, blocks: a checkpoint cuts free blocks off the end of the file while
        # the header still counts them (the file is then shorter than total_blocks says)
        row = _first_row(self._conn, "SELECT block_size, used_blocks FROM "
                         "pragma_database_size() WHERE database_name = current_database()")
        if row is None:
            return
        expected = HEADER_BYTES + int(row[0]) * int(row[1])
        actual = self.path.stat().st_size
        if actual < expected:
            raise self._open_error(duckdb.IOException(
                f"the file has {actual:,} bytes but its header lists {expected:,} (truncated)"))

    def _mark_interrupted_runs(self) -> None:
        """Runs left 'running' by a process that died (kill -9, power cut) become 'interrupted'.

        Only a writer calls this, and DuckDB lets one process at a time open a file for
        writing, so no other process can still be running them; this process's own live runs
        (another Store on the same file) are left alone.
        """
        live = [run_id for key, run_id in _LIVE_RUNS if key == self._run_key()]
        self._conn.execute(
            "UPDATE runs SET status = 'interrupted', finished_at = coalesce(finished_at, ?), "
            "message = coalesce(message, 'stopped unexpectedly') WHERE status = 'running' "
            "AND run_id NOT IN (SELECT unnest(?::INTEGER[]))", [datetime.now(), live])

    def _run_key(self) -> str:
        return str(self.path) if str(self.path) == ":memory:" else str(self.path.resolve())

    # -- connections --------------------------------------------------------------------------
    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's own cursor on the shared connection, guarded: every statement run on
        it (and every relation, result and batch reader it hands out) turns an error saying the
        database file is damaged into the same StoreError as at open (`_query_error`). The one
        place that happens: every query of the store goes through here."""
        guarded = getattr(self._local, "guarded", None)
        if guarded is None:
            guarded = _Guarded(self._raw_cursor(), self._query_error)
            self._local.guarded = guarded
        return guarded  # type: ignore[return-value]

    def _raw_cursor(self) -> duckdb.DuckDBPyConnection:
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            with self._lock:
                cur = self._conn.cursor()
            self._local.cursor = cur
        return cur

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """BEGIN ... COMMIT on this thread's cursor; ROLLBACK on any exception.

        A full disk (while writing or at COMMIT) becomes a StoreError saying so, never the
        follow-up "transaction aborted" error of the rollback; so does a damaged block.
        BEGIN, COMMIT and ROLLBACK run on the raw cursor, so a failing ROLLBACK never masks
        the error that caused it.
        """
        raw, cur = self._raw_cursor(), self.cursor()
        cur.begin()
        try:
            yield cur
        except BaseException as exc:
            _rollback_quietly(raw)
            if _disk_full(exc):
                raise self._disk_full_error() from exc
            raise
        try:
            raw.commit()
        except (duckdb.Error, OSError) as exc:
            _rollback_quietly(raw)
            if _disk_full(exc):
                raise self._disk_full_error() from exc
            damaged = self._query_error(exc)
            if damaged is not None:
                raise damaged from exc
            raise

    def _disk_full_error(self) -> StoreError:
        return StoreError(disk_full_message(
            "the database", self.path,
            "the change was not saved; the database is as it was before"))

    def close(self) -> None:
        self._conn.close()

    def query(self, sql: str, params: Sequence[Any] | dict | None = None) -> pd.DataFrame:
        return self.cursor().execute(sql, params or []).df()

    def scalar(self, sql: str, params: Sequence[Any] | dict | None = None) -> Any:
        """The first column of the first row (None without rows); the result is read to its
        end, so the cursor is free for the next statement (see `_first_row`)."""
        row = _first_row(self.cursor(), sql, params)
        return None if row is None else row[0]

    @staticmethod
    @contextmanager
    def _registered(cur: duckdb.DuckDBPyConnection, frame: pd.DataFrame | pa.Table
                    ) -> Iterator[str]:
        """Expose `frame` to SQL on `cur` under a fresh view name for the block, then drop it."""
        name = f"_frame_{next(_frame_ids)}"
        cur.register(name, frame)
        try:
            yield name
        finally:
            cur.unregister(name)

    @classmethod
    def insert_frame(cls, cur: duckdb.DuckDBPyConnection, table: str,
                     frame: pd.DataFrame | pa.Table, mode: str = "append") -> int:
        """Insert the rows of a data frame (or Arrow table) into `table`, matching columns by
        name, on the caller's transaction cursor; returns the number of rows given.

        The one place for the register -> INSERT BY NAME -> unregister pattern. Columns the
        frame lacks get the table's defaults. `mode`: "append" (plain INSERT: a duplicate key
        is an error), "replace" (INSERT OR REPLACE: rows with an existing key overwrite it) or
        "ignore" (INSERT OR IGNORE: rows with an existing key are skipped).
        """
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}")
        verb = {"append": "INSERT", "replace": "INSERT OR REPLACE",
                "ignore": "INSERT OR IGNORE"}.get(mode)
        if verb is None:
            raise ValueError(f"mode must be append, replace or ignore, not {mode!r}")
        if len(frame) == 0:
            return 0
        with cls._registered(cur, frame) as name:
            cur.execute(f"{verb} INTO {table} BY NAME SELECT * FROM {name}")
        return len(frame)

    # -- settings and datasets ----------------------------------------------------------------
    def get_setting(self, key: str, default: str | None = None) -> str | None:
        value = self.scalar("SELECT value FROM settings WHERE key = ?", [key])
        return default if value is None else value

    def set_setting(self, key: str, value: str,
                    cur: duckdb.DuckDBPyConnection | None = None) -> None:
        """Write a setting, in the caller's transaction `cur` if given, else in its own."""
        if cur is not None:
            cur.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", [key, value])
            return
        with self.transaction() as own:
            own.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", [key, value])

    def set_active_dataset(self, name: str,
                           cur: duckdb.DuckDBPyConnection | None = None) -> None:
        """Make `name` the dataset commands and new app sessions use when none is named (in the
        caller's transaction `cur` if given). The one writer of the `active_dataset` setting."""
        self.set_setting(ACTIVE_DATASET, name, cur)

    def datasets(self) -> pd.DataFrame:
        """Datasets with their table sizes, newest first."""
        return self.query("""
            SELECT d.*,
              (SELECT count(*) FROM items i WHERE i.dataset = d.name) AS n_items,
              (SELECT count(*) FROM items i WHERE i.dataset = d.name
                 AND i.image_path IS NOT NULL) AS n_images,
              (SELECT count(*) FROM users u WHERE u.dataset = d.name) AS n_users,
              (SELECT count(*) FROM interactions x WHERE x.dataset = d.name) AS n_interactions
            FROM datasets d ORDER BY created_at DESC, name""")

    def dataset_names(self) -> list[str]:
        return [r[0] for r in self.cursor().execute(
            "SELECT name FROM datasets ORDER BY created_at DESC, name").fetchall()]

    def upsert_dataset(self, cur: duckdb.DuckDBPyConnection, name: str, kind: str,
                       source: str | None = None, attribution: str | None = None,
                       description: str | None = None) -> None:
        """Register a dataset inside the caller's transaction (keeps created_at if it exists)."""
        exists = _first_row(cur, "SELECT 1 FROM datasets WHERE name = ?", [name])
        if exists:
            cur.execute("""UPDATE datasets SET kind = ?, source = coalesce(?, source),
                           attribution = coalesce(?, attribution),
                           description = coalesce(?, description) WHERE name = ?""",
                        [kind, source, attribution, description, name])
        else:
            cur.execute("INSERT INTO datasets (name, kind, source, attribution, description) "
                        "VALUES (?, ?, ?, ?, ?)", [name, kind, source, attribution, description])
        self.set_active_dataset(name, cur)

    def active_dataset(self) -> str | None:
        """The dataset commands use when none is named: the last one imported or chosen."""
        name = self.get_setting(ACTIVE_DATASET)
        names = self.dataset_names()
        if name in names:
            return name
        return names[0] if names else None

    def resolve_dataset(self, name: str | None = None) -> str:
        """`name` if it exists, else the active dataset; a clear error when there is none."""
        names = self.dataset_names()
        if name is None:
            active = self.active_dataset()
            if active is None:
                raise UnknownDataset(
                    "The database holds no dataset yet. Run `python -m recsys init-demo` for the "
                    "built-in demo catalog, or import one with `python -m recsys import-catalog`.")
            return active
        if name not in names:
            raise UnknownDataset(f"Unknown dataset {name!r}. Known datasets: "
                                 f"{', '.join(names) if names else 'none'}.")
        return name

    def delete_dataset(self, name: str) -> None:
        """Remove a dataset and everything recorded about it, in one transaction."""
        with self.transaction() as cur:
            self._delete_dataset_rows(cur, name)
            cur.execute("DELETE FROM datasets WHERE name = ?", [name])

    @staticmethod
    def _delete_dataset_rows(cur: duckdb.DuckDBPyConnection, name: str) -> None:
        run_ids = "SELECT run_id FROM runs WHERE dataset = ?"
        cur.execute(f"DELETE FROM run_epochs WHERE run_id IN ({run_ids})", [name])
        cur.execute(f"DELETE FROM metrics WHERE run_id IN ({run_ids})", [name])
        cur.execute(f"DELETE FROM rerank_metrics WHERE run_id IN ({run_ids})", [name])
        for table in ("runs", "embeddings", "interactions", "users", "items"):
            cur.execute(f"DELETE FROM {table} WHERE dataset = ?", [name])

    def counts(self, dataset: str) -> dict[str, int]:
        """Row counts per table for one dataset."""
        out = {}
        for table in ("items", "users", "interactions", "embeddings", "runs"):
            out[table] = int(self.scalar(f"SELECT count(*) FROM {table} WHERE dataset = ?",
                                         [dataset]))
        return out

    def photo_count(self, dataset: str) -> int:
        """Items of a dataset that have a photo."""
        return int(self.scalar("SELECT count(*) FROM items WHERE dataset = ? AND image_path "
                               "IS NOT NULL", [dataset]) or 0)

    def items_version(self, dataset: str) -> str:
        """A cheap token that changes whenever the dataset's items change (import, delete):
        a cache key for anything computed from them. The content hashes cover what encoders
        read; the dataset's item-write counter (`items_rev`, bumped by every item write) covers
        the rest (a new price, gender or colour: the search filters), and its creation time a
        dataset deleted and imported again."""
        row = _first_row(
            self.cursor(),
            "SELECT count(*), coalesce(sum(hash(content_hash)) % 1000000007, 0), "
            "(SELECT any_value(items_rev) || '@' || any_value(created_at) FROM datasets "
            "WHERE name = ?) FROM items WHERE dataset = ?", [dataset, dataset])
        return f"{row[0]}:{row[1]}:{row[2]}"

    def interactions_version(self, dataset: str) -> str:
        """A cheap token that changes whenever the dataset's interactions change."""
        row = _first_row(self.cursor(), "SELECT count(*), max(ts) FROM interactions "
                                        "WHERE dataset = ?", [dataset])
        return f"{row[0]}:{row[1]}"

    # -- items, users, interactions -----------------------------------------------------------
    def items(self, dataset: str, item_ids: Iterable[str] | None = None) -> pd.DataFrame:
        """Items of a dataset ordered by item_id (all, or the given ids in that order)."""
        if item_ids is None:
            return self.query("SELECT * EXCLUDE (dataset) FROM items WHERE dataset = ? "
                              "ORDER BY item_id", [dataset])
        ids = [str(i) for i in item_ids]
        return self.query("""SELECT i.* EXCLUDE (dataset) FROM items i
                             JOIN (SELECT unnest($ids) AS item_id,
                                          generate_subscripts($ids, 1) AS pos) w
                               USING (item_id)
                             WHERE i.dataset = $dataset ORDER BY w.pos""",
                          {"ids": ids, "dataset": dataset})

    def item_ids(self, dataset: str) -> list[str]:
        return [r[0] for r in self.cursor().execute(
            "SELECT item_id FROM items WHERE dataset = ? ORDER BY item_id", [dataset]).fetchall()]

    def users(self, dataset: str) -> pd.DataFrame:
        """Users with their number of interactions, ordered by user_id."""
        return self.query("""
            SELECT u.* EXCLUDE (dataset), coalesce(n.n, 0) AS n_interactions
            FROM users u LEFT JOIN (SELECT user_id, count(*) AS n FROM interactions
                                    WHERE dataset = ? GROUP BY user_id) n USING (user_id)
            WHERE u.dataset = ? ORDER BY u.user_id""", [dataset, dataset])

    def user(self, dataset: str, user_id: str) -> dict[str, Any] | None:
        """One user's row (user_id, name, segment, profile), or None."""
        frame = self.query("SELECT * EXCLUDE (dataset) FROM users WHERE dataset = ? AND "
                           "user_id = ?", [dataset, str(user_id)])
        return None if frame.empty else frame.iloc[0].to_dict()

    def has_user(self, dataset: str, user_id: str) -> bool:
        return self.scalar("SELECT count(*) FROM users WHERE dataset = ? AND user_id = ?",
                           [dataset, str(user_id)]) > 0

    def interactions(self, dataset: str) -> pd.DataFrame:
        """All interactions of a dataset in time order (user_id, item_id, event, ts, weight, split)."""
        return self.query("""SELECT user_id, item_id, event, ts, weight, split FROM interactions
                             WHERE dataset = ? ORDER BY user_id, ts NULLS FIRST, item_id""",
                          [dataset])

    def implicit_pairs(self, dataset: str) -> pd.DataFrame:
        """One row per (user, item) of the interactions: weight = largest event weight, ts =
        first event, split_code = 0 train / 1 valid / 2 test (NULL without a stored split)."""
        return self.query("""
            SELECT user_id, item_id, max(weight) AS weight, min(ts) AS ts,
                   min(CASE split WHEN 'train' THEN 0 WHEN 'valid' THEN 1 WHEN 'test' THEN 2 END)
                     AS split_code
            FROM interactions WHERE dataset = ? GROUP BY user_id, item_id
            ORDER BY user_id, item_id""", [dataset])

    def weekly_events(self, dataset: str) -> pd.DataFrame:
        """Events per week and type (week, event, events), oldest week first."""
        return self.query(
            "SELECT date_trunc('week', ts) AS week, event, count(*) AS events FROM interactions "
            "WHERE dataset = ? AND ts IS NOT NULL GROUP BY ALL ORDER BY week", [dataset])

    def replace_users_and_interactions(self, dataset: str, users: pd.DataFrame,
                                       interactions: pd.DataFrame,
                                       settings: dict[str, str] | None = None) -> None:
        """Replace a dataset's users and interactions (frames with the tables' columns, a
        `dataset` column optional) and write `settings`, all in one transaction."""
        users = users.assign(dataset=dataset)
        interactions = interactions.assign(dataset=dataset)
        with self.transaction() as cur:
            cur.execute("DELETE FROM interactions WHERE dataset = ?", [dataset])
            cur.execute("DELETE FROM users WHERE dataset = ?", [dataset])
            self.insert_frame(cur, "users", users)
            self.insert_frame(cur, "interactions", interactions)
            for key, value in (settings or {}).items():
                self.set_setting(key, value, cur)

    def user_history(self, dataset: str, user_id: str) -> pd.DataFrame:
        """One user's interactions joined with item details, newest first."""
        return self.query("""
            SELECT x.event, x.ts, x.weight, x.split, i.* EXCLUDE (dataset)
            FROM interactions x JOIN items i ON i.dataset = x.dataset AND i.item_id = x.item_id
            WHERE x.dataset = ? AND x.user_id = ?
            ORDER BY x.ts DESC NULLS LAST, i.item_id""", [dataset, str(user_id)])

    # -- embeddings ---------------------------------------------------------------------------
    def upsert_embeddings(self, dataset: str, encoder: str, version: str, modality: str,
                          item_ids: Sequence[str], vectors: np.ndarray,
                          content_hashes: Sequence[str | None]) -> None:
        """Insert or replace item vectors in one transaction."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(item_ids) != len(vectors) or len(item_ids) != len(content_hashes):
            raise ValueError("item_ids, vectors and content_hashes must have the same length")
        if len(item_ids) == 0:
            return
        n, dim = vectors.shape
        table = pa.table({
            "dataset": pa.array([dataset] * n), "item_id": pa.array(list(item_ids)),
            "encoder": pa.array([encoder] * n), "version": pa.array([version] * n),
            "modality": pa.array([modality] * n),
            "content_hash": pa.array(list(content_hashes), type=pa.string()),
            "vector": pa.ListArray.from_arrays(pa.array(np.arange(0, n * dim + 1, dim,
                                                                  dtype=np.int32)),
                                               pa.array(vectors.ravel())),
        })
        with self.transaction() as cur, self._registered(cur, table) as name:
            # created_at is written on replace too (INSERT OR REPLACE keeps the columns it is
            # not given): a rewritten vector must change `embedding_sets().updated_at` and
            # `embeddings_token`, the cache keys of the search index and of a run's data
            cur.execute(f"INSERT OR REPLACE INTO embeddings BY NAME SELECT *, "
                        f"current_timestamp::TIMESTAMP AS created_at FROM {name}")

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

    def embedding_hashes(self, dataset: str, encoder: str, version: str,
                         modality: str) -> dict[str, str | None]:
        rows = self.cursor().execute(
            """SELECT item_id, content_hash FROM embeddings WHERE dataset = ? AND encoder = ?
               AND version = ? AND modality = ?""", [dataset, encoder, version, modality]).fetchall()
        return dict(rows)

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

    def embedding_sets(self, dataset: str) -> pd.DataFrame:
        """Which (encoder, version, modality) vectors exist for a dataset, with counts."""
        return self.query("""SELECT encoder, version, modality, count(*) AS n_items,
                                    max(created_at) AS updated_at
                             FROM embeddings WHERE dataset = ?
                             GROUP BY ALL ORDER BY updated_at DESC""", [dataset])

    # -- encoder registry ---------------------------------------------------------------------
    def register_encoder(self, name: str, version: str, kind: str, dataset: str | None,
                         path: str | None, config_: dict, metrics: dict | None = None) -> None:
        with self.transaction() as cur:
            cur.execute("INSERT OR REPLACE INTO encoders (name, version, kind, dataset, path, "
                        "config, metrics) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [name, version, kind, dataset, path, _json(config_), _json(metrics)])

    def encoders(self, dataset: str | None = None) -> pd.DataFrame:
        """Registered encoder checkpoints, newest first (optionally those of one dataset)."""
        if dataset is None:
            return self.query("SELECT * FROM encoders ORDER BY created_at DESC")
        return self.query("SELECT * FROM encoders WHERE dataset = ? ORDER BY created_at DESC",
                          [dataset])

    # -- training runs and metrics ------------------------------------------------------------
    def start_run(self, dataset: str | None, kind: str, model: str, config_: dict) -> int:
        with self.transaction() as cur:
            row = _first_row(cur, "INSERT INTO runs (dataset, kind, model, config, status) "
                                  "VALUES (?, ?, ?, ?, 'running') RETURNING run_id",
                             [dataset, kind, model, _json(config_)])
        _LIVE_RUNS.add((self._run_key(), int(row[0])))
        return int(row[0])

    def finish_run(self, run_id: int, status: str, seconds: float | None = None,
                   artifact_path: str | None = None, message: str | None = None,
                   config_: dict | None = None) -> None:
        with self.transaction() as cur:
            cur.execute("""UPDATE runs SET status = ?, finished_at = ?, seconds = ?,
                           artifact_path = coalesce(?, artifact_path), message = ?,
                           config = coalesce(?, config) WHERE run_id = ?""",
                        [status, datetime.now(), seconds, artifact_path, message,
                         None if config_ is None else _json(config_), run_id])
        _LIVE_RUNS.discard((self._run_key(), int(run_id)))

    def add_epoch(self, run_id: int, epoch: int, train_loss: float | None,
                  val_loss: float | None, metrics: dict | None, seconds: float | None) -> None:
        with self.transaction() as cur:
            cur.execute("INSERT OR REPLACE INTO run_epochs VALUES (?, ?, ?, ?, ?, ?)",
                        [run_id, epoch, _finite(train_loss), _finite(val_loss), _json(metrics),
                         seconds])

    def add_metrics(self, run_id: int, rows: Iterable[tuple[str, str, str, int | None, float]]
                    ) -> None:
        """Store (protocol, slice, metric, k, value) rows for a run, replacing older ones."""
        frame = pd.DataFrame(list(rows), columns=["protocol", "slice", "metric", "k", "value"])
        frame.insert(0, "run_id", run_id)
        frame["k"] = frame["k"].astype("Int64")
        with self.transaction() as cur:
            with self._registered(cur, frame) as new:
                cur.execute(f"""DELETE FROM metrics WHERE run_id = ? AND (protocol, slice) IN
                                (SELECT DISTINCT protocol, slice FROM {new})""", [run_id])
            self.insert_frame(cur, "metrics", frame)

    def runs(self, dataset: str | None = None, kind: str | None = None) -> pd.DataFrame:
        """Runs, newest first, optionally filtered by dataset and kind."""
        where, params = [], []
        if dataset is not None:
            where.append("dataset = ?")
            params.append(dataset)
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        return self.query(f"SELECT * FROM runs {clause} ORDER BY run_id DESC", params)

    def run(self, run_id: int) -> dict | None:
        frame = self.query("SELECT * FROM runs WHERE run_id = ?", [run_id])
        return None if frame.empty else frame.iloc[0].to_dict()

    def run_epochs(self, run_id: int) -> pd.DataFrame:
        return self.query("SELECT * FROM run_epochs WHERE run_id = ? ORDER BY epoch", [run_id])

    def latest_metrics(self, dataset: str) -> pd.DataFrame:
        """Metrics of the newest evaluated run per (model, protocol) of a dataset."""
        return self.query("""
            WITH latest AS (
                SELECT r.model, m.protocol, max(m.run_id) AS run_id
                FROM metrics m JOIN runs r USING (run_id)
                WHERE r.dataset = ? GROUP BY ALL)
            SELECT l.model, m.run_id, m.protocol, m.slice, m.metric, m.k, m.value
            FROM metrics m JOIN latest l ON m.run_id = l.run_id AND m.protocol = l.protocol
            ORDER BY l.model, m.slice, m.metric, m.k""", [dataset])

    def run_metrics(self, run_ids: Iterable[int] | None = None,
                    dataset: str | None = None) -> pd.DataFrame:
        """Metrics joined with their run's model name and status."""
        where, params = ["TRUE"], []
        if run_ids is not None:
            ids = [int(r) for r in run_ids]
            if not ids:
                return self.query("SELECT * FROM metrics WHERE FALSE")
            where.append(f"m.run_id IN ({', '.join('?' * len(ids))})")
            params += ids
        if dataset is not None:
            where.append("r.dataset = ?")
            params.append(dataset)
        return self.query(f"""SELECT r.model, r.dataset, r.status, r.config, m.*
                              FROM metrics m JOIN runs r USING (run_id)
                              WHERE {' AND '.join(where)} ORDER BY m.run_id, metric, k""", params)

    # -- importers ----------------------------------------------------------------------------
    def dataset_kind(self, name: str) -> str | None:
        """'catalog', 'interactions' or 'demo'; None for an unknown dataset."""
        return self.scalar("SELECT kind FROM datasets WHERE name = ?", [name])

    def interaction_count(self, dataset: str) -> int:
        return int(self.scalar("SELECT count(*) FROM interactions WHERE dataset = ?", [dataset]))

    @staticmethod
    def catalog_item_ids(cur: duckdb.DuckDBPyConnection, dataset: str) -> set[str]:
        """The item ids a dataset holds, read inside the caller's transaction."""
        return {r[0] for r in cur.execute("SELECT item_id FROM items WHERE dataset = ?",
                                          [dataset]).fetchall()}

    @classmethod
    def upsert_items(cls, cur: duckdb.DuckDBPyConnection, dataset: str,
                     rows: pd.DataFrame) -> None:
        """Insert or replace catalog rows (columns named as in `items`) of one dataset."""
        frame = rows.drop(columns=["dataset"], errors="ignore")
        frame.insert(0, "dataset", dataset)
        cls.insert_frame(cur, "items", frame, mode="replace")
        cls._items_written(cur, dataset)

    @staticmethod
    def _items_written(cur: duckdb.DuckDBPyConnection, dataset: str) -> None:
        """Count an item write in the dataset's `items_rev` (part of `items_version`)."""
        cur.execute("UPDATE datasets SET items_rev = coalesce(items_rev, 0) + 1 WHERE name = ?",
                    [dataset])

    @classmethod
    def write_interactions(cls, cur: duckdb.DuckDBPyConnection, dataset: str,
                           users: pd.DataFrame, items: pd.DataFrame | None,
                           interactions: pd.DataFrame, replace: bool) -> None:
        """Add users (and bare items, when given) that are new, then the interactions; with
        `replace` the dataset's interactions are deleted first. In the caller's transaction."""
        if replace:
            cur.execute("DELETE FROM interactions WHERE dataset = ?", [dataset])
        cls.insert_frame(cur, "users", users[["dataset", "user_id", "name"]], mode="ignore")
        if items is not None:
            cls.insert_frame(cur, "items", items[["dataset", "item_id", "title"]], mode="ignore")
            cls._items_written(cur, dataset)
        cls.insert_frame(cur, "interactions", interactions)

    # -- housekeeping and disk use (issue-scale) -----------------------------------------------
    # Named queries for the persisted vector indexes (recsys/search/vector_index.py), model-file
    # housekeeping (recsys/recommend/training.py) and the disk-use report. Vectors of items that are no
    # longer in the catalog are never returned.

    _CATALOG_VECTORS = """FROM embeddings e JOIN items i
                          ON i.dataset = e.dataset AND i.item_id = e.item_id
                          WHERE e.dataset = $d AND e.encoder = $e AND e.version = $v"""

    def embedding_dims(self, dataset: str, encoder: str, version: str) -> dict[str, int]:
        """Vector length per modality of one encoder version's vectors of catalog items."""
        rows = self.cursor().execute(
            f"SELECT e.modality, max(len(e.vector)) {self._CATALOG_VECTORS} GROUP BY e.modality",
            {"d": dataset, "e": encoder, "v": version}).fetchall()
        return {str(m): int(n) for m, n in rows}

    def embedding_fingerprint(self, dataset: str, encoder: str, version: str) -> str:
        """A cheap digest of which catalog items have vectors of one encoder version, with their
        content hashes and write times: it changes whenever a vector is added, removed or
        rewritten, so a persisted index can tell in one query that it is still current."""
        row = _first_row(
            self.cursor(),
            f"""SELECT count(*), coalesce(bit_xor(hash(e.item_id, e.modality,
                       coalesce(e.content_hash, ''), epoch_us(e.created_at))), 0)
                {self._CATALOG_VECTORS}""",
            {"d": dataset, "e": encoder, "v": version})
        return f"{int(row[0])}:{int(row[1]):x}"

    def embedding_signatures(self, dataset: str, encoder: str, version: str) -> pd.DataFrame:
        """(item_id, modality, signature) of every catalog item's vectors: the content hash and
        write time joined into one string, compared by the incremental index update."""
        return self.cursor().execute(
            f"""SELECT e.item_id, e.modality,
                       coalesce(e.content_hash, '') || '@' || epoch_us(e.created_at) AS signature
                {self._CATALOG_VECTORS} ORDER BY e.item_id, e.modality""",
            {"d": dataset, "e": encoder, "v": version}).df()

    def embedding_batches(self, dataset: str, encoder: str, version: str, modality: str,
                          item_ids: Sequence[str] | None = None, batch_rows: int = 65536
                          ) -> Iterator[tuple[list[str], np.ndarray]]:
        """Stream (item_ids, float32 rows) of catalog items' vectors in batches of `batch_rows`.

        Only one batch is in memory at a time (a 1M-item catalog's 1 GB of vectors is never
        materialised twice); `item_ids` restricts the stream to those items.
        """
        params = {"d": dataset, "e": encoder, "v": version, "m": modality}
        cur = self.cursor()
        wanted, name = "", None
        if item_ids is not None:
            name = f"_frame_{next(_frame_ids)}"
            cur.register(name, pa.table({"item_id": pa.array([str(i) for i in item_ids],
                                                             type=pa.string())}))
            wanted = f"AND e.item_id IN (SELECT item_id FROM {name})"
        reader = None
        try:
            reader = cur.sql(f"""SELECT e.item_id, e.vector {self._CATALOG_VECTORS}
                                 AND e.modality = $m {wanted} ORDER BY e.item_id""",
                             params=params).to_arrow_reader(batch_rows)
            for batch in reader:
                ids = batch.column(0).to_pylist()
                if not ids:
                    continue
                values = batch.column(1).flatten().to_numpy(zero_copy_only=False)
                yield ids, values.astype(np.float32, copy=False).reshape(len(ids), -1)
        finally:
            # a consumer that stops early (an error, a stopped progress) must not leave the
            # reader's open result on this thread's cursor: the next statement would fail
            if reader is not None:
                reader.close()
            if name is not None:
                cur.unregister(name)

    def embeddings_token(self, dataset: str) -> str:
        """A cheap token that changes whenever a dataset's item vectors change: their number
        and newest write time (~1 ms at 2M vectors, answered from DuckDB's statistics, where
        `embedding_sets` groups every row: ~50 ms). A cache key for `embedding_sets`."""
        row = _first_row(self.cursor(), "SELECT count(*), max(created_at) FROM embeddings "
                                        "WHERE dataset = ?", [dataset])
        return f"{row[0]}:{row[1]}"

    def item_columns(self, dataset: str, columns: Sequence[str]) -> pd.DataFrame:
        """item_id and the named columns of a dataset's items, ordered by item_id; names that
        are not columns of the items table are left out. A narrow read for the search's facet
        masks (a million rows of a few columns instead of the whole catalog)."""
        known = {str(c) for c in self.query("DESCRIBE items")["column_name"]} - {"dataset"}
        wanted = [c for c in dict.fromkeys(str(c) for c in columns)
                  if c in known and c != "item_id"]
        select = ", ".join(f'"{c}"' for c in ["item_id", *wanted])
        return self.query(f"SELECT {select} FROM items WHERE dataset = ? ORDER BY item_id",
                          [dataset])

    def model_runs_with_files(self, dataset: str | None = None) -> pd.DataFrame:
        """Model runs whose artifact file is recorded (run_id, dataset, model, status,
        finished_at, artifact_path), newest first."""
        where, params = "", []
        if dataset is not None:
            where, params = "AND dataset = ?", [dataset]
        return self.query(f"""SELECT run_id, dataset, model, status, finished_at, artifact_path
                              FROM runs WHERE kind = 'model' AND artifact_path IS NOT NULL
                              {where} ORDER BY run_id DESC""", params)

    def forget_run_artifacts(self, run_ids: Iterable[int], note: str) -> None:
        """Mark runs whose files were deleted: artifact_path becomes NULL, `note` is appended
        to the message; the run rows, their epochs and their metrics are kept."""
        ids = [int(r) for r in run_ids]
        if not ids:
            return
        with self.transaction() as cur:
            cur.execute(f"""UPDATE runs SET artifact_path = NULL,
                            message = CASE WHEN message IS NULL OR message = '' THEN ?
                                           ELSE message || '; ' || ? END
                            WHERE run_id IN ({', '.join('?' * len(ids))})""", [note, note, *ids])

    def encoder_files(self) -> pd.DataFrame:
        """Registered encoder checkpoints with their file path (name, version, dataset, path)."""
        return self.query("SELECT name, version, dataset, path FROM encoders "
                          "WHERE path IS NOT NULL ORDER BY created_at DESC")

    def database_bytes(self) -> int:
        """Size on disk of the database file and its write-ahead log (0 for :memory:)."""
        if str(self.path) == ":memory:":
            return 0
        total = 0
        for p in (Path(self.path), Path(f"{self.path}.wal")):
            if p.is_file():
                total += p.stat().st_size
        return total

    # -- evaluation (issue-eval) ---------------------------------------------------------------
    def save_evaluation(self, run_id: int, metrics: pd.DataFrame,
                        rerank: pd.DataFrame | None = None) -> None:
        """Store a run's metrics with their uncertainty, in one transaction.

        `metrics`: columns protocol, slice, metric, k, value and any of users, ci_low, ci_high,
        std, baseline, gain, gain_low, gain_high, p_value; rows of the same (protocol, slice)
        stored before for the run are replaced. `rerank`: the same plus `diversity`, replacing
        the run's re-ranked rows of that protocol.
        """
        with self.transaction() as cur:
            for table, frame, keys in (("metrics", metrics, "protocol, slice"),
                                       ("rerank_metrics", rerank, "protocol")):
                if frame is None or frame.empty:
                    continue
                frame = frame.assign(run_id=int(run_id), k=frame["k"].astype("Int64"))
                with self._registered(cur, frame) as new:
                    cur.execute(f"""DELETE FROM {table} WHERE run_id = ? AND ({keys}) IN
                                    (SELECT DISTINCT {keys} FROM {new})""", [int(run_id)])
                self.insert_frame(cur, table, frame)

    def latest_evaluation(self, dataset: str) -> pd.DataFrame:
        """Metrics with their uncertainty columns, of the newest evaluated run per (model,
        protocol) of a dataset."""
        return self._latest_metrics("metrics", dataset, "m.slice, m.metric, m.k")

    def latest_rerank_evaluation(self, dataset: str) -> pd.DataFrame:
        """Metrics of diversity re-ranked lists, of the newest run per (model, protocol) that
        has them."""
        return self._latest_metrics("rerank_metrics", dataset,
                                    "m.diversity, m.slice, m.metric, m.k")

    def _latest_metrics(self, table: str, dataset: str, order: str) -> pd.DataFrame:
        """Rows of a metrics `table` of the newest run per (model, protocol) of a dataset."""
        if table not in ("metrics", "rerank_metrics"):
            raise ValueError(f"not a metrics table: {table!r}")
        return self.query(f"""
            WITH latest AS (
                SELECT r.model, m.protocol, max(m.run_id) AS run_id
                FROM {table} m JOIN runs r USING (run_id)
                WHERE r.dataset = ? GROUP BY ALL)
            SELECT l.model, m.* EXCLUDE (run_id, protocol), m.run_id, m.protocol
            FROM {table} m JOIN latest l ON m.run_id = l.run_id AND m.protocol = l.protocol
            ORDER BY l.model, {order}""", [dataset])

    # -- picks (issue-demo) -------------------------------------------------------------------
    def user_item_events(self, dataset: str, user_id: str) -> pd.DataFrame:
        """Every item a user interacted with (all splits, catalog or not): item_id, the strongest
        event (the one of largest weight: purchase > cart > view), its weight, the number of
        events and the last time; most recent first."""
        return self.query("""
            SELECT item_id, arg_max(event, weight) AS event, max(weight) AS weight,
                   count(*) AS events, max(ts) AS last_ts
            FROM interactions WHERE dataset = ? AND user_id = ?
            GROUP BY item_id ORDER BY last_ts DESC NULLS LAST, item_id""",
                          [dataset, str(user_id)])

    # -- modalities (issue-modal) ---------------------------------------------------------------
    def embedding_dim(self, dataset: str, encoder: str, version: str, modality: str) -> int:
        """The dimension of one stored vector set (0 when the set is empty)."""
        return int(self.scalar(
            """SELECT len(vector) FROM embeddings WHERE dataset = ? AND encoder = ?
               AND version = ? AND modality = ? LIMIT 1""",
            [dataset, encoder, version, modality]) or 0)

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
                n = len(ids)
                if n == 0:
                    continue
                dim = vectors.shape[1]
                table = pa.table({
                    "dataset": pa.array([dataset] * n), "item_id": pa.array([str(i) for i in ids]),
                    "encoder": pa.array([encoder] * n), "version": pa.array([version] * n),
                    "modality": pa.array([modality] * n),
                    "content_hash": pa.array([None] * n, type=pa.string()),
                    "vector": pa.ListArray.from_arrays(
                        pa.array(np.arange(0, n * dim + 1, dim, dtype=np.int32)),
                        pa.array(vectors.ravel())),
                })
                self.insert_frame(cur, "embeddings", table, mode="replace")
                written += n
        return written

    def rated_pairs(self, dataset: str) -> pd.DataFrame:
        """One row per rated (user, item): its mean rating, ordered by user and item."""
        return self.query("""SELECT user_id, item_id, avg(rating) AS rating FROM interactions
                             WHERE dataset = ? AND rating IS NOT NULL GROUP BY user_id, item_id
                             ORDER BY user_id, item_id""", [dataset])

    def rating_count(self, dataset: str) -> int:
        """Interactions of a dataset that carry an explicit rating."""
        return int(self.scalar("SELECT count(*) FROM interactions WHERE dataset = ? AND rating "
                               "IS NOT NULL", [dataset]) or 0)

    # -- distributed embedding (issue-ray) -----------------------------------------------------
    def import_embedding_shards(self, dataset: str, encoder: str, version: str,
                                files: Sequence[str | Path]) -> dict[str, int]:
        """Import item vectors written as Parquet shards by the Ray embedding pipeline, in one
        transaction (all or nothing); returns the rows imported per modality.

        A shard has the columns item_id, modality, content_hash, vector (list of float32),
        error (null when the vector is good) and shard (its sequence number). Rows with an
        error are left out; so are rows of items no longer in the catalog or whose
        `content_hash` changed since they were embedded. When several shards hold a good row of
        the same item and modality with its current hash, the highest shard number wins. `created_at` is written on replace
        too (INSERT OR REPLACE keeps the columns it is not given), so re-embedded vectors
        change `embedding_sets().updated_at`, which caches of the vectors are keyed on.
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


def _disk_full(exc: BaseException) -> bool:
    """Whether an error (or the error it wraps) says the disk or the file size limit is full."""
    return is_disk_full(exc, (duckdb.Error, OSError))


class _Guarded:
    """A DuckDB cursor, relation or Arrow batch reader whose every call (and iteration) passes
    its DuckDB errors through `on_error`: an error it maps to a StoreError is raised as that
    (from the original), any other error unchanged. What a call returns is guarded the same
    way when it is a cursor, a relation or a batch reader (`cur.execute(...)` returns the
    cursor itself: the guard is returned)."""

    __slots__ = ("_target", "_on_error")

    def __init__(self, target: Any, on_error) -> None:
        self._target = target
        self._on_error = on_error

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                result = attr(*args, **kwargs)
            except (duckdb.Error, OSError) as exc:
                mapped = self._on_error(exc)
                if mapped is None:
                    raise
                raise mapped from exc
            return self._wrap(result)

        return call

    def _wrap(self, result: Any) -> Any:
        if result is self._target:
            return self
        if isinstance(result, (duckdb.DuckDBPyConnection, duckdb.DuckDBPyRelation,
                               pa.RecordBatchReader)):
            return _Guarded(result, self._on_error)
        return result

    def __iter__(self) -> Iterator[Any]:
        items = iter(self._target)
        while True:
            try:
                item = next(items)
            except StopIteration:
                return
            except (duckdb.Error, OSError) as exc:
                mapped = self._on_error(exc)
                if mapped is None:
                    raise
                raise mapped from exc
            yield item


def _rollback_quietly(cur: duckdb.DuckDBPyConnection) -> None:
    """ROLLBACK, ignoring "no transaction is active" (DuckDB may have ended it already)."""
    try:
        cur.rollback()
    except duckdb.Error:
        pass


def _first_row(cur: duckdb.DuckDBPyConnection, sql: str,
               params: Sequence[Any] | dict | None = None) -> tuple | None:
    """The first row of a statement's result (None without rows), with the result finished.

    DuckDB 2 keeps a result that was not read to its end open on the cursor, even a one-row
    result after `fetchone()`, and the cursor's next statement or `register` then fails
    ("connection has an unfinished result"). So every single-row read goes through here:
    read one row, then run the rest of the result to its end (`complete`).
    """
    rows = cur.execute(sql, params or []).fetchmany(1)
    finish = getattr(cur, "complete", None)        # DuckDB >= 2; older versions need nothing
    if finish is not None:
        finish()
    return rows[0] if rows else None


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else "unknown error"



def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _finite(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)
