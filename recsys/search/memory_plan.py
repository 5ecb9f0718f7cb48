"""The memory a search index build may take, and the storage chosen to stay within it.

Before an index is built (or loaded into memory for an update) from the store,
`plan_storage` compares its estimated peak with the memory this process may still use
(`recsys.core.memory.memory_budget`): as asked when it fits, else float16 storage, else float16
without the approximate part, else a clear `VectorIndexError` (never an out-of-memory
traceback halfway). A large index with an approximate part is kept as float16 rows even when
float32 would fit, so that it stays resident in `RESIDENT_TARGET_BYTES` (`resident_bytes`: the
rows, the IVF's 8-bit codes, ids and slot table).
"""

from __future__ import annotations

from dataclasses import dataclass

from recsys.search.vector_index import INDEX_MEMORY_FRACTION, VectorIndexError

LOAD_BYTES_PER_CELL = {"float32": 10.6, "float16": 5.3}
"""Peak bytes per item x dimension cell while the vectors are loaded: the staging copy (float32,
or float16 for a float16 index: 4 or 2 bytes) plus faiss's rows, whose buffer grows by copying
(up to ~1.6x their 4 or 2 bytes while it does)."""
ANN_BYTES_PER_CELL = 1.6
"""The IVF phase on top of the rows (the staging copy is gone by then): its 8-bit codes, up to
~1.6x while its lists grow."""
DUCKDB_BUILD_BYTES = 1 << 30
"""DuckDB's memory limit while an index reads its vectors (`Store.memory_limited`): without
it DuckDB kept every vector it streamed cached (+4 bytes per item x dimension: 1.0 GB at 200k
x 1280, benchmarks/index_build_memory.py)."""
STREAM_ROWS = 65_536
"""Rows of one batch streamed from DuckDB (`Store.embedding_batches`) or handed to faiss."""


def fixed_build_bytes(n_items: int, width: int) -> int:
    """Bytes of a build besides those per cell: DuckDB's cache while it streams the vectors
    (at most `DUCKDB_BUILD_BYTES`, at most the vectors themselves), about three float32
    copies of a streamed batch (arrow, numpy, normalised), the k-means sample (48 rows a list,
    at most 2 sqrt(n) lists) and a chunk handed to faiss, and 64 MB of the rest."""
    batch = min(n_items, STREAM_ROWS)
    sample = min(n_items, 48 * max(16, min(8192, round(2 * n_items ** 0.5))))
    return int(min(DUCKDB_BUILD_BYTES, 4 * n_items * width)
               + 4 * width * (3 * batch + sample + batch) + 64 * 2**20)


ROW_BYTES = {"float32": 4, "float16": 2}
"""Resident bytes per item x dimension cell of the stored rows."""
ANN_CODE_BYTES = 1
"""Resident bytes per cell of the IVF part (SQ8 codes, `ivf.CODES`)."""
ITEM_OVERHEAD_BYTES = 96
"""Resident bytes per item besides its vectors: faiss ids (IVF list, id map and its reverse
hash map), the slot table (item id, presence, signature)."""
RESIDENT_TARGET_BYTES = 4 * 10**9
"""An index with an IVF part whose float32 rows would keep it resident above this is stored as
float16 rows (scores within 1e-3 of float32, recall@10 unchanged within 0.01 in
benchmarks/search_peers.py): 1M items of two 640-d modalities then take ~3.9 GB, not ~6.5."""


def resident_bytes(n_items: int, width: int, storage: str, ann: bool) -> int:
    """Estimated memory an index keeps while it serves searches (after its build)."""
    per_cell = ROW_BYTES[storage] + (ANN_CODE_BYTES if ann else 0)
    return int(per_cell * n_items * width + ITEM_OVERHEAD_BYTES * n_items)


def index_build_bytes(n_items: int, width: int, storage: str, ann: bool) -> int:
    """Estimated peak memory of building (or loading for an update) an index in memory: the
    larger of the load phase and the IVF phase (they do not overlap), plus the fixed part."""
    per_cell = LOAD_BYTES_PER_CELL[storage]
    if ann:
        per_cell = max(per_cell, ROW_BYTES[storage] + ANN_BYTES_PER_CELL)
    return int(per_cell * n_items * width) + fixed_build_bytes(n_items, width)


@dataclass(frozen=True)
class StoragePlan:
    """How an index is built under the memory budget: its storage, whether it gets an IVF
    part, the estimated build bytes against the budget, and why (kept in the index's meta),
    and the bytes it then keeps resident."""

    storage: str
    ann: bool
    needed_bytes: int
    budget_bytes: int
    reason: str
    resident_bytes: int = 0
    """What the index keeps in memory once built (`resident_bytes`)."""


def plan_storage(n_items: int, width: int, storage: str = "float32", ann: bool = False,
                 available: int | None = None,
                 fraction: float = INDEX_MEMORY_FRACTION) -> StoragePlan:
    """The index a build can afford: as asked when it fits `fraction` of the memory this
    process may still use (`available`, default `memory_budget()`: free RAM, cgroup limit,
    RLIMIT_AS / RLIMIT_DATA); else float16 storage (half the bytes; scores within 1e-3);
    else float16 without the approximate part (exact search still answers); else a
    `VectorIndexError` with the numbers."""
    from recsys.core.memory import format_gb, memory_budget

    if available is None:
        measured = memory_budget()
        free, where = measured.available, measured.describe()
    else:
        free, where = int(available), f"{format_gb(int(available))} available"
    budget = int(fraction * free)
    options = [(storage, ann)]
    large = (storage == "float32" and ann
             and resident_bytes(n_items, width, storage, ann) > RESIDENT_TARGET_BYTES)
    if large:
        options = []
    if storage != "float16":
        options.append(("float16", ann))
    if ann:
        options.append(("float16", False))
    for n, (kind, with_ann) in enumerate(options):
        need = index_build_bytes(n_items, width, kind, with_ann)
        if need <= budget:
            if large and n == 0:
                reason = (f"float32 rows with IVF would stay resident in "
                          f"{format_gb(resident_bytes(n_items, width, storage, ann))}, over "
                          f"{format_gb(RESIDENT_TARGET_BYTES)}: built as float16 with IVF "
                          f"({format_gb(resident_bytes(n_items, width, kind, with_ann))} "
                          "resident, scores within 1e-3)")
            elif n == 0:
                reason = f"fits: {format_gb(need)} of {format_gb(budget)}"
            else:
                first = index_build_bytes(n_items, width, storage, ann)
                reason = (f"{storage}{' with IVF' if ann else ''} would need "
                          f"{format_gb(first)}, over the {format_gb(budget)} budget "
                          f"({fraction:.0%} of the {where}): built as {kind}"
                          f"{' with IVF' if with_ann else ', exact search only'}")
            return StoragePlan(kind, with_ann, need, budget, reason,
                               resident_bytes(n_items, width, kind, with_ann))
    smallest = index_build_bytes(n_items, width, "float16", False)
    raise VectorIndexError(
        f"The search index of {n_items:,} products ({width} numbers each) needs about "
        f"{format_gb(smallest)} of memory even stored as float16; an index may take "
        f"{format_gb(budget)} ({fraction:.0%} of the {where}). Free memory (close other "
        "programs), raise the container's or the process's memory limit, or search a "
        "smaller catalog.")
