"""The catalog's type names through an encoder's text tower, kept on disk beside the search index.

"No close match" (`match_decision`) compares a photo query with the catalog's article type
names, and with a broad list of other product-type names (`product_types.PRODUCT_TYPES`), as
the encoder's text tower sees them (`TypeTexts`). Computing them runs the text tower over 5
prompts per name (about 3.6 s for Myntra's 75 types alone on the busy box): once per process,
on the first photo query, before this module. Now they are computed when the catalog is
embedded (`vectors.embed.embed_items`, the text tower is loaded then anyway), written to

    <db folder>/artifacts/<db>/indexes/<dataset>/<encoder>@<version>/type-names.npz

(beside `match-threshold.json`; plain arrays, read with ``allow_pickle=False``) and read back
when the search is prepared. A type the file lacks (new products of a new kind) is computed and
added; a file of another prompt set or an unreadable one is computed again.

`LABEL_COLUMNS` / `product_kinds` say which catalog column names the kinds of product
(article type, else sub-category, else master category).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .match_decision import TypeTexts, name_vectors

FILE = "type-names.npz"
LABEL_COLUMNS = ("article_type", "sub_category", "master_category")
"""The catalog column whose values stand for "a kind of product", first one with two values."""


def product_kinds(columns: Any, item_ids: Sequence[str]) -> list[str] | None:
    """Article types (or the first of `LABEL_COLUMNS` with two values or more) aligned with
    `item_ids`, from a narrow catalog read (item_id plus those columns); None without any."""
    frame = columns.set_index(columns["item_id"].astype(str))
    for column in LABEL_COLUMNS:
        if column not in frame:
            continue
        values = frame[column].reindex([str(i) for i in item_ids])
        values = values.where(values.notna(), "").astype(str).str.strip()
        if values[values != ""].nunique() >= 2:
            return list(values)
    return None


def type_names_folder(db_path: str | Path, dataset: str, name: str, version: str,
                      create: bool = True) -> Path | None:
    """Where an encoder version's type-name vectors of a dataset are kept (the index's folder);
    None for an in-memory database or when the folder cannot be made."""
    from recsys.core import config
    from recsys.core.files import path_part

    if str(db_path) == ":memory:":
        return None
    try:
        return config.artifacts_dir(db_path, "indexes", path_part(dataset),
                                    path_part(f"{name}@{version}"), create=create)
    except OSError:
        return None


def _prompt_key() -> str:
    """Changes when the prompts behind the vectors change (the file is then computed again)."""
    from .captions import ZERO_SHOT_TEMPLATES

    return hashlib.sha256("\n".join(ZERO_SHOT_TEMPLATES).encode()).hexdigest()[:16]


def read_type_vectors(folder: Path | None) -> dict[str, np.ndarray]:
    """{type name: unit vector} saved in `folder` ({} when absent, unreadable or made with
    other prompts)."""
    path = None if folder is None else Path(folder) / FILE
    if path is None or not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["prompts"]) != _prompt_key():
                return {}
            names, vectors = [str(n) for n in data["names"]], np.asarray(data["vectors"])
    except (OSError, ValueError, KeyError, EOFError):
        return {}
    if vectors.ndim != 2 or len(vectors) != len(names) or not np.isfinite(vectors).all():
        return {}
    return dict(zip(names, vectors.astype(np.float64)))


def write_type_vectors(folder: Path, vectors: dict[str, np.ndarray]) -> None:
    """Write {type name: vector} to `folder` atomically (no pickle: a unicode and a float
    array)."""
    from recsys.core.files import atomic_path

    names = sorted(vectors)
    with atomic_path(Path(folder) / FILE) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, names=np.asarray(names, dtype=str), prompts=np.asarray(_prompt_key()),
                     vectors=np.stack([vectors[n] for n in names]).astype(np.float32))


def catalog_type_texts(encoder: Any, types: Sequence[str], folder: Path | None,
                       open_vocabulary: bool = True) -> TypeTexts:
    """`TypeTexts` of `types` (sorted as given) with the open vocabulary
    (`product_types.PRODUCT_TYPES`): read from `folder` when it holds every name, else the
    missing ones through `encoder.encode_texts` (`match_decision.name_vectors`) and the file
    rewritten with them (a read-only folder: kept in memory only)."""
    from .product_types import PRODUCT_TYPES

    types = [str(t) for t in types]
    opn = list(PRODUCT_TYPES) if open_vocabulary else []
    saved = read_type_vectors(folder)
    missing = [t for t in dict.fromkeys(types + opn) if t not in saved]
    if missing:
        saved.update(zip(missing, name_vectors(encoder, missing)))
        if folder is not None:
            try:
                write_type_vectors(folder, saved)
            except OSError:
                pass                            # a read-only or full disk: computed each time
    return TypeTexts(types, np.stack([saved[t] for t in types]), open_names=opn,
                     open_vectors=np.stack([saved[n] for n in opn]) if opn else None)


def store_catalog_type_names(store: Any, dataset: str, encoder: Any) -> int:
    """Compute and keep the type-name vectors of a dataset's catalog for `encoder` (the
    embedding calls this); the number of types newly computed (0 when all were kept already,
    the encoder has no text tower or the catalog no kinds of product)."""
    if not hasattr(encoder, "encode_texts"):
        return 0
    columns = store.item_columns(dataset, list(LABEL_COLUMNS))
    kinds = product_kinds(columns, list(columns["item_id"]))
    folder = type_names_folder(store.path, dataset, encoder.name, encoder.version)
    if kinds is None or folder is None:
        return 0
    types = sorted({k for k in kinds if k})
    before = set(read_type_vectors(folder))
    found = catalog_type_texts(encoder, types, folder)
    return len((set(types) | set(found.open_names)) - before)


def type_texts_of(encoder: Any, types: Sequence[str], open_vocabulary: bool = True) -> TypeTexts:
    """`TypeTexts` of a catalog's article `types` and the broad list (unless `open_vocabulary`
    is False) through the encoder's text tower, nothing kept on disk (the benchmarks' and
    `eval-encoder`'s path)."""
    return catalog_type_texts(encoder, types, None, open_vocabulary)
