"""Item vectors: loading the stored image/text embeddings of a dataset for search and models."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .store import Store


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
    newest version of that encoder.
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
    position = {item: i for i, item in enumerate(item_ids)}
    mats: dict[str, np.ndarray | None] = {}
    present: dict[str, np.ndarray] = {}
    for modality in ("image", "text"):
        ids, vectors = ([], None) if encoder is None or version is None else \
            store.embeddings(dataset, encoder, version, modality)
        flags = np.zeros(len(item_ids), dtype=bool)
        if not ids:
            mats[modality] = None
        else:
            full = np.zeros((len(item_ids), vectors.shape[1]), dtype=np.float32)
            rows = [(position[i], k) for k, i in enumerate(ids) if i in position]
            if rows:
                dst, src = map(np.array, zip(*rows))
                full[dst] = vectors[src]
                flags[dst] = True
            norms = np.linalg.norm(full, axis=1, keepdims=True)
            mats[modality] = full / np.where(norms > 0, norms, 1.0)
        present[modality] = flags
    return ItemVectors(list(item_ids), mats["image"], mats["text"], encoder, version,
                       present["image"], present["text"])


# -- vector search ------------------------------------------------------------------------------
@dataclass
class SearchResult:
    """Top-k items of a search, best first; `score` is the weighted combination of
    `image_score` (query vs the item's photo vector) and `text_score` (vs its text vector)."""

    item_ids: list[str]
    scores: np.ndarray
    image_scores: np.ndarray
    text_scores: np.ndarray

    def __len__(self) -> int:
        return len(self.item_ids)

    def to_records(self) -> list[dict]:
        return [{"item_id": i, "score": float(s), "image_score": _opt(a), "text_score": _opt(b)}
                for i, s, a, b in zip(self.item_ids, self.scores, self.image_scores,
                                      self.text_scores)]


def _opt(value: float) -> float | None:
    return None if not np.isfinite(value) else float(value)


class ItemIndex:
    """Exact cosine search over a dataset's item vectors (normalised matrices in memory).

    Cheap to query (one matrix-vector product per modality: ~1 ms for 10k items) and cheap to
    keep: the app builds it once per (dataset, encoder version) and caches it.
    """

    def __init__(self, vectors: ItemVectors):
        self.vectors = vectors
        self.item_ids = list(vectors.item_ids)
        self._pos = {item: i for i, item in enumerate(self.item_ids)}
        self.image = vectors.image
        self.text = vectors.text
        self.has_image = vectors.has_image
        self.has_text = vectors.has_text
        self.encoder, self.version = vectors.encoder, vectors.version

    @classmethod
    def from_store(cls, store: Store, dataset: str, encoder: str | None = None,
                   version: str | None = None) -> "ItemIndex":
        return cls(load_item_vectors(store, dataset, encoder, version))

    @property
    def spec(self) -> str | None:
        return None if self.encoder is None else f"{self.encoder}@{self.version}"

    @property
    def dim(self) -> int:
        for m in (self.image, self.text):
            if m is not None:
                return int(m.shape[1])
        return 0

    def __len__(self) -> int:
        return len(self.item_ids)

    def search(self, image: np.ndarray | None = None, text: np.ndarray | None = None,
               k: int = 10, image_weight: float = 0.5,
               exclude: "set[str] | list[str] | None" = None) -> SearchResult:
        """Nearest items to a query photo vector and/or query text vector.

        Each query vector is compared (cosine) with every item's photo vector (image score)
        and text vector (text score), averaged over the query vectors given; the result ranks
        by `image_weight * image score + (1 - image_weight) * text score`. An item missing one
        modality is ranked by the other alone.
        """
        queries = [q for q in (image, text) if q is not None]
        if not queries:
            raise ValueError("search needs an image vector, a text vector or both")
        if not 0.0 <= image_weight <= 1.0:
            raise ValueError("image_weight must be between 0 and 1")
        img_s = self._scores(self.image, self.has_image, queries)
        txt_s = self._scores(self.text, self.has_text, queries)
        return self._rank(img_s, txt_s, k, image_weight, {str(x) for x in (exclude or ())})

    def item_vectors(self, item_id: str) -> tuple[np.ndarray | None, np.ndarray | None]:
        """(photo vector, text vector) of an item; None where it has none. KeyError when the
        item is not in the index."""
        pos = self._pos.get(str(item_id))
        if pos is None:
            raise KeyError(f"item {item_id!r} is not in the index")
        image = self.image[pos] if self.image is not None and self.has_image[pos] else None
        text = self.text[pos] if self.text is not None and self.has_text[pos] else None
        return image, text

    def similar(self, item_id: str, k: int = 10, image_weight: float = 0.5,
                exclude: "set[str] | list[str] | None" = None) -> SearchResult:
        """Items most like `item_id` (its own photo and text vectors as the queries); the item
        itself and `exclude` are left out."""
        image, text = self.item_vectors(item_id)
        if image is None and text is None:
            raise KeyError(f"item {item_id!r} has no vectors")
        # compare photo with photos and text with texts: same-modality similarity
        img_s = self._scores(self.image, self.has_image, [image]) if image is not None else None
        txt_s = self._scores(self.text, self.has_text, [text]) if text is not None else None
        n = len(self.item_ids)
        img_s = img_s if img_s is not None else np.full(n, -np.inf)
        txt_s = txt_s if txt_s is not None else np.full(n, -np.inf)
        return self._rank(img_s, txt_s, k, image_weight,
                          {str(item_id)} | {str(x) for x in (exclude or ())})

    def _rank(self, img_s: np.ndarray, txt_s: np.ndarray, k: int, image_weight: float,
              exclude: set[str]) -> SearchResult:
        fin_i, fin_t = np.isfinite(img_s), np.isfinite(txt_s)
        w_i = np.where(fin_i, image_weight, 0.0)
        w_t = np.where(fin_t, 1.0 - image_weight, 0.0)
        w_i = np.where((w_i + w_t == 0) & fin_i, 1.0, w_i)
        w_t = np.where((w_i + w_t == 0) & fin_t, 1.0, w_t)
        total = w_i + w_t
        comb = (np.where(fin_i, img_s, 0) * w_i + np.where(fin_t, txt_s, 0) * w_t)
        comb = np.where(total > 0, comb / np.where(total > 0, total, 1), -np.inf)
        for item in exclude:
            if item in self._pos:
                comb[self._pos[item]] = -np.inf
        k = max(0, min(int(k), int(np.isfinite(comb).sum())))
        order = np.argsort(-comb, kind="stable")[:k]
        return SearchResult([self.item_ids[i] for i in order], comb[order].astype(np.float32),
                            img_s[order].astype(np.float32), txt_s[order].astype(np.float32))

    @staticmethod
    def _scores(matrix: np.ndarray | None, present: np.ndarray,
                queries: list[np.ndarray]) -> np.ndarray:
        """Mean cosine of the queries with each row; -inf where the item has no vector."""
        if matrix is None:
            return np.full(len(present), -np.inf, dtype=np.float64)
        total = np.zeros(matrix.shape[0], dtype=np.float64)
        for q in queries:
            q = np.asarray(q, dtype=np.float32).ravel()
            if q.shape[0] != matrix.shape[1]:
                raise ValueError(f"query vector has {q.shape[0]} dimensions, the index "
                                 f"{matrix.shape[1]}: was it made by another encoder?")
            norm = np.linalg.norm(q)
            total += matrix @ (q / norm if norm > 0 else q)
        total /= len(queries)
        return np.where(present, total, -np.inf)
