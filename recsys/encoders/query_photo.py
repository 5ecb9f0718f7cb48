"""A photo query's vector for visual search: the whole photo and its product crop, fused.

`encode_query_photo(encoder, image)` finds the product (`crop.locate_product`), encodes the
whole photo and the crop in one batch, and returns their normalised mean as the search vector
(`QueryPhoto.vector`), with the crop (its box, to draw on the query photo, and the reason) and
the whole photo's vector (`full_vector`, e.g. for exact-match detection). A product shot is
not cropped, so its vector is exactly the whole photo's and a catalog photo finds itself first.

Why the mean of the two: on the phone-shot families, each chosen without looking at the family
it was scored on (docs/encoders.md, "Phone shots"), the fused vector beat the crop alone and the
whole photo alone on the other families' validation shots in every held-out-family fold; a
crop that misses part of the product is corrected by the whole photo, and the whole photo's
background is diluted by the crop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .crop import DEFAULT, CropSettings, ProductCrop, locate_product


@dataclass
class QueryPhoto:
    vector: np.ndarray              # what to search with (unit length)
    full_vector: np.ndarray         # the whole photo's vector
    crop: ProductCrop               # box (None: not cropped), cropped image, reason

    def to_dict(self) -> dict[str, Any]:
        return {"box": list(self.crop.box) if self.crop.box is not None else None,
                "reason": self.crop.reason, "cropped": self.crop.cropped}


def fuse(full: np.ndarray, cropped: np.ndarray) -> np.ndarray:
    """Normalised mean of the whole photo's and the crop's vectors (rows)."""
    v = np.asarray(full, np.float32) + np.asarray(cropped, np.float32)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > 0, n, 1.0)


def encode_query_photo(encoder, image, settings: CropSettings = DEFAULT) -> QueryPhoto:
    """The search vector of a query photo (a PIL image; see the module docstring)."""
    crop = locate_product(image, settings)
    if crop.box is None:
        full = encoder.encode_images([crop.image])[0]
        return QueryPhoto(full, full, crop)
    full, part = encoder.encode_images([_upright(image), crop.image])
    return QueryPhoto(fuse(full, part), full, crop)


def _upright(image):
    from PIL import ImageOps
    return ImageOps.exif_transpose(image).convert("RGB")
