"""The database file and the ways into it: opening, damage, a full disk, cursors, transactions.

`ConnectionPart` is the base of every part of the `Store`: it opens the file (refusing one that
is locked, truncated or damaged with a message that says what to do), runs the schema, marks
runs a dead process left running as interrupted, and hands each thread its own guarded cursor
on the shared connection. Every query of the store goes through `cursor()`, every write through
`transaction()`, every data-frame insert through `insert_frame`, every single-row read through
`first_row`.
"""

from __future__ import annotations

import itertools
import json
import threading
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator, Sequence

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from recsys.core import config
from recsys.core.errors import RecsysError, disk_full_message, is_disk_full
from recsys.store.schema import SCHEMA, SCHEMA_VERSION, TABLES

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

LIVE_RUNS: set[tuple[str, int]] = set()
"""(database key, run_id) of the runs this process started and has not finished: written by
`RunPart.start_run` / `finish_run`, read when a database is opened for writing (its other
'running' runs were left by a process that died)."""

_frame_ids = itertools.count()


class StoreError(RecsysError):
    """A database problem explained for a person (locked file, unknown dataset...)."""


class ConnectionPart:
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
                mark_jobs = getattr(self, "_mark_interrupted_jobs", None)
                if mark_jobs is not None:
                    mark_jobs()
            except (duckdb.Error, OSError) as exc:
                self._conn.close()
                raise self._open_error(exc) from exc

    def close(self) -> None:
        self._conn.close()

    # -- opening: what is wrong with the file -------------------------------------------------
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

    def _disk_full_error(self) -> StoreError:
        return StoreError(disk_full_message(
            "the database", self.path,
            "the change was not saved; the database is as it was before"))

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
        row = first_row(self._conn, "SELECT block_size, used_blocks FROM "
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
        live = [run_id for key, run_id in LIVE_RUNS if key == self._database_key()]
        self._conn.execute(
            "UPDATE runs SET status = 'interrupted', finished_at = coalesce(finished_at, ?), "
            "message = coalesce(message, 'stopped unexpectedly') WHERE status = 'running' "
            "AND run_id NOT IN (SELECT unnest(?::INTEGER[]))", [datetime.now(), live])

    def _database_key(self) -> str:
        """The database's identity in this process (its resolved path, or ':memory:')."""
        return str(self.path) if str(self.path) == ":memory:" else str(self.path.resolve())

    def database_bytes(self) -> int:
        """Size on disk of the database file and its write-ahead log (0 for :memory:)."""
        if str(self.path) == ":memory:":
            return 0
        total = 0
        for p in (Path(self.path), Path(f"{self.path}.wal")):
            if p.is_file():
                total += p.stat().st_size
        return total

    # -- cursors, transactions, statements -----------------------------------------------------
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

    @contextmanager
    def memory_limited(self, limit_bytes: int) -> Iterator[None]:
        """Run a block with DuckDB's memory limit lowered to `limit_bytes` (at least 256 MB):
        a long scan then keeps at most that much of the table's blocks cached in this process
        (by default DuckDB may cache up to 80% of the RAM, which a search-index build reading
        every vector would fill with a copy of them). The default is restored after (the store
        sets no other limit); an in-memory database, whose tables live in that memory, is
        left as it is."""
        if str(self.path) == ":memory:":
            yield
            return
        cur = self._raw_cursor()
        cur.execute(f"SET memory_limit = '{max(256, int(limit_bytes) // 2**20)}MiB'")
        try:
            yield
        finally:
            cur.execute("RESET memory_limit")

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

    def query(self, sql: str, params: Sequence[Any] | dict | None = None) -> pd.DataFrame:
        return self.cursor().execute(sql, params or []).df()

    def scalar(self, sql: str, params: Sequence[Any] | dict | None = None) -> Any:
        """The first column of the first row (None without rows); the result is read to its
        end, so the cursor is free for the next statement (see `first_row`)."""
        row = first_row(self.cursor(), sql, params)
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


def first_row(cur: duckdb.DuckDBPyConnection, sql: str,
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


def json_or_null(value: Any) -> str | None:
    """`value` as the text of a JSON column (NumPy numbers and arrays, paths included); None
    stays NULL."""
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


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else "unknown error"
