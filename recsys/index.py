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
