"""Item vector search at catalog scale: exact and approximate (faiss), filters, persistence.

An item has vectors of any set of named modalities ("image", "text", later video or features
a user brings), each with its own dimension. The index keeps one row per item *slot*: the
item's L2-normalised modality vectors side by side, a missing modality as a zero block. A
weighted multimodal query is then one inner product per row,
``q = [w_1 q_1 ; w_2 q_2 ; ...]`` with ``sum w_m = 1`` over the modalities the item has (items
lacking a modality form their own small group, searched with the weights renormalised over
what they have, so their score means the same as everyone else's).

* Exact search: faiss ``IndexFlatIP`` (float32) or ``IndexScalarQuantizer`` fp16 (half the
  bytes to stream; scores differ by < 1e-3) behind an ``IndexIDMap2`` whose ids are the slots.
  A query is memory-bound, so it runs on one thread (more threads only wait on a busy box).
* Approximate search: a faiss IVF index (inverted lists of fp16 codes) over the same rows,
  built above `ANN_MIN_ITEMS` items; its `nprobe` is calibrated at build time so recall@10
  against exact search reaches `TARGET_RECALL`; the top candidates are re-scored exactly.
* Filters: a boolean mask over the items becomes a faiss ``IDSelectorBitmap`` applied inside
  the search (the flat scan then reads only the allowed rows; the IVF scan widens its probes by
  the inverse of the kept share).
* Persistence: `VectorIndex.for_dataset(store, dataset)` keeps the index files beside the
  database (``artifacts/<db stem>/indexes/<dataset>/<encoder>@<version>/<storage>/``: two
  database files in one folder never share them), keyed in the manifest by the database
  file, dataset and encoder version, and written atomically (a new generation of files, then
  the manifest that names them). On the next call a one-query fingerprint of the
  stored vectors says whether anything changed; if so, only added / removed / rewritten items
  are applied (slots of removed items are freed, new vectors appended), and the index is
  rebuilt when more than a third of its slots are stale. Loading memory-maps the files: no
  copy of the vectors is made, and a million-item index opens in well under a second.
"""

from __future__ import annotations

import gc
import json
import os
import re
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from recsys.core import config
from recsys.core.errors import RecsysError, disk_full_message, is_disk_full
from recsys.core.files import atomic_path, path_part
from recsys.core.progress import ProgressCallback, report
from recsys.store import Store

FORMAT = 1
STORAGES = ("float32", "float16")
METHODS = ("auto", "exact", "ann")
ANN_MIN_ITEMS = 50_000
"""Above this many items an approximate index is built and used (see docs/scale.md: exact
fp32 search of two 256-d modalities takes ~10 ms at 50k items on a busy 2-core box)."""
TARGET_RECALL = 0.98
"""Recall@10 against exact search that the IVF `nprobe` calibration aims for (>= 0.95 asked);
the calibrated nprobe is then doubled as a margin for queries unlike the calibration sample."""
EXACT_CANDIDATES = 5_000
"""A filter keeping fewer items than this is searched exactly (the flat scan with a selector
reads only those rows); more, and the IVF index answers with its probes widened."""
FILTER_PROBE_FACTOR = 3
"""A filtered IVF search probes this many times nprobe / (share of items kept) lists: the
filtered top-k lie further from the query than the unfiltered one (1x: recall@10 0.87 at 1M
items with 17% kept; 3x: 1.0 at 300k, ~20 ms at 1M on 2 busy cores)."""
REBUILD_STALE_SHARE = 1 / 3
CHUNK = 65_536
MODALITY_ORDER = ("image", "text")


class VectorIndexError(RecsysError):
    """A vector index cannot be built, loaded or queried as asked."""


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


GENERATION_FILE = re.compile(r"(flat|ann)\.[0-9a-f]{1,16}-[0-9a-f]{6}\.faiss|"
                             r"slots\.[0-9a-f]{1,16}-[0-9a-f]{6}\.npz")


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
# -- memory budget of a build (issue 19) ---------------------------------------------------------
BUILD_BYTES_PER_CELL = {"float32": 11.0, "float16": 8.0}
"""Peak bytes per item x dimension cell of building the index in memory (`_build`: the float32
rows matrix streamed from DuckDB plus faiss's copy while its buffer grows), measured with
ru_maxrss on 200k items x 512 dimensions: 10.8 (float32), 7.5 (float16)."""
ANN_BYTES_PER_CELL = 2.5
"""The IVF part on top (fp16 codes, k-means sample): measured +1.4 to +2.7 bytes per cell."""
INDEX_MEMORY_FRACTION = 0.5
"""Share of the memory this process may still use (`recsys.core.memory.memory_budget`) that
building one index may take."""


def index_build_bytes(n_items: int, width: int, storage: str, ann: bool) -> int:
    """Estimated peak memory of building (or loading for an update) an index in memory."""
    per_cell = BUILD_BYTES_PER_CELL[storage] + (ANN_BYTES_PER_CELL if ann else 0.0)
    return int(per_cell * n_items * width) + 64 * 2**20


def _check_copy(nbytes: int, what: str) -> None:
    """Refuse an in-memory copy larger than the memory this process may still use."""
    from recsys.core.memory import format_gb, memory_budget

    budget = memory_budget()
    if nbytes > INDEX_MEMORY_FRACTION * budget.available:
        raise VectorIndexError(
            f"{what[0].upper()}{what[1:]} needs {format_gb(nbytes)}, over half the "
            f"{budget.describe()}. Free memory or raise the memory limit.")


@dataclass(frozen=True)
class StoragePlan:
    """How an index is built under the memory budget: its storage, whether it gets an IVF
    part, the estimated bytes against the budget, and why (kept in the index's meta)."""

    storage: str
    ann: bool
    needed_bytes: int
    budget_bytes: int
    reason: str


def plan_storage(n_items: int, width: int, storage: str = "float32", ann: bool = False,
                 available: int | None = None,
                 fraction: float = INDEX_MEMORY_FRACTION) -> StoragePlan:
    """The index a build can afford: as asked when it fits `fraction` of the memory this
    process may still use (`available`, default `memory_budget()`: free RAM, cgroup limit,
    RLIMIT_AS / RLIMIT_DATA); else float16 storage (half the bytes; scores within 1e-3);
    else float16 without the approximate part (exact search still answers); else a
    `VectorIndexError` with the numbers (never an out-of-memory traceback halfway)."""
    from recsys.core.memory import format_gb, memory_budget

    if available is None:
        measured = memory_budget()
        free, where = measured.available, measured.describe()
    else:
        free, where = int(available), f"{format_gb(int(available))} available"
    budget = int(fraction * free)
    options = [(storage, ann)]
    if storage != "float16":
        options.append(("float16", ann))
    if ann:
        options.append(("float16", False))
    for n, (kind, with_ann) in enumerate(options):
        need = index_build_bytes(n_items, width, kind, with_ann)
        if need <= budget:
            if n == 0:
                reason = f"fits: {format_gb(need)} of {format_gb(budget)}"
            else:
                first = index_build_bytes(n_items, width, storage, ann)
                reason = (f"{storage}{' with IVF' if ann else ''} would need "
                          f"{format_gb(first)}, over the {format_gb(budget)} budget "
                          f"({fraction:.0%} of the {where}): built as {kind}"
                          f"{' with IVF' if with_ann else ', exact search only'}")
            return StoragePlan(kind, with_ann, need, budget, reason)
    smallest = index_build_bytes(n_items, width, "float16", False)
    raise VectorIndexError(
        f"The search index of {n_items:,} products ({width} numbers each) needs about "
        f"{format_gb(smallest)} of memory even stored as float16; an index may take "
        f"{format_gb(budget)} ({fraction:.0%} of the {where}). Free memory (close other "
        "programs), raise the container's or the process's memory limit, or search a "
        "smaller catalog.")


# -- small helpers -------------------------------------------------------------------------------
_QUERY_THREADS_SET = False


def _faiss():
    """The faiss module, set to one OpenMP thread for queries on first use (a single query is
    memory-bound: on 2 busy cores, 2 threads made a 10k-item search 25 ms instead of 2 ms;
    builds raise the count inside `faiss_threads`)."""
    global _QUERY_THREADS_SET
    import faiss

    if not _QUERY_THREADS_SET:
        faiss.omp_set_num_threads(1)
        _QUERY_THREADS_SET = True
    return faiss


@contextmanager
def faiss_threads(n: int) -> Iterator[None]:
    """Run faiss (OpenMP) with `n` threads in a block, then restore the previous setting."""
    faiss = _faiss()
    before = faiss.omp_get_max_threads()
    if n != before:
        faiss.omp_set_num_threads(max(1, n))
    try:
        yield
    finally:
        if n != before:
            faiss.omp_set_num_threads(before)


def build_threads() -> int:
    """Threads for building (k-means, adding): $RECSYS_INDEX_THREADS, else the idle cores."""
    from recsys.core.threads import thread_count

    return thread_count("RECSYS_INDEX_THREADS")


def order_modalities(names: Iterable[str]) -> list[str]:
    """Modalities in a stable order: image, text, then the others alphabetically."""
    names = set(names)
    return [m for m in MODALITY_ORDER if m in names] + sorted(names - set(MODALITY_ORDER))


def normalise_rows(mat: np.ndarray) -> np.ndarray:
    """L2-normalise rows in place (zero rows stay zero); returns `mat`."""
    norms = np.sqrt(np.einsum("ij,ij->i", mat, mat))
    np.divide(mat, np.where(norms > 0, norms, 1.0)[:, None], out=mat)
    return mat



@dataclass
class Hits:
    """Top-k of a search, best first: slots, fused scores, and each modality's cosine with the
    query (-inf where the item lacks that modality or it was not queried)."""

    slots: np.ndarray
    scores: np.ndarray
    parts: dict[str, np.ndarray] = field(default_factory=dict)
    method: str = "exact"

    def __len__(self) -> int:
        return len(self.slots)


# -- the index -----------------------------------------------------------------------------------
class VectorIndex:
    """Exact (+ optional approximate) search over items with named vector modalities.

    Build one with `VectorIndex.for_dataset(store, dataset)` (persisted, incremental) or in
    memory with `VectorIndex(dims)` then `add(...)`. Query with `search(queries, weights, k,
    allowed=...)`; `item_ids` lists the indexed items and `mask_for(ids)` turns a set of item
    ids into the boolean mask `search` takes.
    """

    def __init__(self, dims: Mapping[str, int], storage: str = "float32",
                 ann_min_items: int = ANN_MIN_ITEMS):
        if storage not in STORAGES:
            raise VectorIndexError(f"Unknown vector storage {storage!r}; use one of "
                              f"{', '.join(STORAGES)}.")
        if not dims:
            raise VectorIndexError("A vector index needs at least one modality.")
        self.modalities = order_modalities(dims)
        self.dims = {m: int(dims[m]) for m in self.modalities}
        self.offsets = dict(zip(self.modalities, np.cumsum([0] + [self.dims[m] for m in
                                                                 self.modalities])[:-1]))
        self.width = int(sum(self.dims.values()))
        self.storage = storage
        self.ann_min_items = int(ann_min_items)
        self.flat = self._new_flat()
        self.ann = None
        self.nprobe = 0
        self.slot_ids = np.empty(0, dtype=object)       # slot -> item id (None when freed)
        self.signatures = np.empty(0, dtype=object)     # slot -> content signature
        self.present = np.zeros((0, len(self.modalities)), dtype=bool)
        self.alive = np.zeros(0, dtype=bool)
        self._slot_map: dict[str, int] | None = {}
        self._cache: dict[str, object] = {}
        self.readonly = False
        self.meta: dict = {}

    # -- construction --------------------------------------------------------------------------
    def _new_flat(self):
        faiss = _faiss()
        if self.storage == "float16":
            base = faiss.IndexScalarQuantizer(self.width, faiss.ScalarQuantizer.QT_fp16,
                                              faiss.METRIC_INNER_PRODUCT)
        else:
            base = faiss.IndexFlatIP(self.width)
        return faiss.IndexIDMap2(base)

    @property
    def _slot(self) -> dict[str, int]:
        """Item id -> slot. Built lazily: a million-entry dict takes ~0.5 s, and a photo
        search never needs it (only exclusions, `position`, `vector` and updates do)."""
        if self._slot_map is None:
            live = np.flatnonzero(self.alive)
            gc_was_on = gc.isenabled()
            gc.disable()               # a million small objects: no collection passes meanwhile
            try:
                self._slot_map = dict(zip(self.slot_ids[live].tolist(), live.tolist()))
            finally:
                if gc_was_on:
                    gc.enable()
        return self._slot_map

    def __len__(self) -> int:
        if "len" not in self._cache:
            self._cache["len"] = int(self.alive.sum())
        return self._cache["len"]  # type: ignore[return-value]

    @property
    def n_slots(self) -> int:
        return len(self.alive)

    @property
    def item_ids(self) -> list[str]:
        """Indexed items, in slot order (the order of `mask_for`'s masks)."""
        if "item_ids" not in self._cache:
            self._cache["item_ids"] = [str(i) for i in self.slot_ids[self.alive]]
        return self._cache["item_ids"]  # type: ignore[return-value]

    @property
    def alive_slots(self) -> np.ndarray:
        if "alive_slots" not in self._cache:
            self._cache["alive_slots"] = np.flatnonzero(self.alive)
        return self._cache["alive_slots"]  # type: ignore[return-value]

    def position(self, item_id: str) -> int | None:
        """Row of an item in `item_ids` (None when it is not indexed)."""
        slot = self._slot.get(str(item_id))
        if slot is None:
            return None
        return int(np.searchsorted(self.alive_slots, slot))

    def has(self, item_id: str, modality: str) -> bool:
        slot = self._slot.get(str(item_id))
        return slot is not None and bool(self.present[slot, self.modalities.index(modality)])

    def rows(self, slots: np.ndarray) -> np.ndarray:
        """The stored (normalised, concatenated) rows of some slots as float32."""
        slots = np.asarray(slots, dtype=np.int64)
        if not len(slots):
            return np.zeros((0, self.width), dtype=np.float32)
        return self.flat.reconstruct_batch(slots)

    def vector(self, item_id: str, modality: str) -> np.ndarray | None:
        """One item's stored vector of a modality (None if the item has none)."""
        slot = self._slot.get(str(item_id))
        if slot is None or modality not in self.dims or not self.has(item_id, modality):
            return None
        off, d = self.offsets[modality], self.dims[modality]
        return self.rows(np.array([slot]))[0, off:off + d].copy()

    def matrix(self, modality: str) -> np.ndarray:
        """All items' vectors of one modality (rows follow `item_ids`; zero rows where absent).

        Materialises a copy (n x d float32): meant for small catalogs and older callers; the
        search itself never needs it.
        """
        if modality not in self.dims:
            raise VectorIndexError(f"The index has no {modality} vectors.")
        off, d = self.offsets[modality], self.dims[modality]
        _check_copy(len(self) * d * 4, f"a copy of the {len(self):,} {modality} vectors")
        out = np.empty((len(self), d), dtype=np.float32)
        slots = self.alive_slots
        for start in range(0, len(slots), CHUNK):
            out[start:start + CHUNK] = self.rows(slots[start:start + CHUNK])[:, off:off + d]
        return out

    def present_mask(self, modality: str) -> np.ndarray:
        """Which of `item_ids` have a vector of `modality`."""
        return self.present[self.alive, self.modalities.index(modality)]

    def _writable(self) -> None:
        if self.readonly:
            raise VectorIndexError("This index was opened memory-mapped (read-only); reload it "
                              "with `VectorIndex.load(path, mmap=False)` to change it.")

    def add(self, item_ids: Sequence[str], vectors: Mapping[str, np.ndarray],
            present: Mapping[str, np.ndarray] | None = None,
            signatures: Sequence[str] | None = None) -> None:
        """Add items (new ids; use `remove` first to replace one).

        `vectors[m]` is an (n, dims[m]) array (rows of absent vectors may be anything);
        `present[m]` flags which rows hold a real vector (default: non-zero rows).
        """
        self._writable()
        n = len(item_ids)
        if n == 0:
            return
        dup = [i for i in item_ids if str(i) in self._slot]
        if dup:
            raise VectorIndexError(f"Items already in the index: {', '.join(map(str, dup[:5]))}")
        rows = np.zeros((n, self.width), dtype=np.float32)
        flags = np.zeros((n, len(self.modalities)), dtype=bool)
        for j, m in enumerate(self.modalities):
            if m not in vectors or vectors[m] is None:
                continue
            mat = np.asarray(vectors[m], dtype=np.float32)
            if mat.shape != (n, self.dims[m]):
                raise VectorIndexError(f"{m} vectors have shape {mat.shape}, expected "
                                  f"{(n, self.dims[m])}.")
            block = rows[:, self.offsets[m]:self.offsets[m] + self.dims[m]]
            block[...] = mat
            normalise_rows(block)
            has = np.abs(block).sum(axis=1) > 0
            if present is not None and m in present:
                has &= np.asarray(present[m], dtype=bool)
            block[~has] = 0.0
            flags[:, j] = has
        self._append(list(map(str, item_ids)), rows, flags,
                     list(signatures) if signatures is not None else [""] * n)

    def _append(self, ids: list[str], rows: np.ndarray, flags: np.ndarray,
                sigs: list[str]) -> None:
        start = self.n_slots
        slots = np.arange(start, start + len(ids), dtype=np.int64)
        self.flat.add_with_ids(rows, slots)
        if self.ann is not None:
            self.ann.add_with_ids(rows, slots)
        self.slot_ids = np.concatenate([self.slot_ids, np.array(ids, dtype=object)])
        self.signatures = np.concatenate([self.signatures, np.array(sigs, dtype=object)])
        self.present = np.vstack([self.present, flags])
        self.alive = np.concatenate([self.alive, np.ones(len(ids), dtype=bool)])
        self._slot.update(zip(ids, slots.tolist()))
        self._cache.clear()

    def remove(self, item_ids: Iterable[str]) -> int:
        """Remove items (unknown ids are ignored); returns how many were removed."""
        self._writable()
        slots = np.array([self._slot.pop(str(i)) for i in item_ids if str(i) in self._slot],
                         dtype=np.int64)
        if not len(slots):
            return 0
        faiss = _faiss()
        self.flat.remove_ids(faiss.IDSelectorBatch(slots))
        if self.ann is not None:
            self.ann.remove_ids(faiss.IDSelectorBatch(slots))
        self.alive[slots] = False
        self.slot_ids[slots] = None
        self.present[slots] = False
        self._cache.clear()
        return len(slots)

    @property
    def stale_share(self) -> float:
        return 0.0 if not self.n_slots else 1.0 - len(self) / self.n_slots

    # -- approximate index ---------------------------------------------------------------------
    def build_ann(self, nlist: int | None = None, target_recall: float = TARGET_RECALL,
                  progress: ProgressCallback | None = None, seed: int = 0) -> None:
        """Train and fill an IVF index (fp16 codes) over the current rows, then calibrate
        `nprobe` on sample queries so recall@10 against exact search reaches `target_recall`."""
        self._writable()
        faiss = _faiss()
        n = len(self)
        if n < 2:
            self.ann = None
            return
        nlist = int(nlist or max(16, min(8192, round(2 * np.sqrt(n)))))
        nlist = max(1, min(nlist, n // 39))         # faiss wants >= 39 training points a list
        rng = np.random.default_rng(seed)
        slots = self.alive_slots
        sample = np.sort(rng.choice(slots, min(n, 48 * nlist), replace=False))
        with faiss_threads(build_threads()):
            report(progress, 0, 3, f"training {nlist} IVF lists", stage="ann")
            quantizer = faiss.IndexFlatIP(self.width)
            ann = faiss.IndexIVFScalarQuantizer(quantizer, self.width, nlist,
                                                faiss.ScalarQuantizer.QT_fp16,
                                                faiss.METRIC_INNER_PRODUCT)
            ann.cp.seed = seed
            ann.train(self.rows(sample))
            ann.quantizer_trains_alone = 0
            for start in range(0, n, CHUNK):
                part = slots[start:start + CHUNK]
                ann.add_with_ids(self.rows(part), part)
                report(progress, 1 + (start + len(part)) / n, 3, "filling IVF lists",
                       stage="ann")
        self.ann = ann
        self.nprobe = min(self.ann.nlist, 2 * self.calibrate(target_recall, seed=seed))
        report(progress, 3, 3, f"IVF ready (nprobe {self.nprobe})", stage="ann")

    def calibrate(self, target_recall: float = TARGET_RECALL, queries: int = 64, k: int = 10,
                  seed: int = 0) -> int:
        """Smallest nprobe (doubling) whose recall@k against exact search reaches the target.

        The sample queries are like the app's photo search: a random item's vector of one
        modality, plus noise, compared with every modality of that dimension (equal weights).
        """
        faiss = _faiss()
        if self.ann is None:
            return 0
        rng = np.random.default_rng(seed + 1)
        slots = rng.choice(self.alive_slots, min(queries, len(self)), replace=False)
        rows = self.rows(slots)
        qs = np.zeros((len(rows), self.width), dtype=np.float32)
        for i, row in enumerate(rows):
            j = i % len(self.modalities)
            m = self.modalities[j] if self.present[slots[i], j] else self.modalities[
                int(np.argmax(self.present[slots[i]]))]
            v = row[self.offsets[m]:self.offsets[m] + self.dims[m]]
            v = v + rng.normal(0, 0.15 / np.sqrt(len(v)), len(v)).astype(np.float32)
            v /= max(float(np.linalg.norm(v)), 1e-12)
            same = [x for x in self.modalities if self.dims[x] == self.dims[m]]
            for x in same:
                qs[i, self.offsets[x]:self.offsets[x] + self.dims[x]] = v / len(same)
        with faiss_threads(build_threads()):
            _, truth = self.flat.search(qs, k)
            nlist = self.ann.nlist
            nprobe = 1
            while True:
                params = faiss.SearchParametersIVF(nprobe=nprobe)
                _, got = self.ann.search(qs, k, params=params)
                recall = np.mean([len(set(a[a >= 0]) & set(b[b >= 0])) / max(1, (b >= 0).sum())
                                  for a, b in zip(got, truth)])
                if recall >= target_recall or nprobe >= nlist:
                    return int(nprobe)
                nprobe = min(nlist, nprobe * 2)

    # -- search --------------------------------------------------------------------------------
    def mask_for(self, item_ids: Iterable[str]) -> np.ndarray:
        """Boolean mask over `item_ids` of the given ids (unknown ids are ignored)."""
        if "pd_index" not in self._cache:
            self._cache["pd_index"] = pd.Index(self.item_ids)
        pos = self._cache["pd_index"].get_indexer(pd.Index([str(i) for i in item_ids]))
        mask = np.zeros(len(self), dtype=bool)
        mask[pos[pos >= 0]] = True
        return mask

    def _groups(self) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """(presence pattern, slot mask) per pattern among the items; the mask is None when
        every item shares the pattern (the usual case: one search, no selector)."""
        if "groups" not in self._cache:
            bits = (self.present.astype(np.int64) << np.arange(len(self.modalities))).sum(axis=1)
            bits = np.where(self.alive, bits, 0)
            counts = np.bincount(bits, minlength=2 ** len(self.modalities))
            codes = [c for c in np.flatnonzero(counts) if c != 0]
            patterns = {c: ((c >> np.arange(len(self.modalities))) & 1).astype(bool)
                        for c in codes}
            if len(codes) == 1 and counts[codes[0]] == len(self):
                groups = [(patterns[codes[0]], None)]
            else:
                groups = [(patterns[c], bits == c) for c in codes]
            self._cache["groups"] = groups
        return self._cache["groups"]  # type: ignore[return-value]

    def search(self, queries: Mapping[str, np.ndarray | None], weights: Mapping[str, float]
               | None = None, k: int = 10, allowed: np.ndarray | None = None,
               exclude: Iterable[str] = (), method: str = "auto",
               nprobe: int | None = None) -> Hits:
        """Top-k items for per-modality query vectors.

        `queries[m]` is compared (cosine) with every item's modality-m vector; the fused score
        is the weighted mean of those cosines over the modalities the item has (weights
        renormalised; equal weights when the item's only modalities have weight 0).
        `allowed` is a boolean mask over `item_ids` (the filter); `exclude` item ids to leave
        out; `method` auto (approximate above `ann_min_items` candidates when an ANN index
        exists), exact or ann.
        """
        if method not in METHODS:
            raise VectorIndexError(f"Unknown search method {method!r}; use one of "
                              f"{', '.join(METHODS)}.")
        qs: dict[str, np.ndarray] = {}
        for m, q in queries.items():
            if q is None:
                continue
            if m not in self.dims:
                raise VectorIndexError(f"The index has no {m} vectors (it has "
                                  f"{', '.join(self.modalities)}).")
            q = np.asarray(q, dtype=np.float32).ravel()
            if q.shape[0] != self.dims[m]:
                raise VectorIndexError(f"query vector has {q.shape[0]} dimensions, the index's {m} "
                                  f"vectors {self.dims[m]}: was it made by another encoder?")
            norm = float(np.linalg.norm(q))
            qs[m] = q / norm if norm > 0 else q
        if not qs:
            raise VectorIndexError("search needs at least one query vector")
        w = {m: float((weights or {}).get(m, 1.0)) for m in qs}
        if any(v < 0 for v in w.values()):
            raise VectorIndexError("modality weights must be >= 0")
        k = int(k)
        excluded = {self._slot[str(i)] for i in exclude if str(i) in self._slot}
        if k <= 0 or len(self) == 0:
            return Hits(np.zeros(0, np.int64), np.zeros(0, np.float32),
                        {m: np.zeros(0, np.float32) for m in self.modalities}, "exact")
        allowed_slots = None
        n_candidates = len(self)
        if allowed is not None:
            allowed = np.asarray(allowed, dtype=bool)
            if allowed.shape != (len(self),):
                raise VectorIndexError(f"the filter mask has {allowed.shape[0]} entries, the index "
                                  f"{len(self)} items")
            if self.n_slots == len(self):                   # no freed slots: same order
                allowed_slots = allowed
            else:
                allowed_slots = np.zeros(self.n_slots, dtype=bool)
                allowed_slots[self.alive_slots[allowed]] = True
            n_candidates = int(np.count_nonzero(allowed))
            if n_candidates == 0:
                return Hits(np.zeros(0, np.int64), np.zeros(0, np.float32),
                            {m: np.zeros(0, np.float32) for m in self.modalities}, "exact")
        k = min(k, n_candidates)         # k past the catalog would only allocate (1, k) arrays
        use_ann = self.ann is not None and (method == "ann" or (
            method == "auto" and len(self) >= self.ann_min_items
            and n_candidates >= min(EXACT_CANDIDATES, self.ann_min_items)))
        if method == "ann" and self.ann is None:
            raise VectorIndexError("This index has no approximate (IVF) part: it is built "
                                   f"above {self.ann_min_items:,} items, or call build_ann().")
        fetch = k + len(excluded)
        cand_slots = []
        # queries run on one faiss thread (see `_faiss`)
        for pattern, group in self._groups():
            qvec = self._query_row(qs, w, pattern)
            if qvec is None:
                continue
            mask = group
            if allowed_slots is not None:
                mask = allowed_slots if mask is None else (mask & allowed_slots)
            if use_ann:
                _, got_i = self._search_ann(qvec, max(fetch + 16, 2 * fetch), mask,
                                            n_candidates, nprobe)
            else:
                _, got_i = self._search_flat(qvec, fetch, mask)
            cand_slots.append(got_i[got_i >= 0])
        slots = np.concatenate(cand_slots) if cand_slots else np.zeros(0, np.int64)
        if excluded:
            slots = slots[~np.isin(slots, list(excluded))]
        slots = np.unique(slots)
        # exact re-scoring of the candidates from the stored rows (fp16 / IVF codes are close
        # but not equal), then the final order; ties keep slot order
        rows = self.rows(slots)
        parts = {m: np.full(len(slots), -np.inf, dtype=np.float32) for m in self.modalities}
        fused = np.zeros(len(slots), dtype=np.float64)
        total = np.zeros(len(slots), dtype=np.float64)
        flags = self.present[slots]
        for j, m in enumerate(self.modalities):
            if m not in qs:
                continue
            off, d = self.offsets[m], self.dims[m]
            s = rows[:, off:off + d] @ qs[m]
            has = flags[:, j]
            parts[m] = np.where(has, s, -np.inf).astype(np.float32)
            fused += np.where(has, w[m] * s, 0.0)
            total += np.where(has, w[m], 0.0)
        queried = flags[:, [j for j, m in enumerate(self.modalities) if m in qs]]
        plain = np.zeros(len(slots))
        for j, m in enumerate(self.modalities):
            if m in qs:
                plain += np.where(flags[:, j], parts[m], 0.0)
        n_q = queried.sum(axis=1)
        score = np.where(total > 0, fused / np.where(total > 0, total, 1.0),
                         np.where(n_q > 0, plain / np.maximum(n_q, 1), -np.inf))
        order = np.lexsort((slots, -score))
        order = order[np.isfinite(score[order])][:k]
        return Hits(slots[order], score[order].astype(np.float32),
                    {m: v[order] for m, v in parts.items()}, "ann" if use_ann else "exact")

    def _query_row(self, qs: dict[str, np.ndarray], w: dict[str, float],
                   pattern: np.ndarray) -> np.ndarray | None:
        """The concatenated query for items with presence `pattern` (None if no overlap)."""
        mods = [m for j, m in enumerate(self.modalities) if pattern[j] and m in qs]
        if not mods:
            return None
        total = sum(w[m] for m in mods)
        eff = {m: (w[m] / total if total > 0 else 1.0 / len(mods)) for m in mods}
        row = np.zeros((1, self.width), dtype=np.float32)
        for m in mods:
            row[0, self.offsets[m]:self.offsets[m] + self.dims[m]] = eff[m] * qs[m]
        return row

    def _selector(self, mask: np.ndarray):
        faiss = _faiss()
        bits = np.packbits(mask, bitorder="little")
        sel = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bits))
        sel._bits = bits                      # keep the buffer alive as long as the selector
        return sel

    def _search_flat(self, q: np.ndarray, k: int, mask: np.ndarray | None
                     ) -> tuple[np.ndarray, np.ndarray]:
        faiss = _faiss()
        if mask is None:
            scores, ids = self.flat.search(q, k)
        else:
            params = faiss.SearchParameters(sel=self._selector(mask))
            scores, ids = self.flat.search(q, k, params=params)
        return scores[0], ids[0]

    def _search_ann(self, q: np.ndarray, k: int, mask: np.ndarray | None, n_candidates: int,
                    nprobe: int | None) -> tuple[np.ndarray, np.ndarray]:
        faiss = _faiss()
        probe = int(nprobe or self.nprobe or 16)
        if mask is not None:           # a filter keeps a share of each list: probe more lists
            share = max(n_candidates / max(len(self), 1), 1e-6)
            probe = int(min(self.ann.nlist, np.ceil(FILTER_PROBE_FACTOR * probe / share)))
            params = faiss.SearchParametersIVF(nprobe=probe, sel=self._selector(mask))
        else:
            params = faiss.SearchParametersIVF(nprobe=min(probe, self.ann.nlist))
        scores, ids = self.ann.search(q, k, params=params)
        return scores[0], ids[0]

    # -- persistence ---------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike, meta: Mapping | None = None) -> Path:
        """Write a new generation of files, then the manifest naming them (atomic), then
        delete older generations. Returns the manifest path.

        Every file goes to a temporary name first and is renamed when complete, and the
        manifest is written last: a write that fails (a full disk, a read-only folder) leaves
        the previous generation and its manifest as they were, and the files of the failed
        generation are deleted. The failure is raised as an `IndexNotSaved` whose message
        says so (the disk-full wording of the store when the disk or the size limit is full).
        """
        directory = Path(directory)
        files: dict[str, str] = {}
        try:
            return self._save(directory, meta, files)
        except (OSError, RuntimeError) as exc:      # faiss reports write errors as RuntimeError
            for name in files.values():
                (directory / name).unlink(missing_ok=True)
            raise IndexNotSaved(directory, exc) from exc

    def _save(self, directory: Path, meta: Mapping | None, files: dict[str, str]) -> Path:
        faiss = _faiss()
        directory.mkdir(parents=True, exist_ok=True)
        gen = f"{int(time.time() * 1000):x}-{uuid.uuid4().hex[:6]}"
        files["flat"] = f"flat.{gen}.faiss"
        with atomic_path(directory / files["flat"]) as tmp:
            faiss.write_index(self.flat, str(tmp))
        if self.ann is not None:
            files["ann"] = f"ann.{gen}.faiss"
            with atomic_path(directory / files["ann"]) as tmp:
                faiss.write_index(self.ann, str(tmp))
        files["slots"] = f"slots.{gen}.npz"
        with atomic_path(directory / files["slots"]) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, ids=np.array([i if i is not None else "" for i in self.slot_ids],
                                          dtype=str),
                         signatures=np.array([s if s is not None else "" for s in
                                              self.signatures], dtype=str),
                         present=self.present, alive=self.alive)
        sizes = {name: (directory / name).stat().st_size for name in files.values()}
        manifest = {"format": FORMAT, "modalities": self.modalities, "dims": self.dims,
                    "storage": self.storage, "ann_min_items": self.ann_min_items,
                    "nprobe": self.nprobe, "items": len(self), "slots": self.n_slots,
                    "files": dict(files), "sizes": sizes, **(dict(meta) if meta else {})}
        path = directory / "manifest.json"
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(manifest, indent=1))
        self.meta = manifest
        keep = set(files.values()) | {"manifest.json"}
        for old in directory.iterdir():
            if old.name not in keep and not old.name.startswith("."):
                old.unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, directory: str | os.PathLike, mmap: bool = True) -> "VectorIndex":
        """Open a saved index; `mmap` maps the vector files read-only (no copy, fast).

        Everything is checked before it is used: the manifest (`_checked_manifest`: known
        values, file names of this folder only, the sizes the files were written with), the
        slot table (`model_files.read_npz`: no object arrays, shapes that agree), and the faiss
        indexes against both (row count, width, every id a live slot). A damaged index is a
        `VectorIndexError` (the persisted index is rebuilt from the database)."""
        from recsys.core.model_files import ModelFileError, read_json_file, read_npz

        faiss = _faiss()
        directory = Path(directory)
        try:
            manifest = _checked_manifest(read_json_file(directory / "manifest.json",
                                                        "the manifest"), directory)
            index = cls(manifest["dims"], manifest["storage"], manifest["ann_min_items"])
            files = manifest["files"]
            slots = read_npz(directory / files["slots"])
        except ModelFileError as exc:
            raise VectorIndexError(f"The vector index in {directory} is damaged "
                                   f"({exc.reason}).") from None
        try:
            index.flat = faiss.read_index(str(directory / files["flat"]),
                                          faiss.IO_FLAG_MMAP_IFC if mmap else 0)
            if "ann" in files:
                index.ann = faiss.read_index(str(directory / files["ann"]),
                                             faiss.IO_FLAG_MMAP if mmap else 0)
        except (OSError, RuntimeError, MemoryError):
            raise VectorIndexError(f"The vector index in {directory} is damaged (a faiss file "
                                   "cannot be read).") from None
        ids, sigs, present, alive = _checked_slots(slots, len(index.modalities), directory)
        index.present, index.alive = present, alive
        index.slot_ids = np.array(ids.tolist(), dtype=object)
        index.slot_ids[~index.alive] = None
        # signatures only matter to an update, which needs a writable (not mapped) index
        index.signatures = np.array(sigs.tolist() if not mmap else [""] * len(ids),
                                    dtype=object)
        index._slot_map = None                 # item id -> slot, built on first use
        index.nprobe = int(manifest.get("nprobe") or 0)
        index.readonly = mmap
        index.meta = manifest
        index._check_faiss(directory)
        return index

    def _check_faiss(self, directory: Path) -> None:
        """The faiss indexes agree with the slot table: as many rows as live items, the
        index's width, and (flat) ids that are exactly the live slots."""
        faiss = _faiss()
        for part in (self.flat, self.ann):
            if part is None:
                continue
            if part.ntotal != len(self) or part.d != self.width:
                raise VectorIndexError(f"The vector index in {directory} is inconsistent "
                                       f"({part.ntotal} rows of width {part.d} for {len(self)} "
                                       f"items of width {self.width}).")
        try:
            ids = faiss.vector_to_array(faiss.downcast_index(self.flat).id_map)
        except (AttributeError, RuntimeError):
            raise VectorIndexError(f"The vector index in {directory} is damaged (its exact "
                                   "index has no id map).") from None
        if len(ids) > 1 and not (ids[1:] > ids[:-1]).all():    # appended in slot order
            ids = np.sort(ids)
        if len(ids) != len(self) or not np.array_equal(ids, self.alive_slots):
            raise VectorIndexError(f"The vector index in {directory} is damaged (its ids are "
                                   "not the live slots).")

    # -- the store-backed, persisted index -----------------------------------------------------
    @classmethod
    def for_dataset(cls, store: Store, dataset: str, encoder: str | None = None,
                    version: str | None = None, storage: str = "float32",
                    ann: str = "auto", persist: bool = True,
                    progress: ProgressCallback | None = None,
                    ann_min_items: int | None = None, plan: bool = True) -> "VectorIndex":
        """The index of a dataset's item vectors (one encoder version), kept current.

        Loads the persisted index if the stored vectors did not change since it was written
        (one fingerprint query); otherwise applies the changes incrementally (or rebuilds),
        saves, and returns it. `ann`: auto (IVF above `ANN_MIN_ITEMS` items), always, never.
        Without `encoder`, the newest vectors of the dataset are used. `persist=False` (and
        in-memory databases) keeps everything in memory. `ann_min_items` overrides the size
        above which the approximate index is built and used (default `ANN_MIN_ITEMS`).
        Before anything is built or loaded into memory, `plan_storage` checks the memory
        budget (`plan=False` skips it): an index that would not fit is built as float16, then
        without its approximate part, and refused with a clear `VectorIndexError` when even
        that would not fit; `meta["memory_plan"]` says why.
        """
        ann_min_items = int(ann_min_items or ANN_MIN_ITEMS)
        if ann not in ("auto", "always", "never"):
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
            except OSError:                # no writable folder beside the database
                directory = None
        index = None
        if directory is not None and (directory / "manifest.json").is_file():
            try:
                index = cls.load(directory, mmap=True)
            except VectorIndexError:
                index = None
            if index is not None and any(index.meta.get(k) != v for k, v in key.items()):
                index = None
            if index is not None:
                index.ann_min_items = ann_min_items
            if index is not None and index.meta.get("fingerprint") == fingerprint and \
                    index.meta.get("ann") == ann and (ann != "auto" or not index._wants_ann()):
                return index
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
                index = cls.for_dataset(store, dataset, encoder, version, chosen.storage,
                                        "never" if wants_ann and not chosen.ann else ann,
                                        persist, progress, ann_min_items, plan=False)
                index.meta = {**index.meta, "memory_plan": chosen.reason}
                return index
        if index is not None and (index.dims != {m: dims[m] for m in order_modalities(dims)}
                                  or index.storage != storage):
            index = None
        t0 = time.perf_counter()
        if index is not None:
            index = cls.load(directory, mmap=False)
            index.ann_min_items = ann_min_items
            changed = index._sync(store, dataset, encoder, version, progress)
            if index.stale_share > REBUILD_STALE_SHARE:
                index = None
            else:
                action = "updated" if changed else "checked"
        if index is None:
            index = cls._build(store, dataset, encoder, version, dims, storage, progress)
            index.ann_min_items = ann_min_items
            action = "built"
        wants = ann == "always" or (ann == "auto" and len(index) >= index.ann_min_items)
        if ann == "never" or not wants:
            index.ann, index.nprobe = None, 0
        elif index.ann is None or action == "built":
            index.build_ann(progress=progress)
        meta = {**key, "fingerprint": fingerprint, "ann": ann, "action": action,
                "seconds": round(time.perf_counter() - t0, 3)}
        warning = None
        if directory is not None:
            try:
                index.save(directory, meta)
                return cls.load(directory, mmap=True)
            except IndexNotSaved as exc:   # a full disk, a read-only folder...: kept in
                warning = str(exc)         # memory, searched from there this time
            except VectorIndexError:
                pass
        index.meta = {**meta, "persisted": False, **({"warning": warning} if warning else {})}
        return index

    def _wants_ann(self) -> bool:
        return self.ann is None and len(self) >= self.ann_min_items

    @classmethod
    def _build(cls, store: Store, dataset: str, encoder: str, version: str,
               dims: Mapping[str, int], storage: str,
               progress: ProgressCallback | None) -> "VectorIndex":
        """Full build: stream each modality's vectors from DuckDB into one preallocated matrix
        (one copy), then hand it to faiss in chunks."""
        index = cls(dims, storage)
        sigs = store.embedding_signatures(dataset, encoder, version)
        ids, signature, flags = _item_signatures(sigs, index.modalities)
        pos = pd.Index(ids)
        rows = np.zeros((len(ids), index.width), dtype=np.float32)
        present = np.zeros((len(ids), len(index.modalities)), dtype=bool)
        done, total = 0, len(sigs)
        for j, m in enumerate(index.modalities):
            off, d = index.offsets[m], index.dims[m]
            for batch_ids, vecs in store.embedding_batches(dataset, encoder, version, m):
                at = pos.get_indexer(batch_ids)
                block = normalise_rows(np.array(vecs, dtype=np.float32))
                rows[at, off:off + d] = block
                present[at, j] = np.abs(block).sum(axis=1) > 0
                done += len(batch_ids)
                report(progress, done, total, f"loading {m} vectors", stage="load")
        for start in range(0, len(ids), CHUNK):
            sl = slice(start, start + CHUNK)
            index._append(ids[sl], rows[sl], present[sl], signature[sl])
        return index

    def _sync(self, store: Store, dataset: str, encoder: str, version: str,
              progress: ProgressCallback | None) -> bool:
        """Apply added / removed / rewritten items from the store; True if anything changed."""
        sigs = store.embedding_signatures(dataset, encoder, version)
        ids, signature, _ = _item_signatures(sigs, self.modalities)
        current = dict(zip(ids, signature))
        removed = [i for i in self._slot if i not in current]
        changed = [i for i, s in current.items()
                   if i in self._slot and self.signatures[self._slot[i]] != s]
        added = [i for i in ids if i not in self._slot]
        if not (removed or changed or added):
            return False
        report(progress, 0, 1, f"updating index: {len(added):,} new, {len(changed):,} "
               f"changed, {len(removed):,} removed items", stage="update")
        self.remove(removed + changed)
        fresh = sorted(added + changed)
        if fresh:
            vecs = {m: np.zeros((len(fresh), self.dims[m]), dtype=np.float32)
                    for m in self.modalities}
            pres = {m: np.zeros(len(fresh), dtype=bool) for m in self.modalities}
            pos = pd.Index(fresh)
            for m in self.modalities:
                for batch_ids, v in store.embedding_batches(dataset, encoder, version, m,
                                                            item_ids=fresh):
                    at = pos.get_indexer(batch_ids)
                    vecs[m][at] = v
                    pres[m][at] = True
            self.add(fresh, vecs, pres, [current[i] for i in fresh])
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
    signature = joined.tolist()
    return ids, signature, flags


def resolve_encoder(store: Store, dataset: str, encoder: str | None = None,
                    version: str | None = None) -> tuple[str, str]:
    """(encoder, version) to search with: as given, else the newest version of `encoder`, else
    the most recently written vectors of the dataset; a clear error when there are none."""
    sets = store.embedding_sets(dataset)
    if encoder is not None:
        sets = sets[sets["encoder"] == encoder]
        if version is not None:
            sets = sets[sets["version"] == version]
    if sets.empty:
        which = f" from {encoder}{'@' + version if version else ''}" if encoder else ""
        raise VectorIndexError(f"Dataset '{dataset}' has no item vectors{which} yet: run "
                          f"`python -m recsys embed --dataset {dataset}` first.")
    row = sets.iloc[0]
    return str(row["encoder"]), str(row["version"])


def index_dir(store: Store, dataset: str, encoder: str, version: str,
              storage: str = "float32") -> Path:
    """Where a dataset's persisted index lives: beside the database, per encoder version and
    storage type."""
    return config.artifacts_dir(store.path, "indexes", path_part(dataset),
                                path_part(f"{encoder}@{version}"), storage)
