"""Item vectors for models and search: loading a dataset's stored embeddings (`load_item_vectors`)
and the photo/text search index the app and the CLI query (`ItemIndex`, a façade over
`vector_index.VectorIndex`: exact and approximate faiss search, filters, persistence).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import pandas as pd

from recsys.core.progress import ProgressCallback
from recsys.search.vector_index import (
    STORAGES,
    Hits,
    VectorIndex,
    VectorIndexError,
    normalise_rows,
)
from recsys.store import Store


@dataclass
class ItemVectors:
    """L2-normalised image and text vectors of a dataset's items, rows aligned with item_ids.

    `image` / `text` are None when that modality has no vectors; items without a vector in a
    modality get a zero row and are flagged in `has_image` / `has_text`.
    """

    item_ids: list[str]
    image: np.ndarray | None
    text: np.ndarray | None
    encoder: str | None
    version: str | None
    has_image: np.ndarray
    has_text: np.ndarray


def latest_encoder(store: Store, dataset: str) -> tuple[str, str] | None:
    """(encoder, version) of the most recently written vectors of a dataset, if any."""
    sets = store.embedding_sets(dataset)
    if sets.empty:
        return None
    row = sets.iloc[0]
    return str(row["encoder"]), str(row["version"])


def load_item_vectors(store: Store, dataset: str, encoder: str | None = None,
                      version: str | None = None, item_ids: list[str] | None = None
                      ) -> ItemVectors:
    """Vectors of every item (or `item_ids`, in that order) from one encoder version.

    Without `encoder`, the most recently written vectors are used; without `version`, the
    newest version of that encoder. The vectors are streamed from DuckDB in batches straight
    into one preallocated matrix per modality and normalised in place: one copy in memory,
    never the several temporaries of a gather-then-divide.
    """
    if item_ids is None:
        item_ids = store.item_ids(dataset)
    if encoder is None:
        found = latest_encoder(store, dataset)
        if found is not None:
            encoder, version = found
    elif version is None:
        sets = store.embedding_sets(dataset)
        sets = sets[sets["encoder"] == encoder]
        version = None if sets.empty else str(sets.iloc[0]["version"])
    position = pd.Index([str(i) for i in item_ids])
    dims = {} if encoder is None or version is None else \
        store.embedding_dims(dataset, encoder, version)
    mats: dict[str, np.ndarray | None] = {}
    present: dict[str, np.ndarray] = {}
    for modality in ("image", "text"):
        flags = np.zeros(len(item_ids), dtype=bool)
        mats[modality] = None
        if modality in dims:
            full = np.zeros((len(item_ids), dims[modality]), dtype=np.float32)
            for ids, vectors in store.embedding_batches(dataset, encoder, version, modality):
                at = position.get_indexer(ids)
                keep = at >= 0
                full[at[keep]] = vectors[keep]
                flags[at[keep]] = True
            if flags.any():
                mats[modality] = normalise_rows(full)
        present[modality] = flags
    return ItemVectors(list(item_ids), mats["image"], mats["text"], encoder, version,
                       present["image"], present["text"])


# -- vector search ------------------------------------------------------------------------------
@dataclass
class SearchResult:
    """Top-k items of a search, best first; `score` is the weighted combination of
    `image_score` (query vs the item's photo vector) and `text_score` (vs its text vector);
    `method` says whether the exact or the approximate index answered."""

    item_ids: list[str]
    scores: np.ndarray
    image_scores: np.ndarray
    text_scores: np.ndarray
    method: str = "exact"

    def __len__(self) -> int:
        return len(self.item_ids)

    def to_records(self) -> list[dict]:
        return [{"item_id": i, "score": float(s), "image_score": _opt(a), "text_score": _opt(b)}
                for i, s, a, b in zip(self.item_ids, self.scores, self.image_scores,
                                      self.text_scores)]


def _opt(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


def default_storage() -> str:
    """Vector storage of the search index: $RECSYS_INDEX_STORAGE (float32 or float16)."""
    value = os.environ.get("RECSYS_INDEX_STORAGE", "float32").strip() or "float32"
    return value if value in STORAGES else "float32"


class ItemIndex:
    """Photo/text search over a dataset's items: the app's and the CLI's entry point.

    A thin façade over `vector_index.VectorIndex` (exact faiss search, fp32 or fp16, with an
    approximate IVF index above `ANN_MIN_ITEMS` items, filters as masks, persisted beside the
    database and updated incrementally). Build it with `ItemIndex.from_store(store, dataset)`;
    the app builds it once per (dataset, encoder version) and caches it.
    """

    def __init__(self, vectors: "ItemVectors | VectorIndex", encoder: str | None = None,
                 version: str | None = None):
        if isinstance(vectors, ItemVectors):
            index = _index_from_vectors(vectors)
            encoder, version = vectors.encoder, vectors.version
        else:
            index = vectors
            encoder = encoder or index.meta.get("encoder")
            version = version or index.meta.get("version")
        self.vectors = index
        self.encoder, self.version = encoder, version
        self.last_method = "exact"

    @classmethod
    def from_store(cls, store: Store, dataset: str, encoder: str | None = None,
                   version: str | None = None, storage: str | None = None, ann: str = "auto",
                   progress: ProgressCallback | None = None) -> "ItemIndex":
        """The dataset's index for one encoder version (default: the newest vectors).

        Loaded from its files beside the database when the stored vectors are unchanged,
        otherwise updated incrementally (or built) and saved; see `VectorIndex.for_dataset`.
        """
        index = VectorIndex.for_dataset(store, dataset, encoder, version,
                                        storage or default_storage(), ann, progress=progress)
        return cls(index, index.meta.get("encoder"), index.meta.get("version"))

    @property
    def spec(self) -> str | None:
        return None if self.encoder is None else f"{self.encoder}@{self.version}"

    @property
    def notes(self) -> list[str]:
        """What a user should know about this index: that its files could not be saved (a
        full disk...) and it answers from memory."""
        warning = self.vectors.meta.get("warning")
        return [str(warning)] if warning else []

    @property
    def dim(self) -> int:
        for m in ("image", "text"):
            if m in self.vectors.dims:
                return self.vectors.dims[m]
        return next(iter(self.vectors.dims.values()), 0)

    def __len__(self) -> int:
        return len(self.vectors)

    @property
    def item_ids(self) -> list[str]:
        """Indexed items (those with at least one vector); masks follow this order."""
        return self.vectors.item_ids

    @property
    def image(self) -> np.ndarray | None:
        """All photo vectors (rows follow `item_ids`); a copy made on first use: prefer
        `vector(item_id, "image")` for one item."""
        return self._matrix("image")

    @property
    def text(self) -> np.ndarray | None:
        return self._matrix("text")

    @property
    def has_image(self) -> np.ndarray:
        return self._present("image")

    @property
    def has_text(self) -> np.ndarray:
        return self._present("text")

    def _matrix(self, modality: str) -> np.ndarray | None:
        if modality not in self.vectors.dims:
            return None
        cache = self.__dict__.setdefault("_matrices", {})
        if modality not in cache:
            cache[modality] = self.vectors.matrix(modality)
        return cache[modality]

    def _present(self, modality: str) -> np.ndarray:
        if modality not in self.vectors.dims:
            return np.zeros(len(self), dtype=bool)
        return self.vectors.present_mask(modality)

    def vector(self, item_id: str, modality: str = "image") -> np.ndarray | None:
        """One item's stored vector (None when it has none)."""
        return self.vectors.vector(item_id, modality)

    def position(self, item_id: str) -> int | None:
        """Row of an item in `item_ids` (None when not indexed)."""
        return self.vectors.position(item_id)

    def mask_for(self, item_ids: Iterable[str]) -> np.ndarray:
        """Boolean mask over `item_ids` of the given ids: a filter for `search`."""
        return self.vectors.mask_for(item_ids)

    def search(self, image: np.ndarray | None = None, text: np.ndarray | None = None,
               k: int = 10, image_weight: float = 0.5,
               exclude: "set[str] | list[str] | None" = None,
               allowed_mask: np.ndarray | None = None, method: str = "auto") -> SearchResult:
        """Nearest items to a query photo vector and/or query text vector.

        Each query vector is compared (cosine) with every item's photo vector (image score)
        and text vector (text score), averaged over the query vectors given; the result ranks
        by `image_weight * image score + (1 - image_weight) * text score`. An item missing one
        modality is ranked by the other alone. `allowed_mask` (boolean over `item_ids`, e.g.
        from `catalog.FacetMasks`) restricts the search to the filtered items; `method` is
        auto (approximate above `vector_index.ANN_MIN_ITEMS` candidates), exact or ann.
        """
        queries = [q for q in (image, text) if q is not None]
        if not queries:
            raise ValueError("search needs an image vector, a text vector or both")
        if not 0.0 <= image_weight <= 1.0:
            raise ValueError("image_weight must be between 0 and 1")
        unit = []
        for q in queries:
            q = np.asarray(q, dtype=np.float32).ravel()
            if q.shape[0] != self.dim:
                raise ValueError(f"query vector has {q.shape[0]} dimensions, the index "
                                 f"{self.dim}: was it made by another encoder?")
            norm = np.linalg.norm(q)
            unit.append(q / norm if norm > 0 else q)
        mean = np.mean(unit, axis=0)
        scale = float(np.linalg.norm(mean))
        mods = [m for m in ("image", "text") if m in self.vectors.dims]
        weights = {"image": image_weight, "text": 1.0 - image_weight}
        hits = self.vectors.search({m: mean for m in mods}, weights, k, allowed=allowed_mask,
                                   exclude=exclude or (), method=method)
        return self._result(hits, scale)

    def item_vectors(self, item_id: str) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(photo vector, text vector) of an item, None where it has none (each read with
        `vector`, no matrix copy). KeyError when the item is not in the index."""
        if self.position(item_id) is None:
            raise KeyError(f"item {item_id!r} is not in the index")
        return self.vector(item_id, "image"), self.vector(item_id, "text")

    def similar(self, item_id: str, k: int = 10, image_weight: float = 0.5,
                exclude: "set[str] | list[str] | None" = None,
                allowed_mask: np.ndarray | None = None, method: str = "auto") -> SearchResult:
        """Items most like `item_id` (its own photo and text vectors as the queries); the item
        itself and `exclude` are left out."""
        if self.position(item_id) is None:
            raise KeyError(f"item {item_id!r} is not in the index")
        queries = {m: self.vectors.vector(item_id, m) for m in ("image", "text")
                   if m in self.vectors.dims}
        queries = {m: q for m, q in queries.items() if q is not None}
        if not queries:
            raise KeyError(f"item {item_id!r} has no vectors")
        # compare photo with photos and text with texts: same-modality similarity
        hits = self.vectors.search(queries, {"image": image_weight, "text": 1 - image_weight},
                                   k, allowed=allowed_mask,
                                   exclude=[str(item_id), *(str(x) for x in exclude or ())],
                                   method=method)
        return self._result(hits, 1.0)

    def _result(self, hits: Hits, scale: float) -> SearchResult:
        self.last_method = hits.method
        ids = [str(i) for i in self.vectors.slot_ids[hits.slots]]
        n = len(ids)
        parts = {m: hits.parts.get(m, np.full(n, -np.inf, np.float32)) * np.float32(scale)
                 for m in ("image", "text")}
        return SearchResult(ids, (hits.scores * np.float32(scale)).astype(np.float32),
                            parts["image"].astype(np.float32), parts["text"].astype(np.float32),
                            hits.method)


def _index_from_vectors(vectors: ItemVectors) -> VectorIndex:
    """An in-memory index over already loaded matrices (small catalogs, tests)."""
    mats = {m: mat for m, mat in (("image", vectors.image), ("text", vectors.text))
            if mat is not None}
    if not mats:
        raise VectorIndexError("There are no item vectors to index.")
    index = VectorIndex({m: mat.shape[1] for m, mat in mats.items()})
    flags = {"image": vectors.has_image, "text": vectors.has_text}
    keep = np.zeros(len(vectors.item_ids), dtype=bool)
    for m in mats:
        keep |= np.asarray(flags[m], dtype=bool)
    ids = [i for i, k in zip(vectors.item_ids, keep) if k]
    index.add(ids, {m: mat[keep] for m, mat in mats.items()},
              {m: np.asarray(flags[m], dtype=bool)[keep] for m in mats})
    if len(index) >= index.ann_min_items:
        index.build_ann()
    return index
