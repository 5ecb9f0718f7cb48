"""Small array helpers shared by every package that handles vectors."""
from __future__ import annotations

import numpy as np


COSINE_TABLE_MAX_ITEMS = 4096
"""Up to this many items (64 MB of float32 cosines) `cosine_table` may compute all pairs."""


def cosine_table(vectors: np.ndarray, lookups: int) -> np.ndarray | None:
    """All the items' pairwise products (items x items, in `vectors`' dtype), when looking
    `lookups` pairs up in it is cheaper than computing them one list at a time: at most
    `COSINE_TABLE_MAX_ITEMS` items and no more pairs than lookups (the demo's 320 items in
    its first evaluation's re-ranking and list diversity); else None."""
    m = vectors.shape[0]
    if m > COSINE_TABLE_MAX_ITEMS or m * m > lookups:
        return None
    return vectors @ vectors.T


def normalise_rows(mat: np.ndarray, *, in_place: bool = False) -> np.ndarray:
    """L2-normalise the rows of `mat` as float32 (zero rows stay zero).

    By default the input is left alone and a float32 copy is returned; with `in_place=True` a
    float32 `mat` is normalised where it is (no second matrix: what the loaders of a million
    vectors need) and returned."""
    if in_place:
        if mat.dtype != np.float32:
            raise TypeError("normalise_rows(in_place=True) needs a float32 matrix")
    else:
        mat = np.array(mat, dtype=np.float32)
    norms = np.sqrt(np.einsum("ij,ij->i", mat, mat))
    np.divide(mat, np.where(norms > 0, norms, 1.0)[:, None], out=mat)
    return mat
