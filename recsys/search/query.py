"""A search query, from what a user gave to the ranked items: checked (`SimilarQuery.parse`,
`check_method`, `check_storage`, `check_weight`, `price_range`), its photo decoded and cropped
to the product (`decode_photo`, `product_crop`, `crop_preview`), encoded (`encode_query`,
`add_crop`) and ranked with the dataset's index (`rank_similar`).

A query is a still photo, a short video (told apart from a photo by its content: `is_video`),
a catalog product, words, or a photo or product refined with words. The use cases
(`recsys.usecases.search`) run these steps in order, time them and join the hits with the
catalog.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from recsys.core.errors import RecsysError
from recsys.core.limits import as_int
from recsys.search.hits import Hits
from recsys.search.item_index import ItemIndex, default_storage
from recsys.search.vector_index import METHODS, STORAGES

if TYPE_CHECKING:
    from recsys.encoders import Encoder

CROP_JPEG_QUALITY = 92
PREVIEW_SIDE = 640
"""The query photo shown with its crop box: at most this many pixels on its long side."""


class SearchError(RecsysError):
    """A search asked in a way that cannot be answered (no query, bad weight, unknown item)."""


@dataclass(frozen=True)
class SimilarQuery:
    """What `search_similar` was asked, checked: at most one of a still `photo` (a path, bytes
    or a PIL image), a `video` (a path, bytes or a file object) and a catalog product
    (`item_id`), with or without `text`; `k` results; the `filters` and `price` range as
    given; whether to `crop` a photo to its product."""

    photo: Any = None
    video: Any = None
    text: str | None = None
    item_id: str | None = None
    k: int = 10
    filters: Mapping[str, Sequence[str]] | None = None
    price: tuple[float | None, float | None] | None = None
    crop: bool = True

    @classmethod
    def parse(cls, *, photo: Any = None, video: Any = None, text: str | None = None,
              item_id: str | None = None, k: Any = 10,
              filters: Mapping[str, Sequence[str]] | None = None,
              price: tuple[float | None, float | None] | None = None,
              crop: bool = True) -> "SimilarQuery":
        """The query, or a `SearchError` saying what is missing or contradictory. Video bytes
        or a video file given as `photo` are taken as the video."""
        if photo is not None and video is None and is_video(photo):
            photo, video = None, photo
        if video is not None and photo is not None:
            raise SearchError("Search by a photo or by a video, not both.")
        text = (text or "").strip() or None
        if photo is None and video is None and item_id is None and text is None:
            raise SearchError("Give a query: a photo, a catalog product, words, or a photo or "
                              "product with words.")
        if (photo is not None or video is not None) and item_id is not None:
            raise SearchError("Search by a photo or by a catalog product, not both.")
        k = as_int(k, "k")
        if k < 1:
            raise SearchError("The number of results must be at least 1.")
        return cls(photo, video, text, item_id, k, filters, price, crop)

    @property
    def by_look(self) -> bool:
        """A photo or a video: the products' look is searched."""
        return self.photo is not None or self.video is not None

    @property
    def crops_photo(self) -> bool:
        """A still photo to crop to its product before it is encoded."""
        return self.crop and self.photo is not None

    def label(self) -> str | None:
        """How the photo or video is named to a user: its path, else "uploaded ..."."""
        source, kind = (self.video, "video") if self.video is not None else (self.photo, "photo")
        if source is None:
            return None
        return str(source) if isinstance(source, (str, Path)) else f"uploaded {kind}"

    def describe(self, image_weight: float) -> dict[str, Any]:
        """The query in plain values (what the results say they answer)."""
        return {"image": self.label(), "text": self.text, "item_id": self.item_id,
                "image_weight": image_weight,
                "filters": {c: list(v) for c, v in (self.filters or {}).items() if v},
                "price": None if price_range(self.price) is None else list(self.price),
                "crop": bool(self.crop) and self.video is None}


def is_video(photo: Any) -> bool:
    """Video bytes or a video file given where a photo is expected."""
    from recsys.data.video import is_video_file, looks_like_video

    if isinstance(photo, (bytes, bytearray, memoryview)):
        return looks_like_video(bytes(photo[:16]))
    if isinstance(photo, (str, Path)):
        return is_video_file(photo)
    return False


def check_weight(image_weight: float) -> float:
    """The weight of the products' photo vectors against their text vectors, 0..1."""
    weight = float(image_weight)
    if not 0.0 <= weight <= 1.0:
        raise SearchError("The image weight must be between 0 and 1.")
    return weight


def check_method(method: str | None) -> str:
    """How the search ranks (`vector_index.METHODS`; None: auto)."""
    method = "auto" if method is None else str(method)
    if method not in METHODS:
        raise SearchError(f"Unknown search method {method!r}; use one of {', '.join(METHODS)}.")
    return method


def check_storage(storage: str | None) -> str:
    """How the index stores the vectors (`vector_index.STORAGES`; None:
    $RECSYS_INDEX_STORAGE, else float32)."""
    storage = default_storage() if storage is None else str(storage)
    if storage not in STORAGES:
        raise SearchError(f"Unknown index storage {storage!r}; use one of "
                          f"{', '.join(STORAGES)}.")
    return storage


def check_ann(index: ItemIndex, method: str) -> None:
    """An approximate search is asked only of an index that has an approximate part."""
    if method == "ann" and index.vectors.ann is None:
        raise SearchError(
            f"This catalog has no approximate index: it is built above "
            f"{index.vectors.ann_min_items:,} products and this one has {len(index):,}, where "
            "exact search is already fast. Search without --ann (or with --exact).")


def price_range(price: tuple[float | None, float | None] | None
                ) -> tuple[float, float] | None:
    """A (low, high) price filter with open ends filled in; None when nothing is asked."""
    if price is None or (price[0] is None and price[1] is None):
        return None
    low = float("-inf") if price[0] is None else float(price[0])
    high = float("inf") if price[1] is None else float(price[1])
    if low != low or high != high or low > high:
        raise SearchError(f"The price range must go from low to high, got {price[0]} to "
                          f"{price[1]}.")
    return low, high


# -- the query photo -----------------------------------------------------------------------------
def decode_photo(photo: Any, encoder: Encoder, crop: bool) -> tuple[Any, Any]:
    """The query photo decoded once (`images.load_images`): the whole photo to crop (None
    without `crop`) and the photo at the encoder's input size to embed, exactly as the
    encoder would decode it. A photo given as bytes, a file or a path is untrusted: it is
    decoded by a worker process under the photo budget (`recsys.core.sandbox`)."""
    if hasattr(photo, "convert"):                      # a PIL image, already decoded
        return photo, photo
    from recsys.data.images import load_images

    size = getattr(encoder, "image_size", None)
    images = load_images(photo, ([None] if crop else []) + [size], trusted=False)
    return (images[0] if crop else None), images[-1]


def crop_jpeg(photo: Any) -> bytes:
    """The photo cropped to the product (`recsys.encoders.crop_to_product`), as JPEG."""
    from recsys.encoders import crop_to_product

    return to_jpeg(crop_to_product(_decoded(photo)))


def product_crop(photo: Any, catalog_photo: bool = False):
    """Where the product is in a query photo (`recsys.encoders.crop.locate_product`): a
    `ProductCrop` with its `box` in the upright photo's pixels (None: left as it is), the
    cropped `image` and the `reason`. A product shot is never cropped, nor a photo that is a
    catalog photo (`catalog_photo`, from `exact_match`): the crop cannot lose its product."""
    from recsys.encoders.crop import ProductCrop, locate_product

    if catalog_photo:
        from PIL import ImageOps

        return ProductCrop(None, ImageOps.exif_transpose(_decoded(photo)).convert("RGB"),
                           "catalog photo")
    return locate_product(_decoded(photo))


def to_jpeg(image: Any, max_side: int | None = None) -> bytes:
    """An RGB JPEG of a decoded image, at most `max_side` pixels on its long side."""
    import io

    image = image.convert("RGB")
    if max_side and max(image.size) > max_side:
        image = image.copy()
        image.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=CROP_JPEG_QUALITY)
    return buf.getvalue()


def crop_preview(photo: Any, crop: Any, max_side: int = PREVIEW_SIDE
                 ) -> tuple[bytes, dict[str, Any]]:
    """The whole query photo, upright, as a JPEG to show (at most `max_side` px), and where the
    crop is on it: {"box": [left, top, right, bottom] in the upright photo's pixels or None,
    "fraction": the box as fractions of the photo's width and height (to draw on any size),
    "reason", "cropped", "size": [width, height]}."""
    from PIL import ImageOps

    upright = ImageOps.exif_transpose(_decoded(photo))
    w, h = upright.size
    box = None if crop.box is None else [int(v) for v in crop.box]
    fraction = None if box is None else [box[0] / w, box[1] / h, box[2] / w, box[3] / h]
    return to_jpeg(upright, max_side), {"box": box, "fraction": fraction,
                                        "reason": str(crop.reason), "cropped": box is not None,
                                        "size": [w, h]}


def _decoded(photo: Any):
    if hasattr(photo, "convert"):
        return photo
    from recsys.data.images import load_image

    return load_image(photo)


# -- encoding and ranking ------------------------------------------------------------------------
@dataclass
class QueryVectors:
    """The query's vectors: `text` (the words), `look` (the photo or video as searched: with
    the crop, the whole photo's and the crop's vectors fused, `add_crop`) and `whole_photo`
    (the uncropped photo, for the exact match)."""

    text: np.ndarray | None = None
    look: np.ndarray | None = None
    whole_photo: np.ndarray | None = None


def encode_query(encoder: Encoder, query: SimilarQuery, sized: Any = None,
                 cropped: bytes | None = None) -> QueryVectors:
    """The query's vectors by `encoder`: `sized` is the photo decoded at the encoder's size
    (`decode_photo`), `cropped` the JPEG of its product (`crop_jpeg`), if any."""
    out = QueryVectors(encoder.encode_text(query.text) if query.text else None)
    if query.video is not None:
        from recsys.data.video import encode_video

        out.look = out.whole_photo = encode_video(encoder, query.video)
    elif query.photo is not None:
        from recsys.data.images import load_image

        from recsys.encoders.query_photo import fuse

        out.whole_photo = encoder.encode_image(sized)
        # the whole photo and its product crop, fused (`encoders.query_photo`): the crop alone
        # loses what it cut off, the whole photo keeps its background
        out.look = out.whole_photo if cropped is None else fuse(out.whole_photo, (
            encoder.encode_image(load_image(cropped, getattr(encoder, "image_size", None),
                                            trusted=True))))
    return out


def add_crop(encoder: Encoder, vectors: QueryVectors, cropped: bytes) -> QueryVectors:
    """The search vector of a cropped photo: the whole photo's vector and the crop's, fused
    (`encoders.query_photo.fuse`: the crop alone loses what it cut off, the whole photo keeps
    its background; on held-out phone-shot families the fusion beat both, docs/encoders.md)."""
    from recsys.data.images import load_image
    from recsys.encoders.query_photo import fuse

    part = encoder.encode_image(load_image(cropped, getattr(encoder, "image_size", None),
                                           trusted=True))
    vectors.look = fuse(vectors.whole_photo, part)
    return vectors


def rank_similar(index: ItemIndex, query: SimilarQuery, vectors: QueryVectors,
                 image_weight: float, k: int, allowed: np.ndarray | None,
                 method: str) -> Hits:
    """The `k` products nearest to the query within `allowed`: to its photo / video and words,
    or to a catalog product (its own photo and text vectors; itself left out), or to the
    product's photo refined with words. KeyError for a product not in the index."""
    item_id = None if query.item_id is None else str(query.item_id)
    if item_id is not None and index.position(item_id) is None:
        raise KeyError(f"item {item_id!r} is not in the index")
    if query.by_look or item_id is None:
        return index.search(image=vectors.look, text=vectors.text, k=k,
                            image_weight=image_weight, allowed_mask=allowed, method=method)
    if vectors.text is None:
        return index.similar(item_id, k=k, image_weight=image_weight, allowed_mask=allowed,
                             method=method)
    return index.search(image=index.vector(item_id, "image"), text=vectors.text, k=k,
                        image_weight=image_weight, exclude={item_id}, allowed_mask=allowed,
                        method=method)
