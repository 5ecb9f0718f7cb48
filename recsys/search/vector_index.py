"""Item vector search in memory: exact and approximate (faiss), any named modalities, filters.

An item has vectors of any set of named modalities ("image", "text", later video or features
a user brings), each with its own dimension. The index keeps one row per item *slot*: the
item's L2-normalised modality vectors side by side, a missing modality as a zero block
(`RowLayout`). A weighted multimodal query is then one inner product per row,
``q = [w_1 q_1 ; w_2 q_2 ; ...]`` with ``sum w_m = 1`` over the modalities the item has (items
lacking a modality form their own small group, searched with the weights renormalised over
what they have, so their score means the same as everyone else's).

* Exact search: faiss ``IndexFlatIP`` (float32) or ``IndexScalarQuantizer`` fp16 (half the
  bytes to stream; scores differ by < 1e-3) behind an ``IndexIDMap2`` whose ids are the slots.
  A query is memory-bound, so it runs on one thread (`faiss_runtime`).
* Approximate search: a faiss IVF index over the same rows (`ivf`), built above
  `ANN_MIN_ITEMS` items; the top candidates are re-scored exactly.
* Filters: a boolean mask over the items becomes a faiss ``IDSelectorBitmap`` applied inside
  the search (the flat scan then reads only the allowed rows; the IVF scan chooses its lists
  from the filter, `ivf.filtered_probes`).

Items are added and removed in place (a removed item frees its slot). Keeping an index in
files beside the database and in step with the store is `recsys.search.index_files`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from recsys.core.errors import RecsysError
from recsys.core.progress import ProgressCallback, report
from recsys.search.faiss_runtime import CHUNK, load_faiss, mask_selector
from recsys.search.hits import Hits
from recsys.search.ivf import (
    TARGET_RECALL,
    FILTER_PROBE_FACTOR,
    FILTER_PROBE_POWER,
    build_ivf,
    calibrate_filter_rule,
    calibrate_nprobe,
    candidate_count,
    exact_neighbours,
    filter_truth_depth,
    probe_sample,
    calibration_queries,
    list_count,
    search_ivf,
)
from recsys.search.slots import SlotTable
from recsys.vectors.loading import normalise_rows

STORAGES = ("float32", "float16")
"""How the index stores the vectors: float32, or float16 (half the memory and exact-search
time, recall@10 against float32 0.99-1.0)."""
METHODS = ("auto", "exact", "ann")
"""How a search ranks: `auto` (the approximate index above `ANN_MIN_ITEMS` candidates, else
exact), `exact` (every candidate scored) or `ann` (the approximate index; only indexes that
have one)."""
ANN_MIN_ITEMS = 50_000
"""Above this many items an approximate index is built and used (see docs/scale.md: exact
fp32 search of two 256-d modalities takes ~10 ms at 50k items on a busy 2-core box)."""
EXACT_CANDIDATES = 5_000
"""A filter keeping fewer items than this is searched exactly (the flat scan with a selector
reads only those rows); more, and the IVF index answers with its probes widened."""
MODALITY_ORDER = ("image", "text")
INDEX_MEMORY_FRACTION = 0.5
"""Share of the memory this process may still use (`recsys.core.memory.memory_budget`) that
one index may take: its build (`memory_plan.plan_storage`) or a copy of its vectors."""


class VectorIndexError(RecsysError):
    """A vector index cannot be built, loaded or queried as asked."""


def order_modalities(names: Iterable[str]) -> list[str]:
    """Modalities in a stable order: image, text, then the others alphabetically."""
    names = set(names)
    return [m for m in MODALITY_ORDER if m in names] + sorted(names - set(MODALITY_ORDER))


def check_copy(nbytes: int, what: str) -> None:
    """Refuse an in-memory copy larger than the memory this process may still use."""
    from recsys.core.memory import format_gb, memory_budget

    budget = memory_budget()
    if nbytes > INDEX_MEMORY_FRACTION * budget.available:
        raise VectorIndexError(
            f"{what[0].upper()}{what[1:]} needs {format_gb(nbytes)}, over half the "
            f"{budget.describe()}. Free memory or raise the memory limit.")


@dataclass
class RowLayout:
    """Where each modality sits in an index row (`offsets`, `dims`, `width` in all), and the
    arithmetic of a weighted multimodal query over such rows."""

    modalities: list[str]
    dims: dict[str, int]
    offsets: dict[str, int]
    width: int

    @classmethod
    def of(cls, dims: Mapping[str, int]) -> "RowLayout":
        modalities = order_modalities(dims)
        sizes = {m: int(dims[m]) for m in modalities}
        offsets = dict(zip(modalities, np.cumsum([0] + [sizes[m] for m in modalities])[:-1]))
        return cls(modalities, sizes, offsets, int(sum(sizes.values())))

    def block(self, modality: str) -> slice:
        """The columns of one modality in a row."""
        return slice(self.offsets[modality], self.offsets[modality] + self.dims[modality])

    def unit_queries(self, queries: Mapping[str, np.ndarray | None],
                     weights: Mapping[str, float] | None
                     ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        """The query vectors given (None ones skipped), checked against their modality and
        L2-normalised, and their weights (default 1, none negative)."""
        unit: dict[str, np.ndarray] = {}
        for m, q in queries.items():
            if q is None:
                continue
            if m not in self.dims:
                raise VectorIndexError(f"The index has no {m} vectors (it has "
                                       f"{', '.join(self.modalities)}).")
            q = np.asarray(q, dtype=np.float32).ravel()
            if q.shape[0] != self.dims[m]:
                raise VectorIndexError(f"query vector has {q.shape[0]} dimensions, the index's "
                                       f"{m} vectors {self.dims[m]}: was it made by another "
                                       "encoder?")
            norm = float(np.linalg.norm(q))
            unit[m] = q / norm if norm > 0 else q
        if not unit:
            raise VectorIndexError("search needs at least one query vector")
        weight = {m: float((weights or {}).get(m, 1.0)) for m in unit}
        if any(v < 0 for v in weight.values()):
            raise VectorIndexError("modality weights must be >= 0")
        return unit, weight

    def query_row(self, unit: Mapping[str, np.ndarray], weight: Mapping[str, float],
                  pattern: np.ndarray) -> np.ndarray | None:
        """The concatenated query for items with presence `pattern`, the weights renormalised
        over the queried modalities they have (None if they have none)."""
        mods = [m for j, m in enumerate(self.modalities) if pattern[j] and m in unit]
        if not mods:
            return None
        total = sum(weight[m] for m in mods)
        row = np.zeros((1, self.width), dtype=np.float32)
        for m in mods:
            share = weight[m] / total if total > 0 else 1.0 / len(mods)
            row[0, self.block(m)] = share * unit[m]
        return row

    def fused_scores(self, rows: np.ndarray, present: np.ndarray,
                     unit: Mapping[str, np.ndarray], weight: Mapping[str, float]
                     ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(fused score, each modality's cosine) of stored `rows` with presence flags
        `present`: the weighted mean of the cosines over the queried modalities an item has
        (the plain mean when those all have weight 0; -inf when it has none of them)."""
        n = len(rows)
        parts = {m: np.full(n, -np.inf, dtype=np.float32) for m in self.modalities}
        fused = np.zeros(n, dtype=np.float64)
        total = np.zeros(n, dtype=np.float64)
        plain = np.zeros(n)
        queried = [j for j, m in enumerate(self.modalities) if m in unit]
        for j in queried:
            m = self.modalities[j]
            cosine = rows[:, self.block(m)] @ unit[m]
            has = present[:, j]
            parts[m] = np.where(has, cosine, -np.inf).astype(np.float32)
            fused += np.where(has, weight[m] * cosine, 0.0)
            total += np.where(has, weight[m], 0.0)
        for j in queried:
            plain += np.where(present[:, j], parts[self.modalities[j]], 0.0)
        n_queried = present[:, queried].sum(axis=1)
        score = np.where(total > 0, fused / np.where(total > 0, total, 1.0),
                         np.where(n_queried > 0, plain / np.maximum(n_queried, 1), -np.inf))
        return score, parts


class VectorIndex(SlotTable):
    """Exact (+ optional approximate) search over items with named vector modalities.

    Build one in memory with `VectorIndex(dims)` then `add(...)`, or from the store with
    `index_files.index_for_dataset(store, dataset)` (persisted, incremental). Query with
    `search(queries, weights, k, allowed=...)`; `item_ids` lists the indexed items and
    `mask_for(ids)` turns a set of item ids into the boolean mask `search` takes (the slot
    bookkeeping is `SlotTable`'s).
    """

    def __init__(self, dims: Mapping[str, int], storage: str = "float32",
                 ann_min_items: int = ANN_MIN_ITEMS):
        if storage not in STORAGES:
            raise VectorIndexError(f"Unknown vector storage {storage!r}; use one of "
                                   f"{', '.join(STORAGES)}.")
        if not dims:
            raise VectorIndexError("A vector index needs at least one modality.")
        self.layout = RowLayout.of(dims)
        self.modalities, self.dims = self.layout.modalities, self.layout.dims
        self.offsets, self.width = self.layout.offsets, self.layout.width
        super().__init__(len(self.modalities))
        self.storage = storage
        self.ann_min_items = int(ann_min_items)
        self.flat = self._new_flat()
        self.ann = None
        self.nprobe = 0
        self.filter_rule: tuple[float, float] = (FILTER_PROBE_FACTOR, FILTER_PROBE_POWER)
        """(factor, power) of the filtered IVF search (`ivf.filtered_probes`), calibrated by
        `build_ann`; an index saved without one keeps the previous fixed rule."""
        self._probe_sample: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.readonly = False
        self.meta: dict = {}

    @classmethod
    def from_parts(cls, dims: Mapping[str, int], storage: str, ann_min_items: int, *, flat,
                   ann, nprobe: int, slot_ids: np.ndarray, signatures: np.ndarray,
                   present: np.ndarray, alive: np.ndarray, readonly: bool, meta: dict,
                   filter_rule: tuple[float, float] | None = None) -> "VectorIndex":
        """An index assembled from its stored parts (`index_files.load_index`): the faiss
        indexes, the slot table, and `readonly` for memory-mapped files."""
        index = cls(dims, storage, ann_min_items)
        index.flat, index.ann, index.nprobe = flat, ann, int(nprobe)
        if filter_rule is not None:
            index.filter_rule = (float(filter_rule[0]), float(filter_rule[1]))
        index.slot_ids, index.signatures = slot_ids, signatures
        index.present, index.alive = present, alive
        index._slot_map = None                 # item id -> slot, built on first use
        index.readonly, index.meta = readonly, meta
        return index

    def _new_flat(self):
        faiss = load_faiss()
        if self.storage == "float16":
            base = faiss.IndexScalarQuantizer(self.width, faiss.ScalarQuantizer.QT_fp16,
                                              faiss.METRIC_INNER_PRODUCT)
        else:
            base = faiss.IndexFlatIP(self.width)
        return faiss.IndexIDMap2(base)

    # -- stored vectors ------------------------------------------------------------------------
    def has(self, item_id: str, modality: str) -> bool:
        slot = self.slot_by_item.get(str(item_id))
        return slot is not None and bool(self.present[slot, self.modalities.index(modality)])

    def rows(self, slots: np.ndarray) -> np.ndarray:
        """The stored (normalised, concatenated) rows of some slots as float32."""
        slots = np.asarray(slots, dtype=np.int64)
        if not len(slots):
            return np.zeros((0, self.width), dtype=np.float32)
        if self.n_slots == len(self) == self.flat.ntotal:
            # nothing removed: slot i is row i of the faiss index under the id map (rows are
            # added in slot order), read directly instead of through its id hash map
            return self._stored().reconstruct_batch(slots)
        return self.flat.reconstruct_batch(slots)

    def _stored(self):
        """The faiss index under the id map (its rows in slot order while nothing is
        removed)."""
        if getattr(self, "_stored_index", None) is None or \
                self._stored_index[0] is not self.flat:
            faiss = load_faiss()
            self._stored_index = (self.flat, faiss.downcast_index(self.flat.index))
        return self._stored_index[1]

    def vector(self, item_id: str, modality: str) -> np.ndarray | None:
        """One item's stored vector of a modality (None if the item has none)."""
        slot = self.slot_by_item.get(str(item_id))
        if slot is None or modality not in self.dims or not self.has(item_id, modality):
            return None
        return self.rows(np.array([slot]))[0, self.layout.block(modality)].copy()

    def matrix(self, modality: str) -> np.ndarray:
        """All items' vectors of one modality (rows follow `item_ids`; zero rows where absent).

        Materialises a copy (n x d float32): meant for small catalogs and older callers; the
        search itself never needs it.
        """
        if modality not in self.dims:
            raise VectorIndexError(f"The index has no {modality} vectors.")
        block = self.layout.block(modality)
        check_copy(len(self) * self.dims[modality] * 4,
                   f"a copy of the {len(self):,} {modality} vectors")
        out = np.empty((len(self), self.dims[modality]), dtype=np.float32)
        slots = self.alive_slots
        for start in range(0, len(slots), CHUNK):
            out[start:start + CHUNK] = self.rows(slots[start:start + CHUNK])[:, block]
        return out

    def present_mask(self, modality: str) -> np.ndarray:
        """Which of `item_ids` have a vector of `modality`."""
        return self.present[self.alive, self.modalities.index(modality)]

    # -- changes -------------------------------------------------------------------------------
    def _writable(self) -> None:
        if self.readonly:
            raise VectorIndexError("This index was opened memory-mapped (read-only); reload it "
                                   "with `index_files.load_index(path, mmap=False)` to change "
                                   "it.")

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
        dup = [i for i in item_ids if str(i) in self.slot_by_item]
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
            block = rows[:, self.layout.block(m)]
            block[...] = mat
            normalise_rows(block)
            has = np.abs(block).sum(axis=1) > 0
            if present is not None and m in present:
                has &= np.asarray(present[m], dtype=bool)
            block[~has] = 0.0
            flags[:, j] = has
        self.append_rows(list(map(str, item_ids)), rows, flags,
                         list(signatures) if signatures is not None else [""] * n)

    def append_rows(self, ids: list[str], rows: np.ndarray, flags: np.ndarray,
                    signatures: list[str]) -> None:
        """Append new items as ready rows (normalised blocks side by side, zero where absent,
        `flags` their presence per modality) with their content signatures."""
        slots = self.new_slots(len(ids))
        self.flat.add_with_ids(rows, slots)
        if self.ann is not None:
            self.ann.add_with_ids(rows, slots)
            self._probe_sample = None
        self.record(ids, slots, flags, signatures)

    def remove(self, item_ids: Iterable[str]) -> int:
        """Remove items (unknown ids are ignored); returns how many were removed."""
        self._writable()
        slots = self.take_slots(item_ids)
        if not len(slots):
            return 0
        faiss = load_faiss()
        self.flat.remove_ids(faiss.IDSelectorBatch(slots))
        if self.ann is not None:
            self.ann.remove_ids(faiss.IDSelectorBatch(slots))
            self._probe_sample = None
        self.free(slots)
        return len(slots)

    # -- approximate index ---------------------------------------------------------------------
    def build_ann(self, nlist: int | None = None, target_recall: float = TARGET_RECALL,
                  progress: ProgressCallback | None = None, seed: int = 0) -> None:
        """Train and fill an IVF index (SQ8 codes) over the current rows, then calibrate
        `nprobe` on held-out-like photo and text queries so recall@10 of the search (IVF
        candidates re-ranked exactly) against exact search reaches `target_recall`."""
        self._writable()
        if len(self) < 2:
            self.ann = None
            return
        self.ann = build_ivf(self.rows, self.alive_slots, self.width,
                             list_count(len(self), nlist), np.random.default_rng(seed), seed,
                             progress)
        self._probe_sample = None
        self.nprobe = min(self.ann.nlist, self.calibrate(target_recall, seed=seed))
        report(progress, 3, 3, f"IVF ready (nprobe {self.nprobe})", stage="ann")

    def calibrate(self, target_recall: float = TARGET_RECALL, queries: int = 128, k: int = 10,
                  seed: int = 0) -> int:
        """Smallest nprobe (`ivf.NPROBE_STEPS`) whose recall@k against exact search reaches the
        target for both held-out-like photo and text queries (`ivf.calibration_queries`: sampled
        items' own photo / text vectors, the item itself left out); then the filtered-search
        rule (`filter_rule`, `ivf.calibrate_filter_rule`) on the same queries under random
        5% and 50% filters, the same target."""
        if self.ann is None:
            return 0
        rng = np.random.default_rng(seed + 1)
        slots = np.sort(rng.choice(self.alive_slots, min(queries, len(self)), replace=False))
        sample = calibration_queries(slots, self.rows(slots), self.present[slots],
                                     self.modalities, self.dims, self.offsets)
        truth = exact_neighbours(self.flat, sample, filter_truth_depth(k))
        nprobe = calibrate_nprobe(self.flat, self.ann, sample, k, target_recall, self.rows,
                                  truth)
        self.filter_rule = calibrate_filter_rule(
            self.ann, sample, truth, k, target_recall, nprobe, self.rows, self.probe_sample(),
            self.n_slots, np.random.default_rng(seed + 2))
        return nprobe

    def probe_sample(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each IVF list's member sample and size (`ivf.probe_sample`), for filtered searches;
        made on first use after a build, a load or a change."""
        if getattr(self, "_probe_sample", None) is None:
            self._probe_sample = probe_sample(self.ann, np.random.default_rng(0))
        return self._probe_sample

    # -- search --------------------------------------------------------------------------------
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
        exists), exact or ann. The phases: the unit queries, the candidate mask, the
        candidates of each presence group (exact or IVF), their exact re-scoring and order.
        """
        if method not in METHODS:
            raise VectorIndexError(f"Unknown search method {method!r}; use one of "
                                   f"{', '.join(METHODS)}.")
        unit, weight = self.layout.unit_queries(queries, weights)
        k = int(k)
        excluded = {self.slot_by_item[str(i)] for i in exclude if str(i) in self.slot_by_item}
        if k <= 0 or len(self) == 0:
            return Hits.none(self.modalities)
        allowed_slots, n_candidates = self._candidate_mask(allowed)
        if n_candidates == 0:
            return Hits.none(self.modalities)
        k = min(k, n_candidates)         # k past the catalog would only allocate (1, k) arrays
        use_ann = self._answers_with_ann(method, n_candidates)
        slots = self._candidates(unit, weight, k + len(excluded), allowed_slots, n_candidates,
                                 use_ann, nprobe)
        if excluded:
            slots = slots[~np.isin(slots, list(excluded))]
        return self._ranked(np.unique(slots), unit, weight, k, "ann" if use_ann else "exact")

    def _candidate_mask(self, allowed: np.ndarray | None) -> tuple[np.ndarray | None, int]:
        """(the filter over slots, None without one; how many items it keeps)."""
        if allowed is None:
            return None, len(self)
        allowed = np.asarray(allowed, dtype=bool)
        if allowed.shape != (len(self),):
            raise VectorIndexError(f"the filter mask has {allowed.shape[0]} entries, the index "
                                   f"{len(self)} items")
        return self.slot_mask(allowed), int(np.count_nonzero(allowed))

    def _answers_with_ann(self, method: str, n_candidates: int) -> bool:
        """Whether the IVF index answers: asked (`ann`), or `auto` with enough items and
        candidates (a narrow filter is searched exactly)."""
        if method == "ann" and self.ann is None:
            raise VectorIndexError("This index has no approximate (IVF) part: it is built "
                                   f"above {self.ann_min_items:,} items, or call build_ann().")
        return self.ann is not None and (method == "ann" or (
            method == "auto" and len(self) >= self.ann_min_items
            and n_candidates >= min(EXACT_CANDIDATES, self.ann_min_items)))

    def _candidates(self, unit: dict[str, np.ndarray], weight: dict[str, float], fetch: int,
                    allowed_slots: np.ndarray | None, n_candidates: int, use_ann: bool,
                    nprobe: int | None) -> np.ndarray:
        """Candidate slots: for each presence group, the best `fetch` rows for the group's
        query row (more from the IVF index, whose order is approximate), within the filter."""
        faiss = load_faiss()
        found = []
        for pattern, group in self.presence_groups():
            row = self.layout.query_row(unit, weight, pattern)
            if row is None:
                continue
            mask = group
            if allowed_slots is not None:
                mask = allowed_slots if mask is None else (mask & allowed_slots)
            if use_ann:
                ids = search_ivf(self.ann, row, candidate_count(fetch), mask,
                                 int(nprobe or self.nprobe or 16), self.probe_sample(),
                                 self.filter_rule,
                                 n_candidates if mask is allowed_slots else None)
            elif mask is None:
                ids = self.flat.search(row, fetch)[1][0]
            else:
                params = faiss.SearchParameters(sel=mask_selector(mask))
                ids = self.flat.search(row, fetch, params=params)[1][0]
            found.append(ids[ids >= 0])
        return np.concatenate(found) if found else np.zeros(0, np.int64)

    def _ranked(self, slots: np.ndarray, unit: dict[str, np.ndarray],
                weight: dict[str, float], k: int, method: str) -> Hits:
        """The candidates re-scored exactly from the stored rows (fp16 / IVF codes are close
        but not equal), best first (ties keep slot order), those matching no queried modality
        dropped, the first `k`."""
        score, parts = self.layout.fused_scores(self.rows(slots), self.present[slots], unit,
                                                weight)
        order = np.lexsort((slots, -score))
        order = order[np.isfinite(score[order])][:k]
        top = slots[order]
        return Hits(top, [str(i) for i in self.slot_ids[top]], score[order].astype(np.float32),
                    {m: v[order] for m, v in parts.items()}, method)
