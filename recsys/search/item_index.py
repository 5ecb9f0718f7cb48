"""The photo/text search index the app and the CLI query: `ItemIndex`, a façade over
`vector_index.VectorIndex` (exact and approximate faiss search, filters) kept in files beside
the database by `index_files.index_for_dataset`. Its searches return `hits.Hits`.
"""

from __future__ import annotations

import os
from typing import Iterable

import numpy as np

from recsys.core.progress import ProgressCallback
from recsys.search.hits import Hits
from recsys.search.index_files import index_for_dataset
from recsys.search.vector_index import STORAGES, VectorIndex, VectorIndexError
from recsys.store import Store
from recsys.vectors.loading import ItemVectors


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

    @classmethod
    def from_store(cls, store: Store, dataset: str, encoder: str | None = None,
                   version: str | None = None, storage: str | None = None, ann: str = "auto",
                   progress: ProgressCallback | None = None) -> "ItemIndex":
        """The dataset's index for one encoder version (default: the newest vectors).

        Loaded from its files beside the database when the stored vectors are unchanged,
        otherwise updated incrementally (or built) and saved; see
        `index_files.index_for_dataset`.
        """
        index = index_for_dataset(store, dataset, encoder, version, storage or default_storage(),
                                  ann, progress=progress)
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
    def has_text(self) -> np.ndarray:
        """Which of `item_ids` have a text vector."""
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
               allowed_mask: np.ndarray | None = None, method: str = "auto") -> Hits:
        """Nearest items to a query photo vector and/or query text vector.

        Each query vector is compared (cosine) with every item's photo vector (image score)
        and text vector (text score), averaged over the query vectors given; the result ranks
        by `image_weight * image score + (1 - image_weight) * text score`. An item missing one
        modality is ranked by the other alone. `allowed_mask` (boolean over `item_ids`, e.g.
        from `facets.FacetMasks`) restricts the search to the filtered items; `method` is
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
        return hits.scaled(scale)

    def similar(self, item_id: str, k: int = 10, image_weight: float = 0.5,
                exclude: "set[str] | list[str] | None" = None,
                allowed_mask: np.ndarray | None = None, method: str = "auto") -> Hits:
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
        return hits.scaled(1.0)


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
