"""Exact match: whether a query photo is a catalog product's own photo.

Either the same file (the bytes of one of the photo's nearest catalog photos: a size check,
then a digest; a handful of files read, whatever the catalog's size) or the same look (its
photo vector within `EXACT_COSINE` of the nearest catalog photo's, or within `COPY_COSINE`
and the same picture pixel for pixel: a re-saved or resized copy). Visual search names that
product with a badge.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from recsys.search.hits import Hits
from recsys.search.item_index import ItemIndex
from recsys.store import Store

EXACT_COSINE = 0.985
"""A photo whose vector is this close to a catalog photo's is that photo ("exact match"): a
resized or re-compressed copy of a catalog photo scores 0.93-0.99, two different products of
one style up to 0.96 on Myntra, so below this the badge would also go to look-alikes."""

COPY_COSINE = 0.90
"""Below `EXACT_COSINE`, the nearest catalog photo (at least this close) is the query's own
when the two pictures are also the same pixel for pixel (`same_picture`): a re-saved copy of
a drawn demo photo scored 0.944, under `EXACT_COSINE`."""
COPY_PIXELS = 0.993
"""Thumbnail cosine from which two photos are one picture. Measured on 32 x 32 thumbnails:
copies (JPEG quality 80 / 60 / 40, resized to 160 px) of 150 demo and 150 Myntra photos scored
0.9937 at the least; different photos at most 0.9871 among the 320 demo photos, and 0.9695 at
the 99.99th percentile of 4.5M pairs of 3,000 Myntra photos (the few higher pairs: the same
picture filed under two products)."""

SAME_FILE_CANDIDATES = 5
"""How many of the photo's nearest catalog photos are compared byte for byte with it: a copy
of a catalog photo is its own nearest neighbour (cosine ~1), so its file is among these."""


def photo_digest(data: bytes) -> str:
    """SHA-1 of a photo's bytes (an upload of a catalog file has the file's digest)."""
    return hashlib.sha1(data).hexdigest()


def same_file(store: Store, dataset: str, data: bytes, item_ids: Sequence[str]) -> str | None:
    """The product among `item_ids` whose photo file has exactly these bytes (a size check
    first, then a digest)."""
    digest = None
    rows = store.items(dataset, list(item_ids))
    paths = dict(zip(rows["item_id"].astype(str), rows["image_path"]))
    for item_id in item_ids:
        path = paths.get(str(item_id))
        if not isinstance(path, str) or not path:
            continue
        try:
            if Path(path).stat().st_size != len(data):
                continue
            digest = digest or photo_digest(data)
            if photo_digest(Path(path).read_bytes()) == digest:
                return str(item_id)
        except OSError:
            continue
    return None


def exact_match(store: Store, dataset: str, index: ItemIndex, photo: Any, look: Any,
                nearest: Hits | None = None, method: str = "auto") -> dict[str, Any] | None:
    """The catalog product a photo query is a copy of, as {"item_id", "how": "same file" |
    "same look", "similarity"}; None when it is none.

    `photo` is the query as given (bytes or a path are compared byte for byte), `look` the
    vector of the whole, uncropped photo; `nearest` a photo-only search of that vector over
    the whole catalog when the caller already has one (else it is searched here)."""
    if nearest is None:
        nearest = index.search(image=look, k=SAME_FILE_CANDIDATES, image_weight=1.0,
                               method=method)
    records = nearest.to_records()
    data = None
    if isinstance(photo, (bytes, bytearray)):
        data = bytes(photo)
    elif isinstance(photo, (str, Path)) and Path(photo).is_file():
        data = Path(photo).read_bytes()
    if data is not None and records:
        item = same_file(store, dataset, data,
                         [str(r["item_id"]) for r in records[:SAME_FILE_CANDIDATES]])
        if item is not None:
            return {"item_id": item, "how": "same file", "similarity": 1.0}
    if records:
        top = records[0]
        similarity = top.get("image_score")
        if similarity is not None and similarity == similarity and \
                float(similarity) >= EXACT_COSINE:
            return {"item_id": str(top["item_id"]), "how": "same look",
                    "similarity": float(similarity)}
        if data is not None and similarity is not None and similarity == similarity and \
                float(similarity) >= COPY_COSINE and \
                same_picture(store, dataset, data, str(top["item_id"])):
            return {"item_id": str(top["item_id"]), "how": "same look",
                    "similarity": float(similarity)}
    return None


def thumbnail(source: Any, side: int = 32) -> np.ndarray | None:
    """A photo as a unit vector of its `side` x `side` RGB pixels, mean removed (None when it
    cannot be read): two copies of one picture (re-saved, re-compressed, resized) have a
    cosine near 1, two different photos lower (`COPY_PIXELS`)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
            img.draft("RGB", (4 * side, 4 * side))       # JPEG: decoded small, fast
            a = np.asarray(img.convert("RGB").resize((side, side), Image.BOX),
                           dtype=np.float64).ravel()
    except (OSError, ValueError, UnidentifiedImageError, Image.DecompressionBombError):
        return None
    a -= a.mean()
    norm = float(np.linalg.norm(a))
    return a / norm if norm > 0 else None


def same_picture(store: Store, dataset: str, data: bytes, item_id: str) -> bool:
    """Whether `data` is a copy of `item_id`'s photo file (re-saved, re-compressed or
    resized): their thumbnails' cosine is at least `COPY_PIXELS`."""
    rows = store.items(dataset, [item_id])
    path = rows["image_path"].iloc[0] if len(rows) else None
    if not isinstance(path, str) or not path or not Path(path).is_file():
        return False
    query, own = thumbnail(bytes(data)), thumbnail(path)
    return query is not None and own is not None and float(query @ own) >= COPY_PIXELS
