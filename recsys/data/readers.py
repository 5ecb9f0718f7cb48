"""Reading the tables people import: CSV/TSV and Parquet files as strings, every record either
read or reported with its line, within limits on fields, lines and decoded size; and mapping a
file's columns onto the importers' fields.

`read_table(path)` returns the frame (indexed by the line each record starts on, or the row
number for Parquet) and the records that could not be read as (line, reason). Messages never
quote the file's content, except column names of a file that did parse as a table
(`recsys.data.report.describe_columns`), so pointing an import at a server file reveals nothing.
"""

from __future__ import annotations

import csv
import gc
import re
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterable, Iterator

import numpy as np
import pandas as pd

from recsys.data.report import DataImportError, describe_columns, megabytes_setting

# Fields far longer than any product description are still read (and then reported or
# imported), never dropped with their row: the csv module's default limit is 131,072.
if csv.field_size_limit() < 2**31 - 1:
    csv.field_size_limit(2**31 - 1)

# -- CSV and TSV --------------------------------------------------------------------------------
DEFAULT_MAX_FIELD_MB = 10
ROW_FIELDS = 4          # a row (all its lines) may be as long as this many fields at the limit


def max_field_chars(limit_mb: float | None = None) -> int:
    """The longest CSV field read: `limit_mb`, else `$RECSYS_MAX_CSV_FIELD_MB`, else 10 MB
    (characters of a field; bytes of a line). A physical line or a row longer than
    ROW_FIELDS times it is reported without ever being held whole."""
    limit_mb = megabytes_setting(limit_mb, "RECSYS_MAX_CSV_FIELD_MB", DEFAULT_MAX_FIELD_MB,
                                 "CSV field limit")
    return max(1, int(limit_mb * 2**20))


def _mb(n: int) -> str:
    """A size for a message: "40 MB", "4 KB" (three significant digits)."""
    return f"{n / 2**20:,.3g} MB" if n >= 2**20 else f"{n / 2**10:,.3g} KB"


def _skip_rest_of_line(fh: IO[bytes]) -> None:
    """Read on to just after the end of the current line (\\n, \\r\\n or a lone \\r), 1 MB at a
    time: an over-long line is dropped, never held."""
    while True:
        piece = fh.read(1 << 20)
        if not piece:
            return
        ends = [i for i in (piece.find(b"\n"), piece.find(b"\r")) if i >= 0]
        if not ends:
            continue
        at = min(ends)
        if piece[at] == 0x0D and at + 1 == len(piece):   # a CR ends the piece: LF next?
            following = fh.read(1)
            if following and following != b"\n":
                fh.seek(-1, 1)
            return
        end = at + 2 if piece[at:at + 2] == b"\r\n" else at + 1
        fh.seek(end - len(piece), 1)
        return


def _read_lines(fh: IO[bytes], cap: int) -> tuple[list[str | None], bool]:
    """The physical lines of a text file with their endings (\\n, \\r\\n or a lone \\r, as
    `newline=""` reads them), decoded as UTF-8, and whether all of it was UTF-8 (bytes that
    are not stay as surrogates). A line longer than `cap` bytes is None: read past in chunks,
    never held. Memory: the lines kept, plus at most `cap` bytes."""
    lines: list[str | None] = []
    append = lines.append
    clean = True
    readline = fh.readline
    while True:
        raw = readline(cap + 1)
        if not raw:
            break
        if len(raw) > cap and not raw.endswith(b"\n"):
            # over-long, unless lone CRs end lines inside it (a classic Mac file)
            parts = raw.splitlines(keepends=True)
            last = parts.pop()
            if not parts:                      # one line longer than `cap`
                append(None)
                if not last.endswith(b"\r"):
                    _skip_rest_of_line(fh)
                elif fh.read(1) not in (b"\n", b""):
                    fh.seek(-1, 1)
                continue
            fh.seek(-len(last), 1)             # read the unfinished line again
        elif b"\r" in raw and (not raw.endswith(b"\r\n") or raw.count(b"\r") > 1):
            parts = raw.splitlines(keepends=True)
        else:
            parts = [raw]
        for part in parts:
            try:
                append(part.decode("utf-8"))
            except UnicodeDecodeError:
                append(part.decode("utf-8", errors="surrogateescape"))
                clean = False
    return lines, clean


class _LongLine(Exception):
    """Raised by the line feed at a line longer than the cap (`index`: its 0-based line)."""

    def __init__(self, index: int):
        super().__init__(index)
        self.index = index


class _LongRow(Exception):
    """Raised by the line feed when a record's lines add up to more than the cap."""


def _parse_records(lines: list[str | None], sep: str, cap: int | None = None
                   ) -> tuple[list[tuple[int, list[str]]], list[tuple[int, str]]]:
    """Split CSV lines into records: ([(first line, fields)], [(line, why it is not valid)]).

    Python's csv module in strict mode, restarted after each error: a quote that is never
    closed is reported on the line that opened it and the lines it swallowed are read again,
    so one stray quote costs one row, not the rest of the file. A line that is None (longer
    than the cap, see `_read_lines`) is reported; so is a record whose lines add up to more
    than `cap` characters (on its first line), and its lines are read again.
    """
    records: list[tuple[int, list[str]]] = []
    bad: list[tuple[int, str]] = []
    append = records.append
    n = len(lines)
    cap = cap if cap is not None else sys.maxsize
    fed = 0

    def feed(start: int) -> Iterator[str]:
        nonlocal fed
        for i in range(start, n):
            line = lines[i]
            if line is None:
                raise _LongLine(i)
            fed += len(line)
            if fed > cap:
                raise _LongRow(i)
            yield line

    pos = 0
    while pos < n:
        fed = 0
        reader = csv.reader(feed(pos), delimiter=sep, strict=True)
        done = 0                                  # lines consumed before the current record
        try:
            for fields in reader:
                append((pos + done + 1, fields))
                done = reader.line_num
                fed = 0
        except _LongLine as exc:
            start = pos + done                    # index of the record's first line
            if exc.index == start:
                bad.append((start + 1, f"the line is longer than {_mb(cap)}, the limit "
                                       f"({ROW_FIELDS} fields of RECSYS_MAX_CSV_FIELD_MB); "
                                       "not read"))
            else:
                bad.append((start + 1, f"its row runs into line {exc.index + 1:,}, longer "
                                       f"than {_mb(cap)} (or a quote opened here is not "
                                       "closed)"))
            pos = start + 1
            continue
        except _LongRow:
            start = pos + done
            bad.append((start + 1, f"its row is longer than {_mb(cap)}, the limit (or a "
                                   "quote opened on this line is not closed)"))
            pos = start + 1
            continue
        except csv.Error as exc:
            start = pos + done                    # index of the record's first line
            if "unexpected end of data" in str(exc) or reader.line_num - done > 1:
                bad.append((start + 1, "a quote opened on this line is not closed"))
                pos = start + 1                   # read the lines it swallowed again
            else:
                bad.append((start + 1, f"not valid CSV ({exc})"))
                pos = max(pos + reader.line_num, start + 1)
            continue
        break
    return records, bad


def _column_names(header: list[str]) -> list[str]:
    """Header fields, stripped; blank ones named "Unnamed: i", repeats suffixed ".1", ".2"."""
    names: list[str] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(header):
        name = raw.strip() or f"Unnamed: {i}"
        if name in seen:
            seen[name] += 1
            name = f"{name}.{seen[name]}"
        seen.setdefault(name, 0)
        names.append(name)
    return names


def read_table(path: str | Path, sep: str | None = None, max_field_mb: float | None = None
               ) -> tuple[pd.DataFrame, list[tuple[int, str]]]:
    """Read a CSV/TSV or Parquet file as strings.

    Returns the frame, indexed by the line of the file each record starts on (the row number
    for Parquet), and the records that could not be read as (line, reason): malformed quoting,
    more or fewer fields than the header, bytes that are not UTF-8, a field longer than
    `max_field_chars(max_field_mb)` (10 MB), a line or row longer than ROW_FIELDS times that.
    Every record of the file is in one or the other. The file is read line by line, so an
    over-long line is never held whole. Messages never quote the file's content, except column
    names of a file that did parse as a table (so pointing it at a server file reveals nothing).
    """
    path = Path(path)
    if not path.is_file():
        raise DataImportError(f"File not found: {path}")
    if path.stat().st_size == 0:
        raise DataImportError(f"{path.name} is empty.")
    field_limit = max_field_chars(max_field_mb)
    if path.suffix.lower() in (".parquet", ".pq"):
        return _read_parquet(path, field_limit)
    cap = ROW_FIELDS * field_limit
    with open(path, "rb") as fh:
        head = fh.read(4096)
        if b"\x00" in head:
            raise DataImportError(f"{path.name} is a binary file, not a CSV or Parquet table.")
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            if len(head) < 4096 or exc.start < 4090:  # not just a character cut at the boundary
                raise DataImportError(f"{path.name} is not UTF-8 text, so not a CSV "
                                      "file.") from None
        fh.seek(0)
        with _gc_paused():    # half a million small strings: the collector would double the time
            lines, clean = _read_lines(fh, cap)
    if lines and lines[0] is not None:
        lines[0] = lines[0].removeprefix("\ufeff")
    if sep is None:
        first = lines[0] if lines and lines[0] is not None else ""
        sep = "\t" if path.suffix.lower() in (".tsv", ".inter") or "\t" in first else ","
    with _gc_paused():
        records, bad = _parse_records(lines, sep, cap)
        del lines
        return _records_to_frame(path, records, bad, clean, field_limit)


@contextmanager
def _gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _records_to_frame(path: Path, records: list[tuple[int, list[str]]],
                      bad: list[tuple[int, str]], clean: bool, field_limit: int = sys.maxsize
                      ) -> tuple[pd.DataFrame, list[tuple[int, str]]]:
    """Check each record against the header (and, when the file had bytes that are not UTF-8,
    for those bytes; for fields over `field_limit` characters); the good ones become the
    frame."""
    records = [(line, fields) for line, fields in records if fields]       # blank lines
    if not records or (bad and bad[0][0] < records[0][0]):
        raise DataImportError(f"{path.name} has no readable header line (the first line must "
                              "name the columns).")
    header = _column_names(records[0][1])
    width = len(header)
    if width < 2:
        raise DataImportError(f"{path.name} has {width} column; a catalog or interaction table "
                              "needs several (is it a CSV file?).")
    good_lines: list[int] = []
    rows: list[list[str]] = []
    for line, fields in records[1:]:
        if len(fields) != width:
            bad.append((line, f"{len(fields)} fields where the header has {width}"))
        elif not clean and any(_NOT_UTF8.search(f) for f in fields):
            bad.append((line, "bytes that are not UTF-8 text"))
        elif max(map(len, fields)) > field_limit:
            bad.append((line, f"a field longer than {_mb(field_limit)} (the limit, "
                              "RECSYS_MAX_CSV_FIELD_MB)"))
        else:
            good_lines.append(line)
            rows.append(fields)
    total = len(rows) + len(bad)
    if total >= 4 and len(bad) > total / 2:
        raise DataImportError(
            f"{path.name} does not look like a table: {len(bad):,} of its {total:,} lines do not "
            f"have the {width} fields of its first line (is the separator right?).")
    bad.sort()
    return _frame_of_strings(rows, header, good_lines), bad


_NOT_UTF8 = re.compile("[\udc80-\udcff]")


def _frame_of_strings(rows: list[list[str]], header: list[str], index: list[int]
                      ) -> pd.DataFrame:
    """A frame of pandas strings (empty fields are missing) from rows of equal length."""
    columns = list(zip(*rows)) if rows else [()] * len(header)
    return pd.DataFrame({name: pd.array([v if v else None for v in col], dtype="string")
                         for name, col in zip(header, columns)},
                        index=pd.Index(index, dtype="int64"))


# -- Parquet ------------------------------------------------------------------------------------
PARQUET_BATCH_ROWS = 8192
MAX_PARQUET_RATIO = 100          # uncompressed / compressed size of one column chunk
MAX_TABLE_TEXT_MB = 2048         # text a Parquet table decodes to, in all...
PARQUET_TEXT_RATIO = 100         # ...and at most this many times the file's size,
MIN_TABLE_TEXT_MB = 256          # (but always this much)


def parquet_text_budget(file_bytes: int) -> int:
    """The text (bytes) a Parquet file of `file_bytes` may decode to: 100 times its size, at
    least 256 MB and at most 2 GB. Repeated values stored once (dictionary, run-length) cannot
    make a small file stand for gigabytes."""
    return int(min(MAX_TABLE_TEXT_MB * 2**20,
                   max(MIN_TABLE_TEXT_MB * 2**20, PARQUET_TEXT_RATIO * file_bytes)))


def _read_parquet(path: Path, field_limit: int = sys.maxsize
                  ) -> tuple[pd.DataFrame, list[tuple[int, str]]]:
    """A Parquet table as strings, and its rows with a value over `field_limit` characters
    (reported, left out). Bounded before decoding: a column chunk that inflates more than
    MAX_PARQUET_RATIO times (and past 64 MB) is refused from the file's metadata; text columns
    are read in batches as dictionaries, so their decoded size is known before any string is
    built (a few repeated values cannot stand for gigabytes), and a table whose text adds up
    to more than `parquet_text_budget(file size)` is refused. Nested columns (lists, structs)
    are not read: no catalog or interaction field is one."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    def unreadable(exc: BaseException) -> DataImportError:
        return DataImportError(f"{path.name} is not a readable Parquet file "
                               f"({type(exc).__name__}).")

    try:
        schema = pq.ParquetFile(path).schema_arrow
        meta = pq.ParquetFile(path).metadata
        def value_type(t: pa.DataType) -> pa.DataType:
            return t.value_type if pa.types.is_dictionary(t) else t

        flat = [f.name for f in schema if not pa.types.is_nested(value_type(f.type))]
        text = [f.name for f in schema if f.name in flat and
                any(test(value_type(f.type)) for test in (
                    pa.types.is_string, pa.types.is_large_string, pa.types.is_binary,
                    pa.types.is_large_binary))]
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            for c in range(group.num_columns):
                chunk = group.column(c)
                size = chunk.total_uncompressed_size
                if size > 64 * 2**20 and size > MAX_PARQUET_RATIO * max(
                        1, chunk.total_compressed_size):
                    raise DataImportError(
                        f"{path.name}: column {chunk.path_in_schema!r} inflates "
                        f"{size / max(1, chunk.total_compressed_size):,.0f} times when "
                        f"decompressed (to {_mb(size)}); more than {MAX_PARQUET_RATIO} times "
                        "is refused as a likely decompression bomb.")
        reader = pq.ParquetFile(path, read_dictionary=text)
        budget = parquet_text_budget(path.stat().st_size)
        total = 0
        parts: list[pd.DataFrame] = []
        bad: list[tuple[int, str]] = []
        start = 0
        for batch in reader.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=flat):
            n = batch.num_rows
            too_long = np.zeros(n, dtype=bool)
            for name in text:
                col = batch.column(name)
                if isinstance(col, pa.DictionaryArray):
                    lengths = pc.binary_length(col.dictionary).take(col.indices)
                else:
                    lengths = pc.binary_length(col)
                lengths = lengths.to_numpy(zero_copy_only=False)
                lengths = np.nan_to_num(lengths.astype("float64"), nan=0.0)
                too_long |= lengths > field_limit
                total += int(lengths[lengths <= field_limit].sum())
            if total > budget:
                raise DataImportError(
                    f"{path.name} decodes to more than {_mb(budget)} of text (the limit for "
                    f"a file of {_mb(path.stat().st_size)}: {PARQUET_TEXT_RATIO} times its "
                    f"size, at least {MIN_TABLE_TEXT_MB} MB, at most {MAX_TABLE_TEXT_MB:,} "
                    "MB); nothing was imported. Split it into smaller files.")
            rows = np.arange(start + 1, start + n + 1)
            for r in rows[too_long]:
                bad.append((int(r), f"a field longer than {_mb(field_limit)} (the limit, "
                                    "RECSYS_MAX_CSV_FIELD_MB)"))
            if too_long.any():
                batch = batch.filter(pa.array(~too_long))
            frame = batch.to_pandas().astype("string")
            frame.index = rows[~too_long]
            parts.append(frame)
            start += n
    except DataImportError:
        raise
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many unrelated types
        raise unreadable(exc) from None
    if parts:
        frame = pd.concat(parts) if len(parts) > 1 else parts[0]
    else:
        frame = pd.DataFrame({name: pd.array([], dtype="string") for name in flat})
    frame.columns = _column_names([str(c) for c in frame.columns])
    frame.attrs["unit"] = "row"
    if frame.shape[1] < 2:
        raise DataImportError(f"{path.name} has {frame.shape[1]} column; a catalog or "
                              "interaction table needs several.")
    return frame, bad


# -- columns ------------------------------------------------------------------------------------
def resolve_columns(frame: pd.DataFrame, aliases: dict[str, tuple[str, ...]],
                    overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Map canonical field -> column of `frame` using explicit overrides, then aliases."""
    lower = {c.lower(): c for c in frame.columns}
    mapping: dict[str, str] = {}
    for canonical, source in (overrides or {}).items():
        if source not in frame.columns:
            raise DataImportError(f"Column {source!r} (given for {canonical}) is not in the file; "
                                  f"{describe_columns(frame.columns)}.")
        mapping[canonical] = source
    for canonical, names in aliases.items():
        if canonical in mapping:
            continue
        for name in names:
            if name in lower:
                mapping[canonical] = lower[name]
                break
    return mapping


def require_columns(mapping: dict[str, str], fields: Iterable[str], frame: pd.DataFrame,
                    label: str) -> None:
    """Raise `DataImportError` naming the `fields` that `mapping` (from `resolve_columns`)
    lacks, with the file's columns (when they read as names) and how to name them."""
    missing = [f for f in fields if f not in mapping]
    if missing:
        raise DataImportError(
            f"{label} is missing required column(s): {', '.join(missing)}; "
            f"{describe_columns(frame.columns)}. Name them with options such as "
            "--column item_id=SKU.")
