"""Item vector modalities as data: which a dataset has, where each comes from, their matrices.

An item can carry any set of vector modalities: `image` and `text` made by an encoder from its
photo and caption, `video` made by the same encoder's image tower from frames of its product
video, and any modality a user brings (`import-features`: MMRec's `image_feat.npy`, a `style`
vector...). Each modality has its own dimension and its own source, an "encoder@version" pair
of the embeddings table:

* vectors an encoder computed are stored under that encoder's name and version;
* vectors a user imported are stored under the encoder name `features` (`FEATURES_ENCODER`)
  with the file's digest as version; one imported set per (dataset, modality) is kept.

`modality_sources` says which set each modality is read from (by default the newest set of
each modality; a run's recorded sources to reproduce it); `load_modality_matrices` reads them
as L2-normalised matrices aligned with a list of item ids, with a presence mask per modality
(items without a vector get a zero row). Models, explanations and (later) the search index read
item vectors through this one loader.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd

from recsys.core.arrays import normalise_rows
from recsys.core.errors import RecsysError
from recsys.store import Store

FEATURES_ENCODER = "features"
"""The encoder name of imported vectors (their version is a digest of the imported file)."""

ENCODER_MODALITIES = ("image", "text", "video")
"""Modalities an encoder computes from an item's media (photo, caption, video frames)."""

ANY_VECTORS = "vectors"
"""A pseudo-signal: "at least one vector modality". A content or fusion model left to use
every modality the dataset has requires it before it knows the dataset."""

RESERVED = ("cf", ANY_VECTORS, "ratings")
MODALITY_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")


class ModalityError(RecsysError):
    """A modality name or source that cannot be used."""


def check_modality_name(name: str) -> str:
    """A modality name: lower-case letters, digits, '-' and '_', starting with a letter (at
    most 32 characters), and not one of the reserved signal names."""
    name = str(name).strip()
    if not MODALITY_NAME.fullmatch(name) or name in RESERVED:
        raise ModalityError(
            f"{name!r} cannot name a modality: use lower-case letters, digits, '-' or '_' "
            f"(starting with a letter, at most 32 characters), not {', '.join(RESERVED)}.")
    return name


def modality_order(names) -> list[str]:
    """Modalities in display order: image, text, video, then the others by name."""
    names = set(names)
    return [m for m in ENCODER_MODALITIES if m in names] + sorted(names - set(ENCODER_MODALITIES))


@dataclass(frozen=True)
class ModalitySource:
    """Where one modality's vectors come from: an embeddings set of the store."""

    modality: str
    encoder: str
    version: str
    dim: int = 0
    items: int = 0

    @property
    def spec(self) -> str:
        return f"{self.encoder}@{self.version}"

    @property
    def imported(self) -> bool:
        return self.encoder == FEATURES_ENCODER

    def to_dict(self) -> dict:
        return {"modality": self.modality, "encoder": self.encoder, "version": self.version,
                "spec": self.spec, "dim": self.dim, "items": self.items,
                "imported": self.imported}


def _sets(store: Store, dataset: str) -> pd.DataFrame:
    """The dataset's embedding sets (encoder, version, modality, n_items, updated_at), newest
    first."""
    return store.embedding_sets(dataset)


def modality_sources(store: Store, dataset: str, encoder: str | None = None,
                     sources: Mapping[str, str] | None = None) -> dict[str, ModalitySource]:
    """The set each modality of a dataset is read from, in display order.

    `sources` ({modality: "encoder@version"}, e.g. recorded with a run) pins modalities to
    exact sets; a pinned set that no longer exists falls back to the modality's newest set.
    `encoder` ("name" or "name@version") pins the encoder-made modalities (image, text, video)
    to that encoder; imported modalities stay the newest. Otherwise each modality comes from
    its newest set.
    """
    sets = _sets(store, dataset)
    if sets.empty:
        return {}
    name, _, version = (encoder or "").partition("@")
    if name and not version:
        mine = sets[sets["encoder"] == name]
        version = None if mine.empty else str(mine.iloc[0]["version"])
    out: dict[str, ModalitySource] = {}
    for modality in modality_order(sets["modality"].unique()):
        rows = sets[sets["modality"] == modality]
        pinned = (sources or {}).get(modality)
        chosen = None
        if pinned:
            enc, _, ver = str(pinned).partition("@")
            match = rows[(rows["encoder"] == enc) & (rows["version"] == ver)]
            chosen = match.iloc[0] if len(match) else None
        elif name and modality in ENCODER_MODALITIES:
            match = rows[(rows["encoder"] == name) & (rows["version"] == version)]
            if match.empty:
                continue                     # this encoder made no vectors of this modality
            chosen = match.iloc[0]
        if chosen is None:
            chosen = rows.iloc[0]
        out[modality] = ModalitySource(modality, str(chosen["encoder"]), str(chosen["version"]),
                                       items=int(chosen["n_items"]))
    return out


def searchable_encoder(store: Store, dataset: str) -> str | None:
    """"name@version" of the newest vectors an encoder made (imported features cannot encode a
    query, so search never picks them); None when there are none."""
    sets = _sets(store, dataset)
    sets = sets[(sets["encoder"] != FEATURES_ENCODER) & sets["modality"].isin(("image", "text"))]
    if sets.empty:
        return None
    return f"{sets.iloc[0]['encoder']}@{sets.iloc[0]['version']}"


@dataclass
class ModalityMatrices:
    """L2-normalised item vectors per modality, rows aligned with `item_ids` (zero rows for
    items without a vector, flagged False in `present`), and where each came from."""

    item_ids: list[str]
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    present: dict[str, np.ndarray] = field(default_factory=dict)
    sources: dict[str, ModalitySource] = field(default_factory=dict)

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.vectors)

    def source_specs(self) -> dict[str, str]:
        """{modality: "encoder@version"}: what a run records to be explained later."""
        return {m: s.spec for m, s in self.sources.items()}

    def encoder_spec(self) -> str | None:
        """The encoder of the image / text vectors ("name@version"; None without any): the
        encoder a run was trained with, as recorded before modalities became data."""
        for m in ("image", "text", "video"):
            if m in self.sources and not self.sources[m].imported:
                return self.sources[m].spec
        return None


def load_modality_matrices(store: Store, dataset: str, item_ids: list[str] | None = None,
                           sources: Mapping[str, str] | None = None, encoder: str | None = None,
                           modalities: tuple[str, ...] | None = None) -> ModalityMatrices:
    """Every modality's vectors (or only `modalities`) for `item_ids` (default: the catalog,
    by id), from the sets `modality_sources` picks (`sources`, `encoder` as there)."""
    if item_ids is None:
        item_ids = store.item_ids(dataset)
    item_ids = [str(i) for i in item_ids]
    position = pd.Index(item_ids)
    out = ModalityMatrices(item_ids)
    for modality, src in modality_sources(store, dataset, encoder, sources).items():
        if modalities is not None and modality not in modalities:
            continue
        ids, vectors = store.embeddings(dataset, src.encoder, src.version, modality)
        if not ids:
            continue
        rows = position.get_indexer(ids)
        ok = rows >= 0
        full = np.zeros((len(item_ids), vectors.shape[1]), dtype=np.float32)
        full[rows[ok]] = vectors[ok]
        flags = np.zeros(len(item_ids), dtype=bool)
        flags[rows[ok]] = True
        flags &= np.abs(full).sum(axis=1) > 0
        out.vectors[modality] = normalise_rows(full)
        out.present[modality] = flags
        out.sources[modality] = ModalitySource(modality, src.encoder, src.version,
                                               int(vectors.shape[1]), int(flags.sum()))
    return out


def dataset_modalities(store: Store, dataset: str) -> list[ModalitySource]:
    """The modalities a dataset has (its newest set of each), with dimension and item count,
    without reading the vectors beyond one row each."""
    out = []
    for modality, src in modality_sources(store, dataset).items():
        dim = store.embedding_dim(dataset, src.encoder, src.version, modality)
        out.append(ModalitySource(modality, src.encoder, src.version, dim, src.items))
    return out
