"""A vector index kept in files beside the database and in step with the store.

`index_for_dataset(store, dataset)` keeps the index files beside the database
(``artifacts/<db stem>/indexes/<dataset>/<encoder>@<version>/<storage>/``: two database files in
one folder never share them), keyed in the manifest by the database file, dataset and encoder
version, and written atomically (`save_index`: a new generation of files, then the manifest
that names them). On the next call a one-query fingerprint of the stored vectors says whether
anything changed; if so, only added / removed / rewritten items are applied (slots of removed
items are freed, new vectors appended), and the index is rebuilt when more than a third of its
slots are stale. Loading (`load_index`) checks every file before use and memory-maps them: no
copy of the vectors is made, and a million-item index opens in well under a second. Before
anything is built in memory, `memory_plan.plan_storage` checks the memory budget.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from recsys.core import config
from recsys.core.errors import disk_full_message, is_disk_full
from recsys.core.files import atomic_path, path_part
from recsys.core.progress import ProgressCallback, report
from recsys.search import vector_index
from recsys.search.faiss_runtime import CHUNK, load_faiss
from recsys.search.memory_plan import DUCKDB_BUILD_BYTES, plan_storage
from recsys.search.vector_index import (
    STORAGES,
    VectorIndex,
    VectorIndexError,
    order_modalities,
)
from recsys.store import Store
from recsys.vectors.loading import newest_vectors, normalise_rows

FORMAT = 1
ANN_SETTINGS = ("auto", "always", "never")
REBUILD_STALE_SHARE = 1 / 3
"""An update that leaves more than this share of the slots freed rebuilds the index instead."""
GENERATION_FILE = re.compile(r"(flat|ann)\.[0-9a-f]{1,16}-[0-9a-f]{6}\.faiss|"
                             r"slots\.[0-9a-f]{1,16}-[0-9a-f]{6}\.npz")


class IndexNotSaved(VectorIndexError):
    """The index files could not be written (`directory`, the OS or faiss error as cause); the
    previous files are as they were. A full disk is said in the store's words."""

    def __init__(self, directory: Path, exc: BaseException):
        self.directory = directory
        if is_disk_full(exc, (OSError, RuntimeError)):
            text = disk_full_message("the search index", directory,
                                     "the index was not saved; search answers from memory "
                                     "this time")
        else:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else \
                type(exc).__name__
            text = (f"The search index could not be saved in {directory} ({why}), so search "
                    "answers from memory this time.")
        super().__init__(text)


# -- the files -----------------------------------------------------------------------------------
def save_index(index: VectorIndex, directory: str | os.PathLike,
               meta: Mapping | None = None) -> Path:
    """Write a new generation of files, then the manifest naming them (atomic), then delete
    older generations. Returns the manifest path.

    Every file goes to a temporary name first and is renamed when complete, and the manifest
    is written last: a write that fails (a full disk, a read-only folder) leaves the previous
    generation and its manifest as they were, and the files of the failed generation are
    deleted. The failure is raised as an `IndexNotSaved` whose message says so (the disk-full
    wording of the store when the disk or the size limit is full).
    """
    directory = Path(directory)
    files: dict[str, str] = {}
    try:
        return _write_generation(index, directory, meta, files)
    except (OSError, RuntimeError) as exc:          # faiss reports write errors as RuntimeError
        for name in files.values():
            (directory / name).unlink(missing_ok=True)
        raise IndexNotSaved(directory, exc) from exc


def _write_generation(index: VectorIndex, directory: Path, meta: Mapping | None,
                      files: dict[str, str]) -> Path:
    faiss = load_faiss()
    directory.mkdir(parents=True, exist_ok=True)
    gen = f"{int(time.time() * 1000):x}-{uuid.uuid4().hex[:6]}"
    files["flat"] = f"flat.{gen}.faiss"
    with atomic_path(directory / files["flat"]) as tmp:
        faiss.write_index(index.flat, str(tmp))
    if index.ann is not None:
        files["ann"] = f"ann.{gen}.faiss"
        with atomic_path(directory / files["ann"]) as tmp:
            faiss.write_index(index.ann, str(tmp))
    files["slots"] = f"slots.{gen}.npz"
    with atomic_path(directory / files["slots"]) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, ids=np.array([i if i is not None else "" for i in index.slot_ids],
                                      dtype=str),
                     signatures=np.array([s if s is not None else "" for s in
                                          index.signatures], dtype=str),
                     present=index.present, alive=index.alive)
    sizes = {name: (directory / name).stat().st_size for name in files.values()}
    manifest = {"format": FORMAT, "modalities": index.modalities, "dims": index.dims,
                "storage": index.storage, "ann_min_items": index.ann_min_items,
                "nprobe": index.nprobe, "filter_rule": list(index.filter_rule),
                "items": len(index), "slots": index.n_slots,
                "files": dict(files), "sizes": sizes, **(dict(meta) if meta else {})}
    path = directory / "manifest.json"
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1))
    index.meta = manifest
    keep = set(files.values()) | {"manifest.json"}
    for old in directory.iterdir():
        if old.name not in keep and not old.name.startswith("."):
            old.unlink(missing_ok=True)
    return path


def load_index(directory: str | os.PathLike, mmap: bool = True) -> VectorIndex:
    """Open a saved index; `mmap` maps the vector files read-only (no copy, fast).

    Everything is checked before it is used: the manifest (`_checked_manifest`: known values,
    file names of this folder only, the sizes the files were written with), the slot table
    (`model_files.read_npz`: no object arrays, shapes that agree), and the faiss indexes
    against both (row count, width, every id a live slot). A damaged index is a
    `VectorIndexError` (the persisted index is rebuilt from the database).
    """
    from recsys.core.model_files import ModelFileError, read_json_file, read_npz

    faiss = load_faiss()
    directory = Path(directory)
    try:
        manifest = _checked_manifest(read_json_file(directory / "manifest.json",
                                                    "the manifest"), directory)
        files = manifest["files"]
        slots = read_npz(directory / files["slots"])
    except ModelFileError as exc:
        raise VectorIndexError(f"The vector index in {directory} is damaged "
                               f"({exc.reason}).") from None
    try:
        flat = faiss.read_index(str(directory / files["flat"]),
                                faiss.IO_FLAG_MMAP_IFC if mmap else 0)
        ann = faiss.read_index(str(directory / files["ann"]),
                               faiss.IO_FLAG_MMAP if mmap else 0) if "ann" in files else None
    except (OSError, RuntimeError, MemoryError):
        raise VectorIndexError(f"The vector index in {directory} is damaged (a faiss file "
                               "cannot be read).") from None
    ids, sigs, present, alive = _checked_slots(slots, len(manifest["dims"]), directory)
    slot_ids = np.array(ids.tolist(), dtype=object)
    slot_ids[~alive] = None
    # signatures only matter to an update, which needs a writable (not mapped) index
    signatures = np.array(sigs.tolist() if not mmap else [""] * len(ids), dtype=object)
    index = VectorIndex.from_parts(
        manifest["dims"], manifest["storage"], manifest["ann_min_items"], flat=flat, ann=ann,
        nprobe=int(manifest.get("nprobe") or 0), slot_ids=slot_ids, signatures=signatures,
        present=present, alive=alive, readonly=mmap, meta=manifest,
        filter_rule=manifest.get("filter_rule"))
    _check_faiss(index, directory)
    return index


def _checked_manifest(manifest: object, directory: Path) -> dict:
    """An index manifest whose every field the loader uses is of a known kind: the format,
    1 to 64 modalities of dimension 1..65,536, a known storage, file names of a generation in
    this folder only (no path can lead elsewhere) with the sizes they were written with."""
    from recsys.core.model_files import ModelFileError

    def bad(what: str):
        return ModelFileError(f"its manifest has {what}")

    if not isinstance(manifest, dict):
        raise bad("no fields")
    if manifest.get("format") != FORMAT:
        raise bad(f"another format (this version reads {FORMAT})")
    dims = manifest.get("dims")
    if not isinstance(dims, dict) or not 1 <= len(dims) <= 64 or not all(
            isinstance(m, str) and len(m) <= 64 and isinstance(d, int)
            and not isinstance(d, bool) and 1 <= d <= 65536 for m, d in dims.items()):
        raise bad("no valid modalities")
    if manifest.get("storage") not in STORAGES:
        raise bad("an unknown storage")
    if not isinstance(manifest.get("ann_min_items"), int) or manifest["ann_min_items"] < 0:
        raise bad("no valid approximate-index size")
    if not isinstance(manifest.get("nprobe", 0), int):
        raise bad("no valid nprobe")
    rule = manifest.get("filter_rule")
    if rule is not None and not (
            isinstance(rule, list) and len(rule) == 2
            and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                    and 0 <= x <= 1e6 for x in rule)):
        raise bad("no valid filtered-search rule")
    files = manifest.get("files")
    if not isinstance(files, dict) or set(files) - {"flat", "ann", "slots"} or \
            not {"flat", "slots"} <= set(files) or \
            not all(isinstance(n, str) and GENERATION_FILE.fullmatch(n) for n in files.values()):
        raise bad("file names that are not its own")
    sizes = manifest.get("sizes")
    if sizes is not None:          # indexes saved before sizes were recorded have none
        for name in files.values():
            try:
                actual = (directory / name).stat().st_size
            except OSError:
                raise bad("a file that is missing") from None
            if not isinstance(sizes, dict) or sizes.get(name) != actual:
                raise bad("a file whose size changed since it was written (truncated or "
                          "replaced)")
    return manifest


def _checked_slots(slots: dict[str, np.ndarray], n_modalities: int, directory: Path
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(ids, signatures, presence flags, alive flags) of the slot table, agreeing in length."""
    try:
        ids, sigs = slots["ids"], slots["signatures"]
        present, alive = slots["present"], slots["alive"]
    except KeyError:
        raise VectorIndexError(f"The vector index in {directory} is damaged (its slot table "
                               "is incomplete).") from None
    n = len(alive) if alive.ndim == 1 else -1
    if ids.ndim != 1 or ids.dtype.kind not in "US" or sigs.ndim != 1 or \
            sigs.dtype.kind not in "US" or alive.dtype != bool or present.dtype != bool or \
            present.shape != (n, n_modalities) or len(ids) != n or len(sigs) != n:
        raise VectorIndexError(f"The vector index in {directory} is damaged (its slot table "
                               "does not fit together).")
    return ids, sigs, present, alive


def _check_faiss(index: VectorIndex, directory: Path) -> None:
    """The faiss indexes agree with the slot table: as many rows as live items, the index's
    width, and (flat) ids that are exactly the live slots."""
    faiss = load_faiss()
    for part in (index.flat, index.ann):
        if part is None:
            continue
        if part.ntotal != len(index) or part.d != index.width:
            raise VectorIndexError(f"The vector index in {directory} is inconsistent "
                                   f"({part.ntotal} rows of width {part.d} for {len(index)} "
                                   f"items of width {index.width}).")
    try:
        ids = faiss.vector_to_array(faiss.downcast_index(index.flat).id_map)
    except (AttributeError, RuntimeError):
        raise VectorIndexError(f"The vector index in {directory} is damaged (its exact "
                               "index has no id map).") from None
    if len(ids) > 1 and not (ids[1:] > ids[:-1]).all():    # appended in slot order
        ids = np.sort(ids)
    if len(ids) != len(index) or not np.array_equal(ids, index.alive_slots):
        raise VectorIndexError(f"The vector index in {directory} is damaged (its ids are "
                               "not the live slots).")


def index_dir(store: Store, dataset: str, encoder: str, version: str,
              storage: str = "float32") -> Path:
    """Where a dataset's persisted index lives: beside the database, per encoder version and
    storage type."""
    return config.artifacts_dir(store.path, "indexes", path_part(dataset),
                                path_part(f"{encoder}@{version}"), storage)


# -- the index of a dataset, in step with the store ------------------------------------------
def index_for_dataset(store: Store, dataset: str, encoder: str | None = None,
                      version: str | None = None, storage: str = "float32", ann: str = "auto",
                      persist: bool = True, progress: ProgressCallback | None = None,
                      ann_min_items: int | None = None, plan: bool = True) -> VectorIndex:
    """The index of a dataset's item vectors (one encoder version), kept current.

    Loads the persisted index if the stored vectors did not change since it was written
    (one fingerprint query); otherwise applies the changes incrementally (or rebuilds),
    saves, and returns it. `ann`: auto (IVF above `vector_index.ANN_MIN_ITEMS` items), always,
    never. Without `encoder`, the newest vectors of the dataset are used. `persist=False` (and
    in-memory databases) keeps everything in memory. `ann_min_items` overrides the size
    above which the approximate index is built and used. Before anything is built or loaded
    into memory, `plan_storage` checks the memory budget (`plan=False` skips it): an index
    that would not fit is built as float16, then without its approximate part, and refused
    with a clear `VectorIndexError` when even that would not fit; `meta["memory_plan"]` says
    why. A save that fails (a full disk...) keeps the index in memory with a
    `meta["warning"]`.
    """
    # read at call time, so a setting of vector_index.ANN_MIN_ITEMS counts here too
    ann_min_items = int(ann_min_items or vector_index.ANN_MIN_ITEMS)
    if ann not in ANN_SETTINGS:
        raise VectorIndexError(f"Unknown ann setting {ann!r}; use auto, always or never.")
    encoder, version = resolve_encoder(store, dataset, encoder, version)
    persist = persist and str(store.path) != ":memory:"
    fingerprint = store.embedding_fingerprint(dataset, encoder, version)
    key = {"database": str(Path(store.path).resolve()) if persist else ":memory:",
           "dataset": dataset, "encoder": encoder, "version": version}
    directory = None
    if persist:
        try:
            directory = index_dir(store, dataset, encoder, version, storage)
        except OSError:                    # no writable folder beside the database
            directory = None
    index = _saved_index(directory, key, ann_min_items)
    if index is not None and index.meta.get("fingerprint") == fingerprint and \
            index.meta.get("ann") == ann and (ann != "auto" or not _lacks_ann(index)):
        return index
    with store.memory_limited(DUCKDB_BUILD_BYTES):
        dims = store.embedding_dims(dataset, encoder, version)
    if not dims:
        raise VectorIndexError(f"Dataset '{dataset}' has no vectors from {encoder}@{version} "
                               f"for its catalog items: run `python -m recsys embed --dataset "
                               f"{dataset}`.")
    if plan:
        n_items = _count_items(store, dataset, encoder, version)
        wants_ann = ann == "always" or (ann == "auto" and n_items >= ann_min_items)
        chosen = plan_storage(n_items, int(sum(dims.values())), storage, wants_ann)
        if chosen.storage != storage or chosen.ann != wants_ann:
            index = index_for_dataset(store, dataset, encoder, version, chosen.storage,
                                      "never" if wants_ann and not chosen.ann else ann,
                                      persist, progress, ann_min_items, plan=False)
            index.meta = {**index.meta, "memory_plan": chosen.reason}
            return index
    if index is not None and (index.dims != {m: dims[m] for m in order_modalities(dims)}
                              or index.storage != storage):
        index = None
    t0 = time.perf_counter()
    with store.memory_limited(DUCKDB_BUILD_BYTES):
        index, action = _updated_or_built(index, directory, store, dataset, encoder, version,
                                          dims, storage, ann_min_items, progress)
    wants = ann == "always" or (ann == "auto" and len(index) >= index.ann_min_items)
    if ann == "never" or not wants:
        index.ann, index.nprobe = None, 0
    elif index.ann is None or action == "built":
        index.build_ann(progress=progress)
    meta = {**key, "fingerprint": fingerprint, "ann": ann, "action": action,
            "seconds": round(time.perf_counter() - t0, 3)}
    return _saved_or_in_memory(index, directory, meta)


def _saved_index(directory: Path | None, key: Mapping[str, str], ann_min_items: int
                 ) -> VectorIndex | None:
    """The index saved in `directory` for this database, dataset and encoder version,
    memory-mapped; None when there is none or it is damaged."""
    if directory is None or not (directory / "manifest.json").is_file():
        return None
    try:
        index = load_index(directory, mmap=True)
    except VectorIndexError:
        return None
    if any(index.meta.get(k) != v for k, v in key.items()):
        return None
    index.ann_min_items = ann_min_items
    return index


def _lacks_ann(index: VectorIndex) -> bool:
    """The index is big enough for an approximate part and has none."""
    return index.ann is None and len(index) >= index.ann_min_items


def _updated_or_built(saved: VectorIndex | None, directory: Path | None, store: Store,
                      dataset: str, encoder: str, version: str, dims: Mapping[str, int],
                      storage: str, ann_min_items: int, progress: ProgressCallback | None
                      ) -> tuple[VectorIndex, str]:
    """(index, "updated" | "checked" | "built"): the saved index reopened writable with the
    store's changes applied, or a full build when there is none or too many slots went
    stale."""
    if saved is not None and directory is not None:
        index = load_index(directory, mmap=False)
        index.ann_min_items = ann_min_items
        changed = _sync(index, store, dataset, encoder, version, progress)
        if index.stale_share <= REBUILD_STALE_SHARE:
            return index, "updated" if changed else "checked"
    index = _build(store, dataset, encoder, version, dims, storage, progress)
    index.ann_min_items = ann_min_items
    return index, "built"


def _saved_or_in_memory(index: VectorIndex, directory: Path | None, meta: dict
                        ) -> VectorIndex:
    """The index saved and reopened memory-mapped; kept in memory when it cannot be saved (a
    full disk, a read-only folder: the reason in `meta["warning"]`)."""
    warning = None
    if directory is not None:
        try:
            save_index(index, directory, meta)
            return load_index(directory, mmap=True)
        except IndexNotSaved as exc:
            warning = str(exc)
        except VectorIndexError:
            pass
    index.meta = {**meta, "persisted": False, **({"warning": warning} if warning else {})}
    return index


def _build(store: Store, dataset: str, encoder: str, version: str, dims: Mapping[str, int],
           storage: str, progress: ProgressCallback | None) -> VectorIndex:
    """Full build: stream each modality's vectors from DuckDB into one preallocated matrix
    (one copy; float16 when the index stores float16, so the copy is half the size and the
    stored values the same), then hand it to faiss in float32 chunks."""
    index = VectorIndex(dims, storage)
    sigs = store.embedding_signatures(dataset, encoder, version)
    ids, signature, _ = _item_signatures(sigs, index.modalities)
    pos = pd.Index(ids)
    staging = np.float16 if storage == "float16" else np.float32
    rows = np.zeros((len(ids), index.width), dtype=staging)
    present = np.zeros((len(ids), len(index.modalities)), dtype=bool)
    done, total = 0, len(sigs)
    for j, m in enumerate(index.modalities):
        block = index.layout.block(m)
        for batch_ids, vecs in store.embedding_batches(dataset, encoder, version, m,
                                                       ordered=False):
            at = pos.get_indexer(batch_ids)
            normalised = normalise_rows(np.array(vecs, dtype=np.float32))
            rows[at, block] = normalised
            present[at, j] = np.abs(normalised).sum(axis=1) > 0
            done += len(batch_ids)
            report(progress, done, total, f"loading {m} vectors", stage="load")
    for start in range(0, len(ids), CHUNK):
        part = slice(start, start + CHUNK)
        index.append_rows(ids[part], rows[part].astype(np.float32), present[part],
                          signature[part])
    return index


def _sync(index: VectorIndex, store: Store, dataset: str, encoder: str, version: str,
          progress: ProgressCallback | None) -> bool:
    """Apply added / removed / rewritten items from the store; True if anything changed."""
    sigs = store.embedding_signatures(dataset, encoder, version)
    ids, signature, _ = _item_signatures(sigs, index.modalities)
    current = dict(zip(ids, signature))
    slots = index.slot_by_item
    removed = [i for i in slots if i not in current]
    changed = [i for i, s in current.items() if i in slots and index.signatures[slots[i]] != s]
    added = [i for i in ids if i not in slots]
    if not (removed or changed or added):
        return False
    report(progress, 0, 1, f"updating index: {len(added):,} new, {len(changed):,} "
           f"changed, {len(removed):,} removed items", stage="update")
    index.remove(removed + changed)
    fresh = sorted(added + changed)
    if fresh:
        vecs = {m: np.zeros((len(fresh), index.dims[m]), dtype=np.float32)
                for m in index.modalities}
        pres = {m: np.zeros(len(fresh), dtype=bool) for m in index.modalities}
        pos = pd.Index(fresh)
        for m in index.modalities:
            for batch_ids, v in store.embedding_batches(dataset, encoder, version, m,
                                                        item_ids=fresh):
                at = pos.get_indexer(batch_ids)
                vecs[m][at] = v
                pres[m][at] = True
        index.add(fresh, vecs, pres, [current[i] for i in fresh])
    return True


def _count_items(store: Store, dataset: str, encoder: str, version: str) -> int:
    """Items with vectors of one encoder version (the most of any modality): the size a
    build plans for, from one small aggregate query."""
    sets = store.embedding_sets(dataset)
    mine = sets[(sets["encoder"] == encoder) & (sets["version"] == version)]
    return int(mine["n_items"].max()) if len(mine) else 0


def _item_signatures(sigs: pd.DataFrame, modalities: Sequence[str]
                     ) -> tuple[list[str], list[str], np.ndarray]:
    """(item ids sorted, one signature string per item, presence flags) from the per-modality
    signature rows of `Store.embedding_signatures`."""
    if sigs.empty:
        return [], [], np.zeros((0, len(modalities)), dtype=bool)
    wide = sigs.pivot(index="item_id", columns="modality", values="signature")
    wide = wide.reindex(columns=list(modalities))
    ids = [str(i) for i in wide.index]
    flags = wide.notna().to_numpy()
    cols = [wide[m].fillna("-").astype(str) for m in modalities]
    joined = cols[0]
    for col in cols[1:]:
        joined = joined + "|" + col
    return ids, joined.tolist(), flags


def resolve_encoder(store: Store, dataset: str, encoder: str | None = None,
                    version: str | None = None) -> tuple[str, str]:
    """(encoder, version) to search with: as given, else the newest version of `encoder`, else
    the most recently written vectors of the dataset; a clear error when there are none."""
    found = newest_vectors(store, dataset, encoder, version)
    if found is None:
        which = f" from {encoder}{'@' + version if version else ''}" if encoder else ""
        raise VectorIndexError(f"Dataset '{dataset}' has no item vectors{which} yet: run "
                               f"`python -m recsys embed --dataset {dataset}` first.")
    return found
