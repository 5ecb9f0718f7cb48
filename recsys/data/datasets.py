"""Importers: product catalogs (generic CSV/Parquet, Myntra) and interaction logs (MMRec, JSON, CSV).

Each importer validates everything first, then writes in one transaction, and returns an
`ImportReport` that counts problems by reason with a few examples and the file's line numbers:
every row of a file is either imported or reported. With `on_error="refuse"` any problem row
refuses the whole import; with `"skip"` (the default) problem rows are left out. An import
that would import nothing, or (interactions) remove more than it adds without `replace=True`,
is refused. Unreadable input (a missing file, a file that is not a table, missing required
columns) raises `DataImportError` before anything is written. Photos must lie inside the
images folder given; uploads (zips included) are unpacked with size caps and cleaned up.
All SQL is in the store's "importers" section.
"""

from __future__ import annotations

import csv
import errno
import gc
import hashlib
import io
import json
import lzma
import os
import re
import shutil
import struct
import sys
import tempfile
import time
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Iterable, Iterator, Literal, Sequence

import numpy as np
import pandas as pd

from recsys.core import config
from recsys.core.errors import RecsysError
from recsys.core.files import atomic_path
from recsys.core.progress import ProgressCallback, report
from recsys.data.images import check_image, file_digest
from recsys.store import Store

OnError = Literal["skip", "refuse"]

EVENT_WEIGHTS = {"view": 1.0, "click": 1.0, "wishlist": 2.0, "cart": 3.0, "purchase": 5.0,
                 "rating": 1.0, "interaction": 1.0}
SPLIT_NAMES = {"0": "train", "1": "valid", "2": "test", "train": "train", "valid": "valid",
               "val": "valid", "validation": "valid", "test": "test"}

MYNTRA_ATTRIBUTION = ('Myntra "Fashion Product Images (Small)" by Param Aggarwal (Kaggle), '
                      'scraped from myntra.com; declared MIT on Kaggle.')
AMAZON_ATTRIBUTION = ("Amazon review data, 5-core (J. McAuley, UCSD), MMRec benchmark split; "
                      "research use only.")

# Canonical item column -> names accepted for it in a generic catalog (case-insensitive).
ITEM_ALIASES: dict[str, tuple[str, ...]] = {
    "item_id": ("item_id", "id", "product_id", "sku", "itemid"),
    "title": ("title", "name", "product_name", "productdisplayname", "display_name"),
    "description": ("description", "desc", "details", "text"),
    "gender": ("gender",),
    "master_category": ("master_category", "mastercategory", "category"),
    "sub_category": ("sub_category", "subcategory"),
    "article_type": ("article_type", "articletype", "type", "product_type"),
    "base_colour": ("base_colour", "basecolour", "colour", "color", "base_color"),
    "season": ("season",),
    "usage": ("usage", "occasion"),
    "year": ("year",),
    "brand": ("brand",),
    "price": ("price",),
    "image_path": ("image_path", "image", "image_file", "filename", "file", "photo", "img"),
    "video": ("video", "video_path", "video_file"),     # kept in `extra` (issue-modal)
}
REQUIRED_ITEM_FIELDS = ("item_id", "title")
TEXT_FIELDS = ("title", "description", "gender", "master_category", "sub_category",
               "article_type", "base_colour", "season", "usage", "brand")

INTERACTION_ALIASES: dict[str, tuple[str, ...]] = {
    "user_id": ("user_id", "user", "userid", "customer_id", "reviewerid"),
    "item_id": ("item_id", "item", "itemid", "product_id", "asin", "id"),
    "event": ("event", "event_type", "action", "type"),
    "ts": ("timestamp", "ts", "time", "datetime", "date"),
    "weight": ("weight", "rating", "value"),
    "split": ("split", "x_label", "set"),
    "rating": ("rating", "stars"),      # kept as is (also the weight when there is no weight)
}

EXAMPLES_PER_REASON = 5
MAX_LINES_LISTED = 1000        # line numbers per reason in `ImportReport.to_dict()`
MAX_ID_CHARS = 256             # longer user or item ids are reported, not imported
MAX_EPOCH_SECONDS = 1e11       # |epoch seconds| beyond this (year ~5000) is not a timestamp

# Fields far longer than any product description are still read (and then reported or
# imported), never dropped with their row: the csv module's default limit is 131,072.
if csv.field_size_limit() < 2**31 - 1:
    csv.field_size_limit(2**31 - 1)


class DataImportError(RecsysError, ValueError):
    """Input that cannot be imported at all; nothing was written."""


@dataclass
class ImportReport:
    """What an import did: rows read, imported and reported (by reason, with examples and the
    file's line numbers), or why it was refused. Unless refused, `rows_read` equals
    `imported + rows_skipped`: every row of the file is either imported or reported."""

    dataset: str
    kind: str
    rows_read: int = 0
    imported: int = 0
    problems: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    refused: bool = False
    details: dict[str, int | str] = field(default_factory=dict)
    lines: dict[str, list[int]] = field(default_factory=dict)
    rows_skipped: int = 0
    reason: str | None = None       # why the import was refused when no single row is at fault
    unit: str = "line"              # what `lines` counts: "line" of a CSV file, "row", "entry"
    notes: list[str] = field(default_factory=list)  # imported, but worth a look (sentences)

    def add_problem(self, reason: str, example: str, lines: Iterable[int] = (),
                    rows: int = 1) -> None:
        """One problem (usually one row; `rows` when it stands for several)."""
        self.problems[reason] = self.problems.get(reason, 0) + 1
        bucket = self.examples.setdefault(reason, [])
        if len(bucket) < EXAMPLES_PER_REASON:
            bucket.append(_short(example))
        self.lines.setdefault(reason, []).extend(int(n) for n in lines)
        self.rows_skipped += rows

    def add_rows(self, reason: str, labels: Sequence[int],
                 example: Callable[[int], str]) -> None:
        """Many rows with the same problem, counted one by one; `example(k)` describes the
        k-th of them (called for the first few only)."""
        if not len(labels):
            return
        self.problems[reason] = self.problems.get(reason, 0) + len(labels)
        bucket = self.examples.setdefault(reason, [])
        for k in range(min(len(labels), max(0, EXAMPLES_PER_REASON - len(bucket)))):
            bucket.append(_short(example(k)))
        self.lines.setdefault(reason, []).extend(int(n) for n in labels)
        self.rows_skipped += len(labels)

    def refuse(self, reason: str) -> "ImportReport":
        self.refused, self.reason, self.imported = True, reason, 0
        return self

    @property
    def skipped(self) -> int:
        return sum(self.problems.values())

    def summary(self) -> str:
        if self.refused:
            head = f"REFUSED: nothing was imported into '{self.dataset}'"
            if self.reason:
                head += f": {self.reason}"
        else:
            head = f"Imported {self.imported:,} {self.kind} into dataset '{self.dataset}'"
        lines = [f"{head} ({self.rows_read:,} rows read)."]
        lines += [f"  {k}: {v:,}" if isinstance(v, int) else f"  {k}: {v}"
                  for k, v in self.details.items()]
        lines += [f"Note: {note}" for note in self.notes]
        if self.problems:
            verb = "found" if self.refused else "skipped"
            lines.append(f"{self.rows_skipped:,} problem rows {verb}:")
            for reason, count in self.problems.items():
                where = _line_list(self.lines.get(reason, []), self.unit)
                lines.append(f"  - {reason}: {count:,} (e.g. {'; '.join(self.examples[reason])})"
                             + (f" at {where}" if where else ""))
            if self.refused and not self.reason:
                lines.append("Fix these rows, or re-run with --on-error skip to leave them out.")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"dataset": self.dataset, "kind": self.kind, "rows_read": self.rows_read,
                "imported": self.imported, "skipped": self.skipped,
                "rows_skipped": self.rows_skipped, "refused": self.refused,
                "reason": self.reason, "problems": self.problems, "examples": self.examples,
                "lines": {k: v[:MAX_LINES_LISTED] for k, v in self.lines.items()},
                "line_unit": self.unit, "details": self.details, "notes": self.notes}


# -- messages that quote no file content (issue 19) ------------------------------------------
_SAFE_COLUMN = re.compile(r"[^\W_][\w .()#%+-]{0,63}|Unnamed: \d+")
MAX_COLUMNS_SHOWN = 12


def describe_columns(names: Iterable[object]) -> str:
    """"its columns: a, b, c" for a header that reads as column names (at least two, each at
    most 64 letters, digits, spaces and `_ . ( ) # % + -`); otherwise a sentence that quotes
    nothing. Error messages name a file's columns only through this: a server file that was
    not a table (a passwd file, an environment, a `.env` split at commas) never has its first
    line repeated."""
    names = [str(n) for n in names]
    if len(names) >= 2 and all(_SAFE_COLUMN.fullmatch(n) for n in names):
        more = len(names) - MAX_COLUMNS_SHOWN
        return "its columns: " + ", ".join(names[:MAX_COLUMNS_SHOWN]) + \
            (f" and {more:,} more" if more > 0 else "")
    return "its first line does not read as column names (not shown)"


_QUOTED = re.compile(r"""b?'(?:[^'\\]|\\.)*'|b?"(?:[^"\\]|\\.)*"|`[^`]*`""")


def safe_reason(exc: BaseException, limit: int = 160) -> str:
    """Why a file could not be read, for a message, without any of its content: the error's
    text with quoted parts (where parsers put what they read) cut out, at most `limit`
    characters. "Expected 3 fields in line 5, saw 4" stays; numpy's "expected b'\\x93NUMPY',
    got b'root:x'" loses both quotes."""
    if isinstance(exc, UnicodeDecodeError):
        return f"bytes that are not UTF-8 text at position {exc.start:,}"
    text = _QUOTED.sub("…", str(exc)).replace("\n", " ").replace("\r", " ")
    text = "".join(c if c.isprintable() else "?" for c in text).strip()
    text = text or type(exc).__name__
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _short(text: str, limit: int = 160) -> str:
    """An example as shown in a report: one line, at most `limit` characters."""
    text = text.replace("\r", " ").replace("\n", " ")
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _line_list(numbers: list[int], unit: str) -> str:
    """"lines 3, 9, 12 and 40 more" (at most 8 numbers)."""
    if not numbers:
        return ""
    shown = ", ".join(f"{n:,}" for n in numbers[:8])
    more = f" and {len(numbers) - 8:,} more" if len(numbers) > 8 else ""
    return f"{unit}{'s' if len(numbers) > 1 else ''} {shown}{more}"


# -- reading tables -----------------------------------------------------------------------------
DEFAULT_MAX_FIELD_MB = 10
ROW_FIELDS = 4          # a row (all its lines) may be as long as this many fields at the limit


def max_field_chars(limit_mb: float | None = None) -> int:
    """The longest CSV field read: `limit_mb`, else `$RECSYS_MAX_CSV_FIELD_MB`, else 10 MB
    (characters of a field; bytes of a line). A physical line or a row longer than
    ROW_FIELDS times it is reported without ever being held whole."""
    if limit_mb is None:
        env = os.environ.get("RECSYS_MAX_CSV_FIELD_MB", "").strip()
        try:
            limit_mb = float(env) if env else DEFAULT_MAX_FIELD_MB
        except ValueError:
            raise DataImportError(f"RECSYS_MAX_CSV_FIELD_MB must be a number of megabytes, got "
                                  f"{env!r}.") from None
    if not limit_mb > 0:
        raise DataImportError(f"The CSV field limit must be positive, got {limit_mb} MB.")
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


def _require(mapping: dict[str, str], fields: Iterable[str], frame: pd.DataFrame,
             label: str) -> None:
    missing = [f for f in fields if f not in mapping]
    if missing:
        raise DataImportError(
            f"{label} is missing required column(s): {', '.join(missing)}; "
            f"{describe_columns(frame.columns)}. Name them with options such as "
            "--column item_id=SKU.")


def _row_dropper(rep: "ImportReport", labels: np.ndarray, keep: np.ndarray
                 ) -> Callable[[str, np.ndarray, Callable[[int], str]], None]:
    """`drop(reason, mask, example)`: report the rows of `mask` still in `keep` under `reason`
    (`example(i)` describes row i) and clear them from `keep`, in place: every dropped row is
    reported once, with its line."""
    def drop(reason: str, mask: np.ndarray, example: Callable[[int], str]) -> None:
        mask = mask & keep
        positions = np.flatnonzero(mask)
        rep.add_rows(reason, labels[positions], lambda k: example(int(positions[k])))
        keep[mask] = False

    return drop


def content_hash(row: dict, image_digest: str) -> str:
    """Hash of everything an encoder reads for an item: its texts and its photo's bytes."""
    text = "\x1f".join(str(row.get(f) or "") for f in TEXT_FIELDS)
    return hashlib.sha1(f"{text}\x1e{image_digest}".encode()).hexdigest()


def _mask(values: pd.Series) -> np.ndarray:
    """A boolean Series (missing counts as True: "unknown" is not "fine") as a numpy mask."""
    return values.to_numpy(dtype=bool, na_value=True)


def _bad_ids(ids: pd.Series) -> pd.Series:
    """Ids no one would type: longer than MAX_ID_CHARS or with control characters (a line
    break inside an id usually means a stray quote joined several lines)."""
    odd = ids.str.len().gt(MAX_ID_CHARS) | ids.str.contains(r"[\x00-\x1f\x7f]", regex=True)
    return odd.fillna(False).astype(bool) & ids.notna()


# -- catalogs -----------------------------------------------------------------------------------
def import_catalog(store: Store, csv_path: str | Path, images_dir: str | Path | None = None,
                   fmt: Literal["generic", "myntra"] = "generic", dataset: str | None = None,
                   on_error: OnError = "skip", columns: dict[str, str] | None = None,
                   progress: ProgressCallback | None = None, kind: str = "catalog",
                   attribution: str | None = None) -> ImportReport:
    """Validate a catalog table and its photos, then upsert the items in one transaction.

    Photos must be inside `images_dir` (after following symlinks); rows naming a photo
    elsewhere, or any photo when there is no folder, are reported and left out. A file without
    a single valid row is refused: it creates no dataset and changes nothing.
    """
    csv_path = Path(csv_path)
    if fmt == "myntra":
        frame, bad_lines = read_table(csv_path)
        images_dir = Path(images_dir) if images_dir else myntra_images_dir(csv_path)
        mapping = resolve_columns(frame, ITEM_ALIASES, {
            "item_id": "id", "title": "productDisplayName", "gender": "gender",
            "master_category": "masterCategory", "sub_category": "subCategory",
            "article_type": "articleType", "base_colour": "baseColour", "season": "season",
            "usage": "usage", "year": "year"} if "productDisplayName" in frame.columns else None)
        dataset = dataset or "myntra"
        attribution = attribution or MYNTRA_ATTRIBUTION
    elif fmt == "generic":
        frame, bad_lines = read_table(csv_path)
        mapping = resolve_columns(frame, ITEM_ALIASES, columns)
        dataset = dataset or csv_path.stem
    else:
        raise DataImportError(f"Unknown catalog format {fmt!r}; use 'generic' or 'myntra'.")
    _require(mapping, REQUIRED_ITEM_FIELDS, frame, csv_path.name)
    if images_dir is not None and not Path(images_dir).is_dir():
        raise DataImportError(f"Image folder not found: {images_dir}")

    rep = ImportReport(dataset=dataset, kind="items", rows_read=len(frame) + len(bad_lines),
                       unit=frame.attrs.get("unit", "line"))
    for line, why in bad_lines:
        rep.add_problem("malformed CSV line", f"line {line}: {why}", lines=[line])

    items = pd.DataFrame({f: frame[c] for f, c in mapping.items()})
    items["item_id"] = items["item_id"].str.strip()
    rows = _validate_items(items, images_dir, fmt, rep, progress)
    if rep.problems and on_error == "refuse":
        return _refuse_rows(rep)
    if rows.empty:
        return rep.refuse("the file has no valid item rows" if rep.rows_read else
                          "the file has a header but no rows")

    with store.transaction() as cur:
        store.upsert_dataset(cur, dataset, kind, source=str(csv_path), attribution=attribution)
        existing = store.catalog_item_ids(cur, dataset)
        store.upsert_items(cur, dataset, rows)
    rep.imported = len(rows)
    new = len(set(rows["item_id"]) - existing)
    rep.details.update({"new items": new, "updated items": len(rows) - new})
    return rep


def myntra_images_dir(csv_path: str | Path) -> Path:
    """The photo folder of a Myntra `styles.csv` when none is given: `images/` beside it."""
    return Path(csv_path).parent / "images"


def _refuse_rows(rep: ImportReport) -> ImportReport:
    """Refused because rows have problems (on_error="refuse"): the report lists them."""
    rep.refused, rep.imported = True, 0
    return rep


def _validate_items(items: pd.DataFrame, images_dir: str | Path | None, fmt: str,
                    rep: ImportReport, progress: ProgressCallback | None) -> pd.DataFrame:
    """Drop problem rows (recording why and where) and attach image paths and content hashes."""
    paths, path_problems = _image_paths(items, images_dir)
    if fmt == "myntra":  # the catalog lists every product; only those with a photo are items
        has_photo = np.array([p is not None for p in paths])
        rep.details["catalog rows without a photo (not imported)"] = int((~has_photo).sum())
        rep.rows_read -= int((~has_photo).sum())
        items = items.loc[has_photo]
        paths = [p for p in paths if p is not None]
        path_problems = [None] * len(paths)
    labels = items.index.to_numpy()
    unit = rep.unit
    keep = np.ones(len(items), dtype=bool)
    drop = _row_dropper(rep, labels, keep)

    ids, titles = items["item_id"], items["title"]
    drop("missing item id", _mask(ids.isna() | (ids == "")), lambda i: f"{unit} {labels[i]}")
    drop("missing title", _mask(titles.isna() | (titles.str.strip() == "")),
         lambda i: f"id {ids.iloc[i]}")
    drop("item id is not a plain id", _mask(_bad_ids(ids)),
         lambda i: f"{unit} {labels[i]} (over {MAX_ID_CHARS} characters or control characters)")
    dupes = ids.duplicated(keep=False).to_numpy() & keep
    for item_id in pd.unique(ids[dupes]):
        where = np.flatnonzero(dupes & _mask(ids == item_id))
        rep.add_problem("duplicate item id", f"id {item_id} ({len(where)} rows)",
                        lines=labels[where], rows=len(where))
    keep &= ~dupes
    if "price" in items:
        price = pd.to_numeric(items["price"], errors="coerce")
        given = items["price"].notna().to_numpy()
        drop("price is not a number", given & price.isna().to_numpy(),
             lambda i: f"id {ids.iloc[i]}")
        value = price.to_numpy(dtype="float64", na_value=np.nan)
        with np.errstate(invalid="ignore"):
            bad_value = given & ~np.isnan(value) & (~np.isfinite(value) | (value < 0))
        drop("price is negative or infinite", bad_value, lambda i: f"id {ids.iloc[i]}")
        items = items.assign(price=value)
    if "year" in items:
        year = pd.to_numeric(items["year"], errors="coerce").to_numpy(dtype="float64",
                                                                       na_value=np.nan)
        with np.errstate(invalid="ignore"):
            odd = items["year"].notna().to_numpy() & ~((year >= 1) & (year <= 9999))
        if odd.any():
            rep.details["years not understood (left empty)"] = int((odd & keep).sum())
        year[odd] = np.nan
        items = items.assign(year=pd.array(np.round(year), dtype="Float64").astype("Int64"))

    reasons = {"outside": "image path outside the images folder",
               "not found": "image file not found",
               "no folder": "image path given but no images folder"}
    for code, reason in reasons.items():
        mask = np.array([p == code for p in path_problems], dtype=bool)
        if code == "not found":
            drop(reason, mask, lambda i: f"id {ids.iloc[i]}: {items['image_path'].iloc[i]}")
        else:   # never echo a path outside the folder: whether it exists stays unknown
            drop(reason, mask, lambda i: f"id {ids.iloc[i]}")
    candidates = [i for i in np.flatnonzero(keep) if paths[i] is not None]
    failures = _check_images([paths[i] for i in candidates], progress)
    broken = np.zeros(len(items), dtype=bool)
    why: dict[int, str] = {}
    for i, reason in zip(candidates, failures):
        if reason is not None:
            broken[i] = True
            why[i] = reason
    drop("unreadable image", broken, lambda i: f"id {ids.iloc[i]}: {why[i][:120]}")

    out = items.loc[keep].copy()
    kept_paths = [paths[i] for i in np.flatnonzero(keep)]
    out["image_path"] = pd.array(kept_paths, dtype="string")
    records = out.to_dict("records")
    out["content_hash"] = [content_hash(r, file_digest(p)) for r, p in zip(records, kept_paths)]
    for col in ("description", "gender", "master_category", "sub_category", "article_type",
                "base_colour", "season", "usage", "brand"):
        if col not in out:
            out[col] = None
    if "price" not in out:
        out["price"] = np.nan
    if "year" not in out:
        out["year"] = pd.array([pd.NA] * len(out), dtype="Int64")
    if "video" in out:
        out = _attach_videos(out, images_dir, rep)
    return out.reset_index(drop=True)


def _attach_videos(items: pd.DataFrame, images_dir: str | Path | None,
                   rep: ImportReport) -> pd.DataFrame:
    """A catalog's `video` column: each named video must lie in the media (images) folder,
    like a photo; it is kept in the item's `extra` as {"video": path} for `embed`. A video
    that is not found (or outside the folder) is counted, its item is kept without one."""
    names = items["video"]
    given = (names.notna() & (names.astype("string").str.strip() != "")).to_numpy(dtype=bool)
    sub = pd.DataFrame({"item_id": items["item_id"].to_numpy()[given],
                        "image_path": names.to_numpy()[given]})
    paths, _ = _image_paths(sub, images_dir)
    found = dict(zip(np.flatnonzero(given), paths))
    extras = items["extra"].tolist() if "extra" in items else [None] * len(items)
    merged = []
    for i, extra in enumerate(extras):
        data = {}
        if isinstance(extra, str) and extra.strip():
            try:
                data = json.loads(extra)
            except ValueError:
                data = {"extra": extra}
        if found.get(i):
            data["video"] = found[i]
        merged.append(json.dumps(data) if data else None)
    rep.details["videos"] = sum(1 for p in found.values() if p)
    missing = sum(1 for p in found.values() if not p)
    if missing:
        rep.details["videos not found in the folder (items kept without one)"] = missing
    return items.drop(columns=["video"]).assign(extra=merged)


def _image_paths(items: pd.DataFrame, images_dir: str | Path | None
                 ) -> tuple[list[str | None], list[str | None]]:
    """Per row: the photo's real path (None without one) and a problem code or None.

    Every path must resolve, symlinks followed, inside `images_dir`: "outside" otherwise (never
    checked for existence), "not found" when it is inside but no file, "no folder" when a row
    names a photo and no folder was given. A row that names no photo gets `<item_id>.jpg`
    (.jpeg, .png, .webp) from the folder if there is one.
    """
    names = items["image_path"] if "image_path" in items else None
    paths: list[str | None] = []
    problems: list[str | None] = []
    if images_dir is None:
        for i in range(len(items)):
            given = names is not None and pd.notna(names.iloc[i]) and str(names.iloc[i]).strip()
            paths.append(None)
            problems.append("no folder" if given else None)
        return paths, problems
    base = os.path.realpath(images_dir)
    try:
        listing = {e.name: e for e in os.scandir(base)}
    except OSError as exc:
        raise DataImportError(f"Cannot read the image folder {images_dir}: "
                              f"{exc.strerror or exc}.") from None

    def find(name: str) -> tuple[str | None, str | None]:
        if "/" not in name and "\\" not in name and name not in (".", ".."):
            entry = listing.get(name)          # the common case: a file right in the folder
            if entry is None:
                return None, "not found"
            try:
                if entry.is_file(follow_symlinks=False):
                    return os.path.join(base, name), None
                if not entry.is_symlink():
                    return None, "not found"
            except OSError:
                return None, "not found"
        try:
            real = os.path.realpath(os.path.join(base, name))
        except (OSError, ValueError):
            return None, "outside"
        if not real.startswith(base.rstrip(os.sep) + os.sep):
            return None, "outside"
        return (real, None) if os.path.isfile(real) else (None, "not found")

    for i, item_id in enumerate(items["item_id"]):
        name = str(names.iloc[i]).strip() if names is not None and pd.notna(names.iloc[i]) \
            else ""
        if "\x00" in name:
            paths.append(None)
            problems.append("outside")
            continue
        if name:
            path, problem = find(name)
            paths.append(path)
            problems.append(problem)
            continue
        found = None
        if pd.notna(item_id) and str(item_id) and "\x00" not in str(item_id):
            for ext in (".jpg", ".jpeg", ".png", ".webp"):
                found, _ = find(f"{item_id}{ext}")
                if found:
                    break
        paths.append(found)
        problems.append(None)
    return paths, problems


def _check_images(paths: list[str], progress: ProgressCallback | None) -> list[str | None]:
    """Decode every photo (in threads: PIL releases the GIL) and return failure reasons."""
    results: list[str | None] = [None] * len(paths)
    total = len(paths)
    if not total:
        return results
    with ThreadPoolExecutor(max_workers=4) as pool:
        for i, reason in enumerate(pool.map(check_image, paths)):
            results[i] = reason
            if i % 200 == 0 or i == total - 1:
                report(progress, i + 1, total, f"checked {i + 1:,}/{total:,} photos",
                       stage="images")
    return results


# -- interactions -------------------------------------------------------------------------------
def import_interactions(store: Store, path: str | Path,
                        fmt: Literal["mmrec", "json", "csv"] = "csv", dataset: str | None = None,
                        on_error: OnError = "skip", columns: dict[str, str] | None = None,
                        append: bool = False, progress: ProgressCallback | None = None,
                        replace: bool = False) -> ImportReport:
    """Import an interaction log; creates bare items/users when the dataset has no catalog.

    By default the file's rows replace the dataset's interactions, but only when that does not
    shrink them: an import that would remove more interactions than it adds is refused
    (`report.refused`, with `report.reason`) unless `replace=True` says so explicitly, and one
    with no valid row at all is always refused. `append=True` adds to the existing ones instead.
    A refused import changes nothing.
    """
    if append and replace:
        raise DataImportError("Choose either append (add to the existing interactions) or "
                              "replace (remove them first), not both.")
    path = Path(path)
    if not path.exists():
        raise DataImportError(f"Not found: {path}")
    if fmt == "mmrec":
        frame, rep, names = _read_mmrec(path, dataset)
    elif fmt == "json":
        frame, rep, names = _read_split_json(path, dataset)
    elif fmt == "csv":
        frame, rep, names = _read_interaction_csv(path, dataset, columns)
    else:
        raise DataImportError(f"Unknown interaction format {fmt!r}; use mmrec, json or csv.")
    report(progress, 1, 3, "validated", stage="interactions")

    dataset = rep.dataset
    exists = dataset in store.dataset_names()
    catalog_ids = set(store.item_ids(dataset)) if exists else set()
    has_catalog = bool(catalog_ids) and store.dataset_kind(dataset) != "interactions"
    if has_catalog:
        unknown = ~frame["item_id"].isin(catalog_ids).to_numpy(dtype=bool, na_value=False)
        positions = np.flatnonzero(unknown)
        rep.add_rows("item not in the catalog", frame.index[positions],
                     lambda k: f"item {frame['item_id'].iloc[positions[k]]}")
        frame = frame.loc[~unknown]
    if rep.problems and on_error == "refuse":
        return _refuse_rows(rep)
    if frame.empty:
        return rep.refuse("the file has no valid interaction rows" if rep.rows_read else
                          "the file has a header but no rows")
    before = store.interaction_count(dataset) if exists else 0
    if not append and not replace and len(frame) < before:
        return rep.refuse(
            f"replacing the dataset's {before:,} interactions with these {len(frame):,} would "
            "remove more than it adds. Re-run with --replace to replace them anyway, or with "
            "--append to add these to them.")

    frame = frame.reset_index(drop=True)
    frame.insert(0, "dataset", dataset)
    users = pd.DataFrame({"dataset": dataset, "user_id": frame["user_id"].unique()})
    user_names, item_names = names.get("users", {}), names.get("items", {})
    users["name"] = [user_names.get(u, f"User {u}") for u in users["user_id"]]
    items = pd.DataFrame({"dataset": dataset, "item_id": frame["item_id"].unique()})
    items["title"] = [item_names.get(i, f"Item {i}") for i in items["item_id"]]
    with store.transaction() as cur:
        if not has_catalog:
            store.upsert_dataset(cur, dataset, "interactions", source=str(path),
                                 attribution=AMAZON_ATTRIBUTION if fmt != "csv" else None)
        else:
            store.set_active_dataset(dataset, cur)
        store.write_interactions(cur, dataset, users, None if has_catalog else items, frame,
                                 replace=not append)
    report(progress, 3, 3, "written", stage="interactions")
    rep.imported = len(frame)
    rep.details.update({"users": int(users.shape[0]), "items": int(items.shape[0])})
    if not append and before:
        rep.details["interactions replaced"] = before
    splits = frame["split"].value_counts(dropna=False)
    for split, count in splits.items():
        rep.details[f"split {split if pd.notna(split) else '(none)'}"] = int(count)
    return rep


def interaction_files(path: str | Path, fmt: str) -> list[Path]:
    """The files an interaction import of `path` in format `fmt` reads (those that exist or
    not): the file itself, the first `.inter` file of a folder (mmrec), or the split and
    mapping JSON files of the folder (json). The use cases check each against the app's
    allowed folders before importing."""
    path = Path(path)
    if fmt == "mmrec" and path.is_dir():
        return [_mmrec_file(path)]
    if fmt == "json":
        folder = path if path.is_dir() else path.parent
        return [*_split_json_files(folder).values(), folder / "item2id.json",
                folder / "user2id.json"]
    return [path]


def _mmrec_file(folder: Path) -> Path:
    files = sorted(folder.glob("*.inter"))
    if not files:
        raise DataImportError(f"No .inter file in {folder}.")
    return files[0]


def _split_json_files(folder: Path) -> dict[str, Path]:
    return {"train": folder / "train.json", "valid": folder / "val.json",
            "test": folder / "test.json"}


def _read_mmrec(path: Path, dataset: str | None) -> tuple[pd.DataFrame, ImportReport, dict]:
    """MMRec `.inter` (tab-separated userID, itemID, x_label[, rating, timestamp])."""
    if path.is_dir():
        path = _mmrec_file(path)
    return _read_interaction_table(path, dataset, None, sep="\t")


def _load_json(file: Path) -> object:
    """Parse a JSON file; clear errors for invalid, non-UTF-8 or absurdly nested content."""
    try:
        return json.loads(file.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataImportError(f"{file.name} is not valid JSON: {safe_reason(exc)}") from None
    except RecursionError:
        raise DataImportError(f"{file.name} is nested too deeply to be a split file (it should "
                              "map user ids to lists of item ids).") from None


def _read_split_json(path: Path, dataset: str | None) -> tuple[pd.DataFrame, ImportReport, dict]:
    """A folder with train.json / val.json / test.json mapping user index -> item indices."""
    folder = path if path.is_dir() else path.parent
    files = _split_json_files(folder)
    if not files["train"].is_file():
        raise DataImportError(f"{folder} has no train.json (expected train/val/test.json).")
    rep = ImportReport(dataset=dataset or folder.name, kind="interactions", unit="entry")
    parts = []
    entry = 0
    for split, file in files.items():
        if not file.is_file():
            continue
        data = _load_json(file)
        if not isinstance(data, dict):
            raise DataImportError(f"{file.name} must map user ids to lists of item ids.")
        users, items, labels = [], [], []
        for user, its in data.items():
            if not isinstance(its, list):
                entry += 1
                rep.rows_read += 1
                rep.add_problem("user entry is not a list", f"{file.name}: user {user}",
                                lines=[entry])
                continue
            for item in its:
                entry += 1
                rep.rows_read += 1
                if isinstance(item, bool) or not isinstance(item, (str, int)):
                    rep.add_problem("item is not an id (a number or a string)",
                                    f"{file.name}: user {user}", lines=[entry])
                    continue
                users.append(str(user))
                items.append(str(item))
                labels.append(entry)
        parts.append(pd.DataFrame({"user_id": pd.array(users, dtype="string"),
                                   "item_id": pd.array(items, dtype="string"), "split": split},
                                  index=pd.Index(labels, dtype="int64")))
    frame = pd.concat(parts)
    names = {"items": _invert_mapping(folder / "item2id.json"),
             "users": _invert_mapping(folder / "user2id.json")}
    frame["event"] = "interaction"
    frame["ts"] = pd.NaT
    frame["weight"] = 1.0
    frame = _drop_bad_id_rows(frame, rep)
    return _drop_duplicate_interactions(frame, rep), rep, names


def _invert_mapping(path: Path) -> dict[str, str]:
    """item2id.json maps ASIN -> index; return index -> ASIN for readable titles."""
    if not path.is_file():
        return {}
    try:
        return {str(v): str(k) for k, v in json.loads(path.read_bytes()).items()}
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, RecursionError,
            TypeError):
        return {}


def _read_interaction_csv(path: Path, dataset: str | None,
                          columns: dict[str, str] | None) -> tuple[pd.DataFrame, ImportReport, dict]:
    return _read_interaction_table(path, dataset, columns)


def _read_interaction_table(path: Path, dataset: str | None, columns: dict[str, str] | None,
                            sep: str | None = None
                            ) -> tuple[pd.DataFrame, ImportReport, dict]:
    """A delimited interaction log: map its columns, report malformed lines, normalise."""
    frame, bad = read_table(path, sep=sep)
    mapping = resolve_columns(frame, INTERACTION_ALIASES, columns)
    _require(mapping, ("user_id", "item_id"), frame, path.name)
    rep = ImportReport(dataset=dataset or path.stem, kind="interactions",
                       rows_read=len(frame) + len(bad), unit=frame.attrs.get("unit", "line"))
    for line, why in bad:
        rep.add_problem("malformed line", f"line {line}: {why}", lines=[line])
    return _normalise_interactions(frame, mapping, rep, default_event="interaction"), rep, {}


def _normalise_interactions(frame: pd.DataFrame, mapping: dict[str, str], rep: ImportReport,
                            default_event: str) -> pd.DataFrame:
    """Canonical columns, parsed timestamps (UTC), known splits; bad rows recorded and dropped."""
    out = pd.DataFrame({f: frame[c].str.strip() for f, c in mapping.items()})
    labels = out.index.to_numpy()
    unit = rep.unit
    keep = np.ones(len(out), dtype=bool)
    drop = _row_dropper(rep, labels, keep)

    drop("missing user or item", _mask(out["user_id"].isna() | out["item_id"].isna() |
                                       (out["user_id"] == "") | (out["item_id"] == "")),
         lambda i: f"{unit} {labels[i]}")
    drop("user or item id is not a plain id", _mask(_bad_ids(out["user_id"]) |
                                                    _bad_ids(out["item_id"])),
         lambda i: f"{unit} {labels[i]} (over {MAX_ID_CHARS} characters or control characters)")
    out["event"] = out["event"].str.lower().fillna(default_event) if "event" in out \
        else default_event
    weight_given = np.zeros(len(out), dtype=bool)
    if "ts" in out:
        raw = out["ts"]
        ts = _parse_timestamps(raw)
        drop("unreadable timestamp", raw.notna().to_numpy() & ts.isna().to_numpy(),
             lambda i: f"{unit} {labels[i]}: {str(raw.iloc[i])[:40]}")
        out["ts"] = ts
    else:
        out["ts"] = pd.NaT
    if "weight" in out:
        raw = out["weight"]
        weight = pd.to_numeric(raw, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        given = raw.notna().to_numpy()
        weight_given = given
        drop("weight is not a number", given & np.isnan(weight),
             lambda i: f"{unit} {labels[i]}: {str(raw.iloc[i])[:40]}")
        with np.errstate(invalid="ignore"):
            drop("weight is negative or infinite",
                 given & ~np.isnan(weight) & (~np.isfinite(weight) | (weight < 0)),
                 lambda i: f"{unit} {labels[i]}: {str(raw.iloc[i])[:40]}")
        out["weight"] = weight
    else:
        out["weight"] = np.nan
    by_event = out["event"].map(EVENT_WEIGHTS).to_numpy(dtype="float64", na_value=np.nan)
    out["weight"] = out["weight"].fillna(pd.Series(by_event, index=out.index)).fillna(1.0)
    if "split" in out:
        split = out["split"].map(lambda s: SPLIT_NAMES.get(str(s).lower()) if pd.notna(s) else None)
        drop("unknown split label", out["split"].notna().to_numpy() & split.isna().to_numpy(),
             lambda i: f"{unit} {labels[i]}: {str(out['split'].iloc[i])[:40]}")
        out["split"] = split
    else:
        out["split"] = None
    if "rating" in out:
        raw = out["rating"]
        rating = pd.to_numeric(raw, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        with np.errstate(invalid="ignore"):
            drop("rating is not a finite number",
                 raw.notna().to_numpy() & ~np.isfinite(rating),
                 lambda i: f"{unit} {labels[i]}: {str(raw.iloc[i])[:40]}")
        out["rating"] = rating
    else:
        out["rating"] = np.nan
    _note_unknown_events(out["event"], keep, weight_given, rep)
    return out.loc[keep, ["user_id", "item_id", "event", "ts", "weight", "split", "rating"]]


def _note_unknown_events(events: pd.Series, keep: np.ndarray, weight_given: np.ndarray,
                         rep: ImportReport) -> None:
    """Rows whose event is not one of EVENT_WEIGHTS are imported as they are (weight 1 unless
    the file gives one), and said so: a count in the details and a note naming a few."""
    known = events.isin(list(EVENT_WEIGHTS)).to_numpy(dtype=bool, na_value=False)
    odd = keep & ~known
    if not odd.any():
        return
    counts = events[odd].value_counts()
    shown = ", ".join(f"{_short(''.join(c if c.isprintable() else '?' for c in str(name)), 30)!r}"
                      f" x{int(n):,}" for name, n in counts.head(3).items())
    more = f" and {len(counts) - 3:,} other names" if len(counts) > 3 else ""
    weighted_one = int((odd & ~weight_given).sum())
    rep.details["rows with an unknown event (imported)"] = int(odd.sum())
    rep.notes.append(
        f"{int(odd.sum()):,} rows have an event the importer does not know ({shown}{more}); "
        f"they were imported as they are, {weighted_one:,} of them with weight 1 (no weight "
        f"given). Known events: {', '.join(EVENT_WEIGHTS)}; rename yours to these, or give a "
        "weight column.")


def _parse_timestamps(raw: pd.Series) -> pd.Series:
    """Epoch seconds or date strings as naive UTC times (offsets converted, NaT if unreadable)."""
    numeric = pd.to_numeric(raw, errors="coerce")
    if raw.notna().any() and numeric.notna().sum() >= raw.notna().sum() * 0.9:
        seconds = numeric.to_numpy(dtype="float64", na_value=np.nan)
        with np.errstate(invalid="ignore"):
            seconds[~(np.abs(seconds) <= MAX_EPOCH_SECONDS)] = np.nan   # also NaN, inf
        return pd.Series(pd.to_datetime(seconds, unit="s", errors="coerce"), index=raw.index)
    try:
        ts = pd.to_datetime(raw, errors="coerce", format="mixed", utc=True)
    except (ValueError, TypeError, OverflowError):
        ts = raw.map(_parse_one_timestamp).astype("datetime64[ns, UTC]")
    return ts.dt.tz_convert(None)


def _parse_one_timestamp(value: object) -> pd.Timestamp:
    try:
        return pd.to_datetime(value, utc=True)
    except (ValueError, TypeError, OverflowError):
        return pd.NaT


def _drop_bad_id_rows(frame: pd.DataFrame, rep: ImportReport) -> pd.DataFrame:
    bad = _mask(_bad_ids(frame["user_id"]) | _bad_ids(frame["item_id"]))
    positions = np.flatnonzero(bad)
    rep.add_rows("user or item id is not a plain id", frame.index[positions],
                 lambda k: f"user {str(frame['user_id'].iloc[positions[k]])[:40]}")
    return frame.loc[~bad]


def _drop_duplicate_interactions(frame: pd.DataFrame, rep: ImportReport) -> pd.DataFrame:
    dup = frame.duplicated(["user_id", "item_id", "split"]).to_numpy()
    positions = np.flatnonzero(dup)
    rep.add_rows("duplicate interaction", frame.index[positions],
                 lambda k: f"user {frame['user_id'].iloc[positions[k]]} item "
                           f"{frame['item_id'].iloc[positions[k]]}")
    return frame.loc[~dup]


# -- uploads (the app's Data page) ---------------------------------------------------------------
DEFAULT_MAX_UNPACKED_MB = 500
MAX_ARCHIVE_FILES = 100_000
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")
_DATASET_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")


def max_unpacked_bytes(limit_mb: float | None = None) -> int:
    """The cap on what one zip may unpack to: `limit_mb`, else `$RECSYS_MAX_UNPACKED_MB`, else
    500 MB."""
    if limit_mb is None:
        env = os.environ.get("RECSYS_MAX_UNPACKED_MB", "").strip()
        try:
            limit_mb = float(env) if env else DEFAULT_MAX_UNPACKED_MB
        except ValueError:
            raise DataImportError(f"RECSYS_MAX_UNPACKED_MB must be a number of megabytes, got "
                                  f"{env!r}.") from None
    if not limit_mb > 0:
        raise DataImportError(f"The unpacked-size limit must be positive, got {limit_mb} MB.")
    return int(limit_mb * 2**20)


def uploads_root(store: Store) -> Path:
    """`<data dir>/uploads`: everything uploaded through the app lives under it."""
    return config.data_dir(store.path) / "uploads"


def upload_dir(store: Store, dataset: str) -> Path:
    """Where the app keeps a dataset's uploaded files: `<data dir>/uploads/<dataset>/`."""
    if not isinstance(dataset, str) or not _DATASET_NAME.fullmatch(dataset):
        raise DataImportError("A dataset name uses letters, digits, '-', '_' or '.' (at most "
                              f"64 characters, not starting with '.'); got {dataset!r}.")
    root = uploads_root(store).resolve()
    path = root / dataset
    if path.resolve().parent != root:        # belt and braces: never a folder outside uploads
        raise DataImportError(f"The dataset name {dataset!r} cannot be used as a folder name.")
    path.mkdir(parents=True, exist_ok=True)
    return path


def new_upload_dir(store: Store, dataset: str) -> Path:
    """A fresh folder for one upload, `<data dir>/uploads/<dataset>/<time>-<random>/`, so that
    discarding it never touches the photos of an earlier upload that items still show."""
    parent = upload_dir(store, dataset)
    return Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=parent))


def discard_upload(store: Store, folder: str | Path) -> int:
    """Delete an upload's folder (it must be inside the uploads folder); returns bytes freed."""
    root = uploads_root(store).resolve()
    folder = Path(folder)
    real = folder.resolve()
    if real == root or root not in real.parents:
        raise DataImportError(f"{folder} is not an upload folder; nothing was deleted.")
    if not real.exists():
        return 0
    freed = sum(f.stat().st_size for f in real.rglob("*") if f.is_file() and not f.is_symlink())
    shutil.rmtree(real, ignore_errors=True)
    return freed


def save_upload(data: bytes, folder: Path, filename: str) -> Path:
    """Write an uploaded file under `folder` (its base name only), atomically."""
    name = Path(str(filename).replace("\\", "/")).name
    if not name or name.startswith(".") or "\x00" in name:
        name = "upload" + "".join(c for c in Path(name.lstrip(".")).suffix if c.isalnum()
                                  or c == ".")
    target = folder / name
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return target


def extract_images(archive: str | Path | IO[bytes], dest: Path,
                   max_unpacked_mb: float | None = None,
                   in_folders: list[str] | None = None) -> int:
    """Unpack the photos of a zip archive into `dest`; returns how many were written.

    Only image files are taken. A photo whose file name is unique in the archive is unpacked
    flat, by its base name (no paths, so no "zip slip"). Photos that share a file name
    (`a/x.png`, `b/x.png`) are all kept, each under its folders in the archive (cleaned: no
    `..`, no absolute or hidden parts), so a catalog names them `a/x.png` and `b/x.png`; their
    archive names are appended to `in_folders` when given (a catalog naming just `x.png` finds
    no photo, and the importer reports that row). The archive is refused, leaving nothing
    behind, when it is not a readable zip, has an encrypted or corrupt photo, holds more than
    MAX_ARCHIVE_FILES files or unpacks to more than `max_unpacked_mb` (default
    `max_unpacked_bytes()`: 500 MB). Sizes are counted while unpacking, not taken from the
    zip's headers, which can lie.
    """
    limit = max_unpacked_bytes(max_unpacked_mb)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DataImportError(f"The images archive is not a readable zip file "
                              f"({safe_reason(exc)}).") from None
    with zf:
        try:
            entries = zf.infolist()
        except (zipfile.BadZipFile, ValueError) as exc:
            raise DataImportError(f"The images archive is damaged ({safe_reason(exc)}).") \
                from None
        members = [m for m in entries if not m.is_dir() and _archive_name(m.filename)]
        if len(entries) > MAX_ARCHIVE_FILES:
            raise DataImportError(f"The images archive holds {len(entries):,} files; at most "
                                  f"{MAX_ARCHIVE_FILES:,} are accepted.")
        if not members:
            raise DataImportError("The zip archive contains no image files (.jpg, .png, ...).")
        if sum(m.file_size for m in members) > limit:
            raise DataImportError(_too_big(limit))
        encrypted = [m for m in members if m.flag_bits & 0x1]
        if encrypted:
            raise DataImportError(f"The images archive is password-protected ({len(encrypted):,} "
                                  "encrypted photos); zip the photos again without a password.")
        targets = _archive_targets(members)
        created = not dest.exists()
        dest.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=dest))
        try:
            written = _unpack(zf, targets, staging, limit)
            for name in written:
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / name, dest / name)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            if created:
                shutil.rmtree(dest, ignore_errors=True)
            raise
        shutil.rmtree(staging, ignore_errors=True)
    if in_folders is not None:
        in_folders.extend(m.filename for m, target in targets if "/" in target)
    return len(written)


def _archive_name(filename: str) -> str | None:
    """The base name a zip entry is unpacked to, or None when it is not a photo to take."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    if not name or name.startswith(".") or "\x00" in name or \
            Path(name).suffix.lower() not in IMAGE_SUFFIXES:
        return None
    return name


def _archive_folders(filename: str) -> list[str]:
    """The folders of a zip entry, cleaned: no empty, `.`, `..` or hidden parts, nothing
    absolute, each at most 100 characters."""
    parts = filename.replace("\\", "/").split("/")[:-1]
    return [p[:100] for p in parts if p and not p.startswith(".") and "\x00" not in p
            and ":" not in p][:16]


def _archive_targets(members: list[zipfile.ZipInfo]) -> list[tuple[zipfile.ZipInfo, str]]:
    """Where each photo goes, relative to the images folder: its base name when no other
    photo of the archive has it; otherwise its cleaned folders and name (`a/x.png`), numbered
    (`a/x-2.png`) if even that is taken (the same entry twice, folders that cleaned alike)."""
    names = [_archive_name(m.filename) for m in members]
    counts: dict[str, int] = {}
    for name in names:
        counts[name.lower()] = counts.get(name.lower(), 0) + 1     # case-insensitive disks
    used: set[str] = set()
    out = []
    for m, name in zip(members, names):
        target = name if counts[name.lower()] == 1 else \
            "/".join([*_archive_folders(m.filename), name])
        if target.lower() in used:
            stem, suffix = os.path.splitext(target)
            k = 2
            while f"{stem}-{k}{suffix}".lower() in used:
                k += 1
            target = f"{stem}-{k}{suffix}"
        used.add(target.lower())
        out.append((m, target))
    return out


def _too_big(limit: int) -> str:
    return (f"The images archive unpacks to more than {limit / 2**20:,.0f} MB, the limit (set "
            "RECSYS_MAX_UNPACKED_MB to change it, or import from a folder path instead).")


def _unpack(zf: zipfile.ZipFile, targets: list[tuple[zipfile.ZipInfo, str]], staging: Path,
            limit: int) -> list[str]:
    """Copy members into `staging` at their targets, counting real bytes; DataImportError on
    any failure."""
    total = 0
    written: dict[str, None] = {}
    for m, name in targets:
        try:
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            with zf.open(m) as src, open(staging / name, "wb") as out:
                while True:
                    chunk = src.read(1 << 20)
                    if not chunk:
                        break
                    total += len(chunk)
                    if total > limit:
                        raise DataImportError(_too_big(limit))
                    out.write(chunk)
        except DataImportError:
            raise
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                raise DataImportError("The disk is full: the photos could not be unpacked "
                                      "(nothing was kept).") from None
            raise DataImportError(f"The photo {name} in the archive could not be unpacked "
                                  f"({exc.strerror or type(exc).__name__}); nothing was "
                                  "unpacked.") from None
        except (zipfile.BadZipFile, RuntimeError, NotImplementedError, EOFError, ValueError,
                zlib.error, lzma.LZMAError, struct.error) as exc:
            raise DataImportError(f"The photo {name} in the archive is damaged or uses an "
                                  f"unsupported format ({safe_reason(exc)}); nothing was "
                                  "unpacked.") from None
        written[name] = None
    return list(written)


def import_catalog_upload(store: Store, dataset: str, table: bytes, table_name: str,
                          images_zip: bytes | IO[bytes] | None = None,
                          max_unpacked_mb: float | None = None, **options) -> ImportReport:
    """Import an uploaded catalog table (and zip of photos) into a fresh upload folder.

    The folder is deleted when the import fails or is refused; after a successful import only
    the photos that imported items use are kept (the table copy and unused files are removed).
    `options` are those of `import_catalog` (fmt, on_error, columns, progress...).
    """
    folder = new_upload_dir(store, dataset)
    try:
        table_path = save_upload(table, folder, table_name)
        images = None
        if images_zip is not None:
            data = io.BytesIO(images_zip) if isinstance(images_zip, (bytes, bytearray)) \
                else images_zip
            images = folder / "images"
            in_folders: list[str] = []
            unpacked = extract_images(data, images, max_unpacked_mb=max_unpacked_mb,
                                      in_folders=in_folders)
        rep = import_catalog(store, table_path, images, dataset=dataset, **options)
    except BaseException:
        discard_upload(store, folder)
        raise
    if rep.refused:
        discard_upload(store, folder)
        return rep
    if images_zip is not None:
        rep.details["photos unpacked"] = unpacked
        if in_folders:
            rep.details["photos sharing a file name (kept under their zip folders)"] = \
                len(in_folders)
            rep.notes.append(
                f"{len(in_folders):,} photos in the zip share a file name with another (e.g. "
                f"{', '.join(_short(n, 60) for n in in_folders[:3])}): each was kept under its "
                "folder, so the image column must name it with the folder, as in the zip; rows "
                "naming just the file are reported as 'image file not found'.")
    keep = {os.path.realpath(p) for p in store.items(dataset)["image_path"].dropna()}
    for file in sorted(folder.rglob("*"), reverse=True):
        if file.is_file() and os.path.realpath(file) not in keep:
            file.unlink()
        elif file.is_dir() and not any(file.iterdir()):
            file.rmdir()
    if not any(folder.iterdir()):
        folder.rmdir()
    return rep


def import_interactions_upload(store: Store, dataset: str, data: bytes, filename: str,
                               **options) -> ImportReport:
    """Import an uploaded interaction file; its copy is deleted afterwards, whatever happens.
    `options` are those of `import_interactions` (fmt, on_error, append, replace...)."""
    folder = new_upload_dir(store, dataset)
    try:
        path = save_upload(data, folder, filename)
        return import_interactions(store, path, dataset=dataset, **options)
    finally:
        discard_upload(store, folder)
