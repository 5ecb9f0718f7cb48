"""Bring your own item vectors: precomputed features imported as a named modality.

`import_features(store, path, modality, dataset)` reads one vector per item from

* a `.npy` matrix whose rows are items, with an id mapping: MMRec's layout (`image_feat.npy`,
  `text_feat.npy` beside `i_id_mapping.csv`, tab-separated `asin itemID`: row r is the item
  whose itemID is r), a one-column file of ids in row order (`ids=`), or no mapping at all
  (row r is the item with id "r", MMRec's itemID);
* a Parquet or CSV table with an id column and a vector column (a Parquet list, or a string of
  numbers such as "[0.1, 0.2]" or "0.1 0.2"), or with the id column and one numeric column per
  dimension.

Like the other importers it validates everything first and then writes in one transaction,
and its `ImportReport` counts problem rows by reason with examples: a row of another
dimension, NaN or infinite values, an all-zero vector, an id the dataset does not have, a
duplicate id. Items of the dataset left without a vector are counted (with examples) in the
report's details; they simply have no vector in this modality, like items without a photo.

Files are read in chunks of `CHUNK_ROWS` rows (a `.npy` is memory-mapped), twice: once to
validate, once to write, so memory stays bounded whatever the file size. The vectors are stored
under the encoder name `features` (`recsys.vectors.FEATURES_ENCODER`) with the digest of the
imported files as version; one imported set per (dataset, modality) is kept, so re-importing
replaces it. Models read it like any other modality (`recsys.vectors`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Literal

import numpy as np
import pandas as pd

from .datasets import (EXAMPLES_PER_REASON, DataImportError, ImportReport, OnError,
                       describe_columns, resolve_columns, safe_reason)
from .progress import ProgressCallback, report
from .store import Store
from .vectors import FEATURES_ENCODER, ModalityError, check_modality_name

CHUNK_ROWS = 4096
MAX_DIM = 65_536
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


def import_features(store: Store, path: str | Path, modality: str, dataset: str | None = None,
                    *, ids: str | Path | None = None, columns: dict[str, str] | None = None,
                    fmt: Literal["auto", "npy", "table"] = "auto", on_error: OnError = "skip",
                    progress: ProgressCallback | None = None) -> ImportReport:
    """Import one vector per item of `dataset` from `path` as the modality `modality`.

    `ids`: the id mapping of a `.npy` file (default: `i_id_mapping.csv` beside it when there
    is one). `columns`: {"item_id": COLUMN, "vector": COLUMN} for a table whose columns have
    other names. `on_error`: "skip" leaves problem rows out, "refuse" imports nothing if any.
    Raises `DataImportError` for input that cannot be read at all; a refused import (no valid
    row, or problems with "refuse") returns a report with `refused` and changes nothing.
    """
    try:
        modality = check_modality_name(modality)
    except ModalityError as exc:
        raise DataImportError(str(exc)) from None
    dataset = store.resolve_dataset(dataset)
    path = Path(path)
    if not path.is_file():
        raise DataImportError(f"Feature file not found: {path}")
    if fmt == "auto":
        fmt = "npy" if path.suffix.lower() == ".npy" else "table"
    if fmt == "npy":
        reader, mapping_file = _npy_reader(path, ids, set(store.item_ids(dataset)))
    elif fmt == "table":
        if ids is not None:
            raise DataImportError("An id mapping (--ids) goes with a .npy file; a table names "
                                  "its items in its id column.")
        reader, mapping_file = _table_reader(path, columns), None
    else:
        raise DataImportError(f"Unknown feature format {fmt!r}; use npy or table.")

    rep = ImportReport(dataset=dataset, kind="feature vectors",
                       unit="row" if fmt == "npy" or path.suffix.lower() == ".parquet"
                       else "line")
    catalog = store.item_ids(dataset)
    keep, dim = _validate(reader, set(catalog), rep, progress)
    if rep.problems and on_error == "refuse":
        rep.refused, rep.imported = True, 0
        return rep
    if not keep.any():
        return rep.refuse("the file has no valid feature rows" if rep.rows_read else
                          "the file has no rows")
    version = _digest(path, mapping_file)
    report(progress, 1, 2, "writing", stage="write")

    def kept_chunks() -> Iterator[tuple[list[str], np.ndarray]]:
        start = 0
        for chunk in reader():
            sel = keep[start:start + len(chunk.ids)]
            start += len(chunk.ids)
            rows = np.flatnonzero(sel)
            if not len(rows):
                continue
            yield [chunk.ids[r] for r in rows], _matrix(chunk, rows, dim)

    written = store.replace_modality_vectors(dataset, FEATURES_ENCODER, version, modality,
                                             kept_chunks())
    rep.imported = written
    with_vector = set()
    for chunk_ids in _kept_ids(reader, keep):
        with_vector.update(chunk_ids)
    missing = [i for i in catalog if i not in with_vector]
    rep.details.update({"modality": modality, "dimensions": dim,
                        "source": f"{FEATURES_ENCODER}@{version}",
                        "items without a vector": len(missing)})
    if missing:
        rep.details["e.g. items without a vector"] = ", ".join(missing[:EXAMPLES_PER_REASON])
    report(progress, 1, 1, "written", stage="write")
    return rep


# -- validation ---------------------------------------------------------------------------------
def _validate(reader: Callable[[], Iterator[Chunk]], catalog: set[str], rep: ImportReport,
              progress: ProgressCallback | None) -> tuple[np.ndarray, int]:
    """One pass over the file: which rows to keep, and the dimension of the vectors (that of
    the first row with a vector; rows of another dimension are reported)."""
    keep_parts: list[np.ndarray] = []
    dim = 0
    seen: set[str] = set()
    for chunk in reader():
        n = len(chunk.ids)
        rep.rows_read += n
        ok = np.ones(n, dtype=bool)

        def drop(reason: str, mask: np.ndarray, example: Callable[[int], str]) -> None:
            mask = mask & ok
            positions = np.flatnonzero(mask)
            rep.add_rows(reason, chunk.labels[positions], lambda k: example(int(positions[k])))
            ok[mask] = False

        ids = chunk.ids
        drop("row without an item id", np.array([i is None or i == "" for i in ids]),
             lambda r: f"{rep.unit} {chunk.labels[r]}")
        if isinstance(chunk.vectors, np.ndarray):
            lengths = np.full(n, chunk.vectors.shape[1])
            present = np.ones(n, dtype=bool)
        else:
            present = np.array([v is not None for v in chunk.vectors], dtype=bool)
            lengths = np.array([0 if v is None else len(v) for v in chunk.vectors])
        drop("row without a vector", ~present, lambda r: f"item {ids[r]}")
        drop("vector is not a list of numbers", lengths == 0, lambda r: f"item {ids[r]}")
        if not dim:
            first = np.flatnonzero(ok)
            if len(first):
                dim = int(lengths[first[0]])
                if dim > MAX_DIM:
                    raise DataImportError(f"The vectors have {dim:,} dimensions; at most "
                                          f"{MAX_DIM:,} are accepted.")
        drop(f"vector does not have {dim} dimensions (the first row's)",
             lengths != dim, lambda r: f"item {ids[r]}: {lengths[r]} dimensions")
        rows = np.flatnonzero(ok)
        if len(rows):
            mat = _matrix(chunk, rows, dim)
            finite = np.isfinite(mat).all(axis=1)
            bad = np.zeros(n, dtype=bool)
            bad[rows[~finite]] = True
            drop("NaN or infinite value", bad, lambda r: f"item {ids[r]}")
            zero = np.zeros(n, dtype=bool)
            zero[rows[finite & ~np.abs(np.nan_to_num(mat)).any(axis=1)]] = True
            drop("all-zero vector (no direction)", zero, lambda r: f"item {ids[r]}")
        unknown = np.array([ok[r] and ids[r] not in catalog for r in range(n)], dtype=bool)
        drop("item not in the dataset", unknown, lambda r: f"item {ids[r]}")
        dup = np.zeros(n, dtype=bool)
        for r in np.flatnonzero(ok):
            if ids[r] in seen:
                dup[r] = True
            else:
                seen.add(ids[r])
        drop("duplicate item id (the first row is kept)", dup, lambda r: f"item {ids[r]}")
        keep_parts.append(ok)
        total = getattr(reader, "rows", None)
        report(progress, rep.rows_read if total else 1, 2 * total if total else 4,
               f"checked {rep.rows_read:,} rows", stage="validate")
    keep = np.concatenate(keep_parts) if keep_parts else np.zeros(0, dtype=bool)
    return keep, dim


def _matrix(chunk: Chunk, rows: np.ndarray, dim: int) -> np.ndarray:
    """The float32 vectors of some rows of a chunk (all of dimension `dim`)."""
    if isinstance(chunk.vectors, np.ndarray):
        return np.asarray(chunk.vectors[rows], dtype=np.float32)
    out = np.empty((len(rows), dim), dtype=np.float32)
    for k, r in enumerate(rows):
        out[k] = chunk.vectors[r]
    return out


def _kept_ids(reader: Callable[[], Iterator[Chunk]], keep: np.ndarray) -> Iterator[list[str]]:
    start = 0
    for chunk in reader():
        sel = keep[start:start + len(chunk.ids)]
        start += len(chunk.ids)
        yield [chunk.ids[r] for r in np.flatnonzero(sel)]


def _digest(*paths: Path | None) -> str:
    """A short SHA-1 of the imported files' bytes: the version of the imported vectors."""
    h = hashlib.sha1()
    for path in paths:
        if path is None:
            continue
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:12]


# -- .npy with an id mapping --------------------------------------------------------------------
def _npy_reader(path: Path, ids: str | Path | None, catalog: set[str]
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
    mapping = Path(ids) if ids is not None else path.parent / MMREC_MAPPING
    if ids is not None and not mapping.is_file():
        raise DataImportError(f"Id mapping not found: {mapping}")
    if mapping.is_file():
        row_ids = _row_ids(mapping, catalog)
    else:
        mapping = None
        row_ids = [str(r) for r in range(mat.shape[0])]     # MMRec: row r is itemID r
    n = mat.shape[0]
    if len(row_ids) < n:
        row_ids = row_ids + [None] * (n - len(row_ids))

    def reader() -> Iterator[Chunk]:
        for start in range(0, n, CHUNK_ROWS):
            stop = min(n, start + CHUNK_ROWS)
            yield Chunk(np.arange(start, stop), row_ids[start:stop],
                        np.asarray(mat[start:stop], dtype=np.float32))

    reader.rows = n                      # type: ignore[attr-defined]
    return reader, mapping


def _row_ids(mapping: Path, catalog: set[str]) -> list[str | None]:
    """Each .npy row's item id from a mapping file: MMRec's `i_id_mapping.csv` (an original
    id and an `itemID` = row number; the one of the two the dataset uses is taken), or a list
    of ids in row order (one column, no header)."""
    try:
        first = mapping.open(encoding="utf-8").readline()
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
        if rows.isna().any() or (rows < 0).any():
            raise DataImportError(f"{mapping.name}: itemID must be row numbers (0, 1, ...).")
        rows = rows.astype(np.int64).to_numpy()
        other = table[[c for c in table.columns if c != lower["itemid"]][0]].to_numpy()
        by_row = table[lower["itemid"]].to_numpy()
        # the dataset's item ids are either MMRec's itemIDs (split JSON, .inter) or the
        # original ids (a catalog keyed by ASIN): use whichever matches more of them
        use_other = sum(str(v) in catalog for v in other) > sum(str(v) in catalog
                                                                for v in by_row)
        names = other if use_other else by_row
        out: list[str | None] = [None] * (int(rows.max()) + 1 if len(rows) else 0)
        for r, name in zip(rows, names):
            out[int(r)] = str(name).strip() or None
        return out
    raise DataImportError(f"{mapping.name} should be MMRec's i_id_mapping.csv (an original id "
                          "and an itemID column) or one item id per line in row order.")


# -- Parquet / CSV tables -----------------------------------------------------------------------
def _table_reader(path: Path, columns: dict[str, str] | None) -> Callable[[], Iterator[Chunk]]:
    """Chunks of a Parquet or CSV table: an id column and a vector column (or one numeric
    column per dimension)."""
    if path.suffix.lower() == ".parquet":
        return _parquet_reader(path, columns)
    return _csv_reader(path, columns)


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


def _parquet_reader(path: Path, columns: dict[str, str] | None
                    ) -> Callable[[], Iterator[Chunk]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        names = pq.ParquetFile(path).schema_arrow.names
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many unrelated types
        raise DataImportError(f"{path.name} is not a readable Parquet file "
                              f"({type(exc).__name__}).") from None
    id_col, vec_col, dims = _pick_columns(list(names), columns, path.name)

    def reader() -> Iterator[Chunk]:
        start = 0
        try:
            batches = pq.ParquetFile(path).iter_batches(
                batch_size=CHUNK_ROWS, columns=[id_col, vec_col] if vec_col else [id_col, *dims])
            for batch in batches:
                n = batch.num_rows
                ids = [None if v is None else str(v).strip()
                       for v in batch.column(id_col).to_pylist()]
                if vec_col:
                    col = batch.column(vec_col)
                    if pa.types.is_list(col.type) or pa.types.is_large_list(col.type) or \
                            pa.types.is_fixed_size_list(col.type):
                        vectors = [None if v is None else _as_numbers(v)
                                   for v in col.to_pylist()]
                    else:
                        vectors = [_parse_vector(v) for v in col.to_pylist()]
                else:
                    vectors = _wide(pd.DataFrame({c: batch.column(c).to_pandas() for c in dims}))
                yield Chunk(np.arange(start + 1, start + n + 1), ids, vectors)
                start += n
        except DataImportError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise DataImportError(f"{path.name} could not be read past row {start:,} "
                                  f"({type(exc).__name__}).") from None

    return reader


def _csv_reader(path: Path, columns: dict[str, str] | None) -> Callable[[], Iterator[Chunk]]:
    # the separator the rows are read with, also for the header: a sniffed one (':' in a
    # passwd file, a letter in a .env) would split any text file into "columns"
    with path.open(encoding="utf-8", errors="replace") as fh:
        sep = "\t" if "\t" in fh.readline() else ","
    try:
        head = pd.read_csv(path, sep=sep, nrows=5, dtype=str)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataImportError(f"{path.name} is not a readable CSV table "
                              f"({safe_reason(exc)}).") from None
    id_col, vec_col, dims = _pick_columns(list(head.columns), columns, path.name)

    def reader() -> Iterator[Chunk]:
        start = 0
        try:
            for part in pd.read_csv(path, sep=sep, dtype=str, chunksize=CHUNK_ROWS,
                                    keep_default_na=False, usecols=[id_col, vec_col]
                                    if vec_col else [id_col, *dims]):
                n = len(part)
                ids = [v.strip() or None for v in part[id_col]]
                vectors = [_parse_vector(v) for v in part[vec_col]] if vec_col else \
                    _wide(part[dims])
                # line numbers: the header is line 1
                yield Chunk(np.arange(start + 2, start + n + 2), ids, vectors)
                start += n
        except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise DataImportError(f"{path.name} could not be read past line {start + 1:,} "
                                  f"({safe_reason(exc)}).") from None

    return reader


def _as_numbers(values: list) -> np.ndarray:
    try:
        return np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        return np.empty(0)              # reported as "not a list of numbers"


def _parse_vector(text: object) -> np.ndarray | None:
    """"[0.1, 0.2]", "0.1 0.2", "0.1;0.2" as numbers; None when empty or not numbers."""
    if text is None:
        return None
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
