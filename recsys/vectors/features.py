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

The file is parsed once, by a worker process under the features budget (`recsys.core.sandbox`:
`RECSYS_FEATURES_BUDGET_MB` / `RECSYS_FEATURES_BUDGET_SECONDS`), which validates every row and
writes the rows kept as a plain float32 matrix and a list of ids into a temporary folder; this
process then writes that canonical copy into the store. Sizes are checked from the file's own
metadata before anything is allocated, then the file is read in bounded batches, each format
by its reader in `recsys.vectors.feature_readers` (which also states the limits). The vectors
are stored under the encoder name `features` (`FEATURES_ENCODER` of
`recsys.vectors.modalities`) with the digest of the imported files as version; one imported
set per (dataset, modality) is kept, so re-importing replaces it. Models read it like any
other modality (`recsys.vectors.modalities`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

import numpy as np

from recsys.core.progress import ProgressCallback, report
from recsys.data.report import (
    EXAMPLES_PER_REASON,
    DataImportError,
    ImportReport,
    OnError,
    row_dropper,
)
from recsys.store import Store
from recsys.vectors.feature_readers import (
    BATCH_BYTES,
    CHUNK_ROWS,
    MAX_DIM,
    MAX_VECTOR_CHARS,
    TOO_LONG,
    Chunk,
    npy_reader,
    table_reader,
)
from recsys.vectors.modalities import (
    FEATURES_ENCODER,
    ModalityError,
    check_modality_name,
)


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
    if fmt not in ("npy", "table"):
        raise DataImportError(f"Unknown feature format {fmt!r}; use npy or table.")
    if fmt == "table" and ids is not None:
        raise DataImportError("An id mapping (--ids) goes with a .npy file; a table names "
                              "its items in its id column.")
    if ids is not None and not Path(ids).is_file():
        raise DataImportError(f"Id mapping not found: {ids}")
    catalog = store.item_ids(dataset)
    with tempfile.TemporaryDirectory(prefix=".features-", dir=_work_root(store)) as work:
        parsed = _parse(path, ids, fmt, columns, catalog, Path(work), dataset, progress)
        rep = parsed["report"]
        if rep.problems and on_error == "refuse":
            return rep.refuse_rows()
        if not parsed["rows"]:
            return rep.refuse("the file has no valid feature rows" if rep.rows_read else
                              "the file has no rows")
        mapping = Path(parsed["mapping"]) if parsed.get("mapping") else None
        version = _digest(path, mapping)
        report(progress, 1, 2, "writing", stage="write")
        dim = int(parsed["dim"])
        kept = _read_ids(Path(work) / "ids.jsonl", int(parsed["rows"]))
        if not 0 < dim <= MAX_DIM or len(set(kept)) != len(kept) or \
                (Path(work) / "vectors.f32").stat().st_size != 4 * dim * len(kept):
            raise DataImportError(f"{path.name} could not be read completely; nothing was "
                                  "imported.")
        matrix = np.memmap(Path(work) / "vectors.f32", dtype=np.float32, mode="r",
                           shape=(len(kept), dim))
        step = max(1, min(CHUNK_ROWS, BATCH_BYTES // (4 * dim)))

        def kept_chunks(rows: np.ndarray) -> Iterator[tuple[list[str], np.ndarray]]:
            for begin in range(0, len(kept), step):
                yield kept[begin:begin + step], np.array(rows[begin:begin + step])

        written = store.replace_modality_vectors(dataset, FEATURES_ENCODER, version, modality,
                                                 kept_chunks(matrix))
        del matrix
    rep.imported = written
    with_vector = set(kept)
    missing = [i for i in catalog if i not in with_vector]
    rep.details.update({"modality": modality, "dimensions": dim,
                        "source": f"{FEATURES_ENCODER}@{version}",
                        "items without a vector": len(missing)})
    if missing:
        rep.details["e.g. items without a vector"] = ", ".join(missing[:EXAMPLES_PER_REASON])
    report(progress, 1, 1, "written", stage="write")
    return rep


def _work_root(store: Store) -> str | None:
    """Where the canonical copy of the vectors is written: beside the database (a big import
    needs the database's disk, not a small /tmp), else the system's temporary folder."""
    folder = Path(str(store.path)).parent
    return str(folder) if str(store.path) != ":memory:" and folder.is_dir() else None


def _read_ids(path: Path, rows: int) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        kept = [json.loads(line) for line in fh]
    if len(kept) != rows or not all(isinstance(i, str) for i in kept):
        raise DataImportError("The feature file could not be read completely; nothing was "
                              "imported.")
    return kept


def _parse(path: Path, ids: str | Path | None, fmt: str, columns: dict[str, str] | None,
           catalog: list[str], work: Path, dataset: str,
           progress: ProgressCallback | None) -> dict[str, Any]:
    """Validate the file and write the rows kept into `work`, in a worker process under the
    features budget (`recsys.core.sandbox`). Returns the report, the dimension, the number of rows
    kept and the id mapping used."""
    from recsys.core import sandbox

    (work / "catalog.jsonl").write_text("".join(json.dumps(i) + "\n" for i in catalog),
                                        encoding="utf-8")
    # absolute paths: the worker has its own working folder
    args = {"path": os.path.abspath(path), "ids": None if ids is None else os.path.abspath(ids),
            "fmt": fmt, "columns": columns, "work": os.path.abspath(work), "dataset": dataset}

    def forward(event: dict[str, Any]) -> None:
        report(progress, float(event.get("done", 0)), float(event.get("total", 1)),
               str(event.get("message", "")), stage=str(event.get("stage", "")))

    reply = sandbox.run("features", args, error=DataImportError, label=path.name,
                        progress=forward)
    result = dict(reply.header)
    result["report"] = ImportReport(**result["report"])
    return result


def parse_task(args: dict, payload: bytes, progress) -> tuple[dict, bytes]:
    """The worker's feature task (`recsys.core.sandbox`): read and validate the file named in
    `args`, write the rows kept (`vectors.f32`, `ids.jsonl`) into `args["work"]`, and return
    the report."""
    path, work = Path(args["path"]), Path(args["work"])
    with open(work / "catalog.jsonl", encoding="utf-8") as fh:
        catalog = {json.loads(line) for line in fh}
    fmt = args["fmt"]
    ids = args.get("ids")
    if fmt == "npy":
        reader, mapping_file = npy_reader(path, ids, catalog)
    else:
        reader, mapping_file = table_reader(path, args.get("columns"), len(catalog)), None
    rep = ImportReport(dataset=str(args.get("dataset") or ""), kind="feature vectors",
                       unit="row" if fmt == "npy" or path.suffix.lower() == ".parquet"
                       else "line")

    def emit(done: float, total: float, message: str, stage: str) -> None:
        progress({"done": done, "total": total, "message": message, "stage": stage})

    try:
        with open(work / "vectors.f32", "wb") as vectors, \
                open(work / "ids.jsonl", "w", encoding="utf-8") as kept_ids:
            def sink(chunk_ids: list[str], matrix: np.ndarray) -> None:
                vectors.write(np.ascontiguousarray(matrix, dtype=np.float32).tobytes())
                kept_ids.write("".join(json.dumps(i) + "\n" for i in chunk_ids))

            rows, dim = _validate(reader, catalog, rep, emit, sink)
    except OSError as exc:
        if exc.filename is not None and Path(exc.filename).parent != work:
            raise DataImportError(f"{path.name} could not be read "
                                  f"({exc.strerror or type(exc).__name__}).") from None
        raise DataImportError(f"The vectors read from {path.name} could not be staged in "
                              f"{work.parent} ({exc.strerror or type(exc).__name__}: the "
                              "disk may be full); nothing was imported.") from None
    return {"report": dataclasses.asdict(rep), "dim": dim, "rows": rows,
            "mapping": None if mapping_file is None else str(mapping_file)}, b""


# -- validation ---------------------------------------------------------------------------------
def _validate(reader: Callable[[], Iterator[Chunk]], catalog: set[str], rep: ImportReport,
              emit: Callable[[float, float, str, str], None],
              sink: Callable[[list[str], np.ndarray], None]) -> tuple[int, int]:
    """One pass over the file: each row kept is handed to `sink` (its id and float32 vector)
    and each other row reported; returns the number of rows kept and the dimension of the
    vectors (that of the first row with a vector; rows of another dimension are reported)."""
    kept = 0
    dim = 0
    seen: set[str] = set()
    for chunk in reader():
        n = len(chunk.ids)
        rep.rows_read += n
        if chunk.malformed:
            rep.rows_read += len(chunk.malformed)
            bad_lines = chunk.malformed
            rep.add_rows("line does not have the header's fields", bad_lines,
                         lambda k: f"line {bad_lines[k]}")
        ok = np.ones(n, dtype=bool)
        drop = row_dropper(rep, chunk.labels, ok)

        ids = chunk.ids
        drop("row without an item id", np.array([i is None or i == "" for i in ids],
                                                dtype=bool),
             lambda r: f"{rep.unit} {chunk.labels[r]}")
        if isinstance(chunk.vectors, np.ndarray):
            lengths = np.full(n, chunk.vectors.shape[1])
            present = np.ones(n, dtype=bool)
            long_text = np.zeros(n, dtype=bool)
        else:
            present = np.array([v is not None for v in chunk.vectors], dtype=bool)
            lengths = np.array([0 if v is None else len(v) for v in chunk.vectors], dtype=int)
            long_text = np.array([v is TOO_LONG for v in chunk.vectors], dtype=bool)
        drop("row without a vector", ~present, lambda r: f"item {ids[r]}")
        drop(f"vector text longer than {MAX_VECTOR_CHARS:,} characters", long_text,
             lambda r: f"item {ids[r]}")
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
        mat = np.empty((0, dim), dtype=np.float32)
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
        keep = np.flatnonzero(ok)
        if len(keep):
            sink([str(ids[r]) for r in keep], mat[np.searchsorted(rows, keep)])
            kept += len(keep)
        total = getattr(reader, "rows", None)
        emit(rep.rows_read if total else 1, total if total else 2,
             f"checked {rep.rows_read:,} rows", "validate")
    return kept, dim


def _matrix(chunk: Chunk, rows: np.ndarray, dim: int) -> np.ndarray:
    """The float32 vectors of some rows of a chunk (all of dimension `dim`)."""
    if isinstance(chunk.vectors, np.ndarray):
        return np.asarray(chunk.vectors[rows], dtype=np.float32)
    out = np.empty((len(rows), dim), dtype=np.float32)
    for k, r in enumerate(rows):
        out[k] = chunk.vectors[r]
    return out


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
