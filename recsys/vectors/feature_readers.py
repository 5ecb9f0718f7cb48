"""Reading a feature file, one format at a time, within limits checked before anything is
allocated: the per-format readers of `recsys.vectors.features`.

* `npy_reader`: a `.npy` matrix, memory-mapped (shape and dtype from its header), with each
  row's item id from an id mapping: MMRec's `i_id_mapping.csv` (an original id and an
  `itemID` = row number), a one-column file of ids in row order, or none (row r is item "r");
* `table_reader`: a Parquet table (row count, list sizes and column types from its footer, read
  per batch of rows) or a CSV / TSV table (read in blocks of `CSV_BLOCK_BYTES`), with an id
  column and a vector column (a list, or a string of numbers such as "[0.1, 0.2]"), or one
  numeric column per dimension.

Each reader is a callable yielding `Chunk`s of at most `CHUNK_ROWS` rows and about
`BATCH_BYTES` of numbers. Limits: at most `MAX_DIM` dimensions, at most `max_rows(catalog)`
rows (`ROWS_PER_ITEM` per item of the dataset plus `ROWS_SLACK`), an id mapping whose row
numbers fall inside the matrix, a CSV line or a vector text of at most `CSV_BLOCK_BYTES` /
`MAX_VECTOR_CHARS`. Input that cannot be read raises `DataImportError`, quoting none of it.
"""

from __future__ import annotations

import csv
import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd

from recsys.data.readers import resolve_columns
from recsys.data.report import DataImportError, describe_columns, safe_reason

CHUNK_ROWS = 4096                 # rows per batch, at most
BATCH_BYTES = 16 * 2**20          # numbers per batch, at most (as float64; pyarrow holds ~4x that)
MAX_DIM = 65_536
ROWS_PER_ITEM = 4                 # a file may have up to 4 rows per item of the dataset...
ROWS_SLACK = 100_000              # ... plus this many
CSV_BLOCK_BYTES = 8 * 2**20       # a CSV is parsed in blocks of this size; a longer line is refused
MAX_VECTOR_CHARS = MAX_DIM * 32   # a vector written as text is at most this long
MAPPING_BYTES_PER_ROW = 1024      # an id mapping may have up to 1 KB per row of the matrix
MMREC_MAPPING = "i_id_mapping.csv"
ID_ALIASES = {"item_id": ("item_id", "id", "itemid", "item", "asin", "product_id", "sku"),
              "vector": ("vector", "embedding", "features", "feature", "feat", "emb")}
_NUMBERS = re.compile(r"[\s,;]+")


@dataclass
class Chunk:
    """Rows of a feature file: their labels (line or row numbers, for reports), their item ids
    (None when the row has no id), and their vectors (a matrix, or a list of arrays of varying
    length, None for a row without a vector)."""

    labels: np.ndarray
    ids: list[str | None]
    vectors: np.ndarray | list[np.ndarray | None]
    malformed: list[int] = dataclasses.field(default_factory=list)   # lines with other fields


TOO_LONG = np.empty(0)
"""The vector of a row whose text is longer than `MAX_VECTOR_CHARS` (reported, never parsed)."""


def max_rows(catalog_size: int) -> int:
    """The most rows a feature file of a dataset of `catalog_size` items may have."""
    return ROWS_PER_ITEM * int(catalog_size) + ROWS_SLACK


def _batch_rows(values_per_row: float) -> int:
    """Rows per batch so that a batch holds about `BATCH_BYTES` of float64 numbers."""
    return int(max(1, min(CHUNK_ROWS, BATCH_BYTES // max(8.0, 8.0 * values_per_row))))


def _too_many_rows(label: str, rows: int, catalog_size: int) -> DataImportError:
    return DataImportError(
        f"{label} has {rows:,} rows for a dataset of {catalog_size:,} items; at most "
        f"{max_rows(catalog_size):,} are read ({ROWS_PER_ITEM} per item + {ROWS_SLACK:,}). "
        "Keep the rows of this dataset's items.")


def _too_many_dims(label: str, dims: float) -> DataImportError:
    return DataImportError(f"{label} has vectors of {dims:,.0f} dimensions; at most "
                           f"{MAX_DIM:,} are accepted.")



# -- .npy with an id mapping --------------------------------------------------------------------
def npy_reader(path: Path, ids: str | Path | None, catalog: set[str]
                ) -> tuple[Callable[[], Iterator[Chunk]], Path | None]:
    """Chunks of a memory-mapped .npy matrix with each row's item id from the mapping."""
    try:
        mat = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        why = "it is not a .npy file" if "pickled" in str(exc) else safe_reason(exc)
        raise DataImportError(f"{path.name} is not a readable .npy matrix ({why}).") from None
    if mat.ndim != 2 or mat.shape[1] < 1:
        raise DataImportError(f"{path.name} holds an array of shape {mat.shape}; item features "
                              "are a 2-D matrix with one row per item.")
    if not (np.issubdtype(mat.dtype, np.floating) or np.issubdtype(mat.dtype, np.integer)):
        raise DataImportError(f"{path.name} holds {mat.dtype} values, not numbers.")
    n, dim = mat.shape                    # from the header: checked before anything is read
    if dim > MAX_DIM:
        raise _too_many_dims(path.name, dim)
    if n > max_rows(len(catalog)):
        raise _too_many_rows(path.name, n, len(catalog))
    mapping = Path(ids) if ids is not None else path.parent / MMREC_MAPPING
    if ids is not None and not mapping.is_file():
        raise DataImportError(f"Id mapping not found: {mapping}")
    if mapping.is_file():
        row_ids = _row_ids(mapping, catalog, n, path.name)
    else:
        mapping = None
        row_ids = [str(r) for r in range(n)]     # MMRec: row r is itemID r
    if len(row_ids) < n:
        row_ids = row_ids + [None] * (n - len(row_ids))
    step = _batch_rows(dim)

    def reader() -> Iterator[Chunk]:
        for start in range(0, n, step):
            stop = min(n, start + step)
            yield Chunk(np.arange(start, stop), row_ids[start:stop],
                        np.asarray(mat[start:stop], dtype=np.float32))

    reader.rows = n                      # type: ignore[attr-defined]
    return reader, mapping


def _row_ids(mapping: Path, catalog: set[str], n: int, matrix: str) -> list[str | None]:
    """Each of the `n` .npy rows' item id from a mapping file: MMRec's `i_id_mapping.csv` (an
    original id and an `itemID` = row number < `n`; the one of the two the dataset uses is
    taken), or a list of ids in row order (one column, no header)."""
    limit = (n + 1) * MAPPING_BYTES_PER_ROW + 2**20
    size = mapping.stat().st_size
    if size > limit:
        raise DataImportError(f"{mapping.name} is {size / 2**20:,.1f} MB for the {n:,} rows of "
                              f"{matrix}; an id mapping may have up to "
                              f"{MAPPING_BYTES_PER_ROW:,} bytes a row.")
    try:
        with mapping.open(encoding="utf-8") as fh:
            first = fh.readline(MAPPING_BYTES_PER_ROW + 1)
        sep = "\t" if "\t" in first else ("," if "," in first else None)
        if sep is None:                  # one id per line, in row order
            lines = mapping.read_text(encoding="utf-8").splitlines()
            if lines and lines[0].strip().lower() in ID_ALIASES["item_id"]:
                lines = lines[1:]        # a header naming the column
            return [line.strip() or None for line in lines]
        table = pd.read_csv(mapping, sep=sep, dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataImportError(f"{mapping.name} is not a readable id mapping "
                              f"({safe_reason(exc)}).") from None
    lower = {c.lower(): c for c in table.columns}
    if "itemid" in lower and len(table.columns) >= 2:
        rows = pd.to_numeric(table[lower["itemid"]], errors="coerce")
        if rows.isna().any() or (rows < 0).any() or (rows % 1 != 0).any():
            raise DataImportError(f"{mapping.name}: itemID must be row numbers (0, 1, ...).")
        if len(rows) and rows.max() >= n:
            raise DataImportError(
                f"{mapping.name} maps itemID {rows.max():,.0f}, but {matrix} has {n:,} rows "
                f"(itemID is a row number, 0 to {n - 1:,}). Give the mapping that goes with "
                "this file.")
        rows = rows.astype(np.int64).to_numpy()
        other = table[[c for c in table.columns if c != lower["itemid"]][0]].to_numpy()
        by_row = table[lower["itemid"]].to_numpy()
        # the dataset's item ids are either MMRec's itemIDs (split JSON, .inter) or the
        # original ids (a catalog keyed by ASIN): use whichever matches more of them
        use_other = sum(str(v) in catalog for v in other) > sum(str(v) in catalog
                                                                for v in by_row)
        names = other if use_other else by_row
        out: list[str | None] = [None] * n
        for r, name in zip(rows, names):
            out[int(r)] = str(name).strip() or None
        return out
    raise DataImportError(f"{mapping.name} should be MMRec's i_id_mapping.csv (an original id "
                          "and an itemID column) or one item id per line in row order.")


# -- Parquet / CSV tables -----------------------------------------------------------------------
def table_reader(path: Path, columns: dict[str, str] | None, catalog_size: int
                  ) -> Callable[[], Iterator[Chunk]]:
    """Chunks of a Parquet or CSV table: an id column and a vector column (or one numeric
    column per dimension)."""
    if path.suffix.lower() == ".parquet":
        return _parquet_reader(path, columns, catalog_size)
    return _csv_reader(path, columns, catalog_size)


def _pick_columns(names: list[str], columns: dict[str, str] | None, label: str
                  ) -> tuple[str, str | None, list[str]]:
    """(id column, vector column or None, dimension columns when there is no vector column)."""
    frame = pd.DataFrame(columns=names)
    mapping = resolve_columns(frame, ID_ALIASES, columns)
    if "item_id" not in mapping:
        raise DataImportError(f"{label} has no item id column (item_id, id, asin...); "
                              f"{describe_columns(names)}. Name it with --column "
                              "item_id=COLUMN.")
    if "vector" in mapping:
        return mapping["item_id"], mapping["vector"], []
    dims = [c for c in names if c != mapping["item_id"]]
    if not dims:
        raise DataImportError(f"{label} has an id column but no vector column (vector, "
                              "embedding, features...) and no numeric columns. Name it with "
                              "--column vector=COLUMN.")
    return mapping["item_id"], None, dims


def _parquet_reader(path: Path, columns: dict[str, str] | None, catalog_size: int
                    ) -> Callable[[], Iterator[Chunk]]:
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(path)
        names = meta.schema_arrow.names
        schema = meta.schema_arrow
        footer = meta.metadata
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many unrelated types
        raise DataImportError(f"{path.name} is not a readable Parquet file "
                              f"({type(exc).__name__}).") from None
    id_col, vec_col, dims = _pick_columns(list(names), columns, path.name)
    if footer.num_rows > max_rows(catalog_size):
        raise _too_many_rows(path.name, footer.num_rows, catalog_size)
    if dims and len(dims) > MAX_DIM:
        raise _too_many_dims(path.name, len(dims))
    per_row = _parquet_values_per_row(footer, schema, vec_col) if vec_col else len(dims)
    if per_row > MAX_DIM:
        raise _too_many_dims(path.name, per_row)
    step = _batch_rows(per_row)

    def reader() -> Iterator[Chunk]:
        start = 0
        try:
            batches = pq.ParquetFile(path).iter_batches(
                batch_size=step, columns=[id_col, vec_col] if vec_col else [id_col, *dims])
            for batch in batches:
                n = batch.num_rows
                ids = [None if v is None else str(v).strip()
                       for v in batch.column(id_col).to_pylist()]
                if vec_col:
                    vectors = _arrow_vectors(batch.column(vec_col))
                else:
                    vectors = _wide(pd.DataFrame({c: batch.column(c).to_pandas() for c in dims}))
                yield Chunk(np.arange(start + 1, start + n + 1), ids, vectors)
                start += n
        except (DataImportError, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001
            raise DataImportError(f"{path.name} could not be read past row {start:,} "
                                  f"({type(exc).__name__}).") from None

    reader.rows = footer.num_rows            # type: ignore[attr-defined]
    return reader


def _parquet_values_per_row(footer, schema, column: str) -> float:
    """How many numbers a row of `column` holds, from the footer alone: a fixed-size list's
    size, else the most values per row of any row group (a list column's leaf `num_values`
    counts every element: 4,096 rows of 8,192 run-length-encoded zeros are 33.5 million
    values, however few bytes they take in the file)."""
    import pyarrow as pa

    kind = schema.field(column).type
    if pa.types.is_fixed_size_list(kind):
        return float(kind.list_size)
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)):
        # a scalar or a text column (text is bounded per row by MAX_VECTOR_CHARS)
        return 1.0
    most = 0.0
    for g in range(footer.num_row_groups):
        group = footer.row_group(g)
        if not group.num_rows:
            continue
        for c in range(group.num_columns):
            chunk = group.column(c)
            if chunk.path_in_schema.split(".")[0] == column:
                most = max(most, chunk.num_values / group.num_rows)
    return most


def _arrow_vectors(col) -> list[np.ndarray | None]:
    """One vector per row of an Arrow column: list columns become numpy views of one flat
    array (no Python object per number); text columns are parsed (`_parse_vector`)."""
    import pyarrow as pa

    kind = col.type
    if pa.types.is_fixed_size_list(kind):
        col = col.cast(pa.list_(kind.value_type))
        kind = col.type
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)):
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            return [_parse_vector(v) for v in col.to_pylist()]
        return [None if v is None else np.empty(0) for v in col.to_pylist()]
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    n = len(col)
    valid = np.asarray(col.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    offsets = np.asarray(col.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)
    value_type = kind.value_type
    if not (pa.types.is_integer(value_type) or pa.types.is_floating(value_type)
            or pa.types.is_boolean(value_type)):
        return [np.empty(0) if valid[r] else None for r in range(n)]
    # as float64 by Arrow itself (a null number becomes NaN, reported as such)
    values = np.asarray(col.values.cast(pa.float64()).to_numpy(zero_copy_only=False),
                        dtype=np.float64)
    return [values[offsets[r]:offsets[r + 1]] if valid[r] else None for r in range(n)]


def _csv_reader(path: Path, columns: dict[str, str] | None, catalog_size: int
                ) -> Callable[[], Iterator[Chunk]]:
    """A CSV / TSV table read in blocks of `CSV_BLOCK_BYTES` (pyarrow's streaming reader): a
    line longer than a block is refused, a line with another number of fields than the header
    is reported, and no more than `max_rows` rows are read."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    probe = min(CSV_BLOCK_BYTES, 2**20)
    with path.open("rb") as fh:
        head = fh.read(probe)
    if b"\n" not in head and len(head) >= probe:
        raise DataImportError(f"{path.name} is not a readable CSV table (its first line is "
                              f"longer than {probe // 2**10:,} KB).")
    try:
        text = head.split(b"\n", 1)[0].decode("utf-8-sig").rstrip("\r")
    except UnicodeDecodeError:
        raise DataImportError(f"{path.name} is not a readable CSV table (not UTF-8 text).") \
            from None
    sep = "\t" if "\t" in text else ","
    names = next(csv.reader([text], delimiter=sep), [])
    if len(names) < 2 or len(set(names)) != len(names):
        raise DataImportError(f"{path.name} is not a readable CSV table (its first line should "
                              "name two or more different columns).")
    id_col, vec_col, dims = _pick_columns(names, columns, path.name)
    if dims and len(dims) > MAX_DIM:
        raise _too_many_dims(path.name, len(dims))
    limit = max_rows(catalog_size)
    wanted = [id_col, vec_col] if vec_col else [id_col, *dims]

    def reader() -> Iterator[Chunk]:
        malformed: list[int] = []

        def skip(row) -> str:
            malformed.append(int(row.number) if row.number is not None else -1)
            return "skip"

        seen = 0
        try:
            stream = pcsv.open_csv(
                path, read_options=pcsv.ReadOptions(block_size=CSV_BLOCK_BYTES,
                                                    use_threads=False),
                parse_options=pcsv.ParseOptions(delimiter=sep, newlines_in_values=True,
                                                invalid_row_handler=skip),
                convert_options=pcsv.ConvertOptions(
                    column_types={c: pa.string() for c in wanted}, include_columns=wanted,
                    strings_can_be_null=False, quoted_strings_can_be_null=False))
            for batch in stream:
                n = batch.num_rows
                bad, malformed[:] = list(malformed), []
                if seen + n + len(bad) > limit:
                    raise DataImportError(
                        f"{path.name} has more than {limit:,} rows for a dataset of "
                        f"{catalog_size:,} items; at most that many are read "
                        f"({ROWS_PER_ITEM} per item + {ROWS_SLACK:,}). Keep the rows of this "
                        "dataset's items.")
                ids = [v.strip() or None for v in batch.column(id_col).to_pylist()]
                if vec_col:
                    vectors = [_parse_vector(v) for v in batch.column(vec_col).to_pylist()]
                else:
                    vectors = _wide(batch.select(dims).to_pandas())
                # line numbers: the header is line 1 (blank lines are not counted)
                first_line = seen + len(bad) + 2
                yield Chunk(np.arange(first_line, first_line + n), ids, vectors, bad)
                seen += n + len(bad)
            if malformed:
                yield Chunk(np.zeros(0, dtype=int), [], [], list(malformed))
        except (DataImportError, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001 - pyarrow's errors quote the file: never shown
            detail = f"a line is longer than {CSV_BLOCK_BYTES // 2**20} MB" \
                if "straddl" in str(exc) else type(exc).__name__
            raise DataImportError(f"{path.name} could not be read past line {seen + 1:,} "
                                  f"({detail}).") from None

    return reader


def _parse_vector(text: object) -> np.ndarray | None:
    """"[0.1, 0.2]", "0.1 0.2", "0.1;0.2" as numbers; None when empty or not numbers."""
    if text is None:
        return None
    if len(str(text)) > MAX_VECTOR_CHARS:
        return TOO_LONG                 # reported, never split into millions of strings
    body = str(text).strip().strip("[](){}").strip()
    if not body:
        return None
    try:
        return np.asarray(_NUMBERS.split(body), dtype=np.float64)
    except ValueError:
        return np.empty(0)              # reported as "not a list of numbers"


def _wide(frame: pd.DataFrame) -> list[np.ndarray | None]:
    """One vector per row from one numeric column per dimension (a non-number: no vector)."""
    values = frame.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    blank = frame.isna().to_numpy() | (frame.astype(str).to_numpy() == "")
    bad = np.isnan(values) & ~blank
    return [None if bad[r].any() else values[r] for r in range(len(values))]
