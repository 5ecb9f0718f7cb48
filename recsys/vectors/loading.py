"""Loading a dataset's stored item vectors into memory: which encoder version is the newest
(`newest_vectors`), and the image and text matrices of every item (`load_item_vectors`), streamed
from DuckDB in batches into one preallocated matrix per modality and normalised in place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.core.arrays import normalise_rows as _normalise
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


def normalise_rows(mat: np.ndarray) -> np.ndarray:
    """L2-normalise a float32 matrix's rows in place (zero rows stay zero); returns `mat`."""
    return _normalise(mat, in_place=True)


def newest_vectors(store: Store, dataset: str, encoder: str | None = None,
                   version: str | None = None) -> tuple[str, str] | None:
    """(encoder, version) of the most recently written item vectors of a dataset (of `encoder`,
    of `version` when given); None when there are none."""
    sets = store.embedding_sets(dataset)                  # newest first
    if encoder is not None:
        sets = sets[sets["encoder"] == encoder]
        if version is not None:
            sets = sets[sets["version"] == version]
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
        found = newest_vectors(store, dataset)
        if found is not None:
            encoder, version = found
    elif version is None:
        found = newest_vectors(store, dataset, encoder)
        version = None if found is None else found[1]
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
