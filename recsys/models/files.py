"""The model file format: one `.npz` of arrays and a JSON header, no pickle.

`write_model_file` writes a fitted model: its header (format version, name, class, settings,
dataset, best epoch, training history) as JSON bytes, its user and item ids, and its state
arrays, sparse matrices flattened into their CSR parts. Reading treats the file as untrusted
(`recsys.core.model_files`: no pickle, memory bounded by the file): `read_header` gives a
header of this version, `read_contents` the ids, the table of seen items and the state, every
matrix's pointers checked and every weight a number. Anything wrong is a `ModelFileError`
whose reason is in our words (the model turns it into `DamagedModelFile`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys.core.model_files import (
    ModelFileError,
    all_finite,
    csr_parts,
    plain_ids,
    read_json,
    shown_name,
)

FORMAT_VERSION = 1
SEEN = "__seen__"
"""The state entry holding the model's table of seen items (users x items)."""


def write_model_file(path: str | Path, header: dict[str, Any], user_ids: np.ndarray,
                     item_ids: np.ndarray, state: dict[str, Any]) -> None:
    """Write one model file: `header` (plain JSON data) under the format version, the ids, and
    `state` (numpy arrays or scipy sparse matrices, `SEEN` among them)."""
    meta = {"format": FORMAT_VERSION, **header}
    arrays = {"__meta__": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
              "__users__": user_ids.astype(str), "__items__": item_ids.astype(str)}
    arrays.update(_pack(state))
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def read_header(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The header of a model file's arrays (taken out of `arrays`): format, class, name,
    config, dataset, best_epoch and history, each of the right kind."""
    raw = arrays.pop("__meta__", None)
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        raise ModelFileError("its header is missing")
    meta = read_json(raw.tobytes(), "its header")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION or \
            not isinstance(meta.get("class"), str) or \
            not isinstance(meta.get("name"), str) or \
            not isinstance(meta.get("config"), dict) or \
            not isinstance(meta.get("history", []), list) or \
            not isinstance(meta.get("dataset"), (str, type(None))) or \
            not isinstance(meta.get("best_epoch"), (int, type(None))):
        raise ModelFileError("its header is not a model header of this version")
    return meta


@dataclass
class ModelContents:
    """What a model file holds besides its header, checked."""

    user_ids: np.ndarray
    item_ids: np.ndarray
    seen: sp.csr_matrix
    state: dict[str, Any]


def read_contents(arrays: dict[str, np.ndarray]) -> ModelContents:
    """The ids, the table of seen items and the state of a model file's arrays (after
    `read_header`): plain ids, at least one item, a seen table of users x items, every matrix
    rebuilt with its pointers checked, no weight that is NaN or infinite."""
    users = plain_ids(arrays.pop("__users__", np.array(0)), "user ids")
    items = plain_ids(arrays.pop("__items__", np.array(0)), "item ids")
    if not len(items):
        raise ModelFileError("it has no items")
    state = _unpack(arrays)
    seen = state.pop(SEEN, None)
    if not sp.issparse(seen) or seen.shape != (len(users), len(items)):
        raise ModelFileError("its table of seen items does not match its users and items")
    for key, value in state.items():
        if not all_finite(value.data if sp.issparse(value) else value):
            raise ModelFileError(f"its weights {shown_name(key)} hold values that are "
                                 "not numbers (NaN or infinite)")
    return ModelContents(users, items, seen, state)


def _pack(state: dict[str, Any]) -> dict[str, np.ndarray]:
    """Flatten scipy sparse matrices into their CSR arrays for np.savez."""
    out = {}
    for key, value in state.items():
        if sp.issparse(value):
            csr = value.tocsr()
            out[f"{key}::data"], out[f"{key}::indices"] = csr.data, csr.indices
            out[f"{key}::indptr"], out[f"{key}::shape"] = csr.indptr, np.array(csr.shape)
        else:
            out[key] = np.asarray(value)
    return out


def _unpack(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The state saved by `_pack`: plain arrays, and CSR matrices rebuilt from their four parts
    with every pointer checked (`model_files.csr_parts`)."""
    out: dict[str, Any] = {}
    for key, value in arrays.items():
        base, sep, part = key.partition("::")
        if not sep:
            out[key] = value
        elif part == "data":
            try:
                parts = [arrays[f"{base}::{p}"] for p in ("indices", "indptr", "shape")]
            except KeyError:
                raise ModelFileError(f"the matrix {shown_name(base)} is incomplete") from None
            out[base] = csr_parts(value, *parts, what=shown_name(base))
        elif part not in ("indices", "indptr", "shape"):
            raise ModelFileError(f"it holds an array {shown_name(key)} this version does not "
                                 "know")
        elif f"{base}::data" not in arrays:
            raise ModelFileError(f"the matrix {shown_name(base)} is incomplete")
    return out
