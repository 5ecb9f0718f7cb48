"""Crop an uploaded photo to the product before it is encoded (visual search), and say where.

A catalog photo shows the product filling a plain frame; a phone photo shows it smaller, on a
table, a bed, a busy background. `locate_product(image)` returns a `ProductCrop`: the box it
cut (in the upright photo's pixels, so a page can draw it on the query photo), the cropped
image, and why it did or did not crop.

**It never crops a product shot** (`is_product_shot`): when at least half of the photo's border
is one studio white (a catalog photo: a shoe on white, a model from head to knee touching the
frame), the photo is left as it is, so a catalog photo searched with the crop on finds itself
exactly as without it (99.5% of the 9,583 Myntra photos; the other 0.5%, three models side by
side or a grey studio, fill the photo, and a box over 90% of the photo is not cut either).

**Otherwise it finds the product region** on a thumbnail: the border pixels are clustered into a
few background colours (k-means); pixels far from all of them are seeds of the product and
OpenCV's GrabCut (`opencv-python-headless`) refines the split with colour models of both sides;
the region most likely to be the product (large and central; `_pick_region`) gives the box,
plus a margin. It leaves the photo alone when nothing stands out, when the region is tiny, or
when it is almost the whole photo.

No learned segmentation model is used: the background-removal libraries on PyPI (rembg and
others) download their networks at first use, which an offline install cannot do. Settings
(`CropSettings`) were chosen on the validation items of the phone-shot families each
held-out-family fold trains on, never on the scores of the family a fold reports
(`benchmarks/phone_crop.py`, docs/encoders.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageOps

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class CropSettings:
    thumb: int = 128              # the mask is computed on a thumbnail this wide
    border: int = 3               # border width (thumbnail pixels) that samples the background
    clusters: int = 4             # background colours
    margin: float = 0.08          # margin around the product box, share of its size
    min_area: float = 0.02        # region smaller than this share of the photo: no crop
    max_area: float = 0.90        # box larger than this share of the photo: no crop
    method: str = "grabcut"       # "grabcut" (border seeds refined by GrabCut) or "border"
    grabcut_iterations: int = 3
    # a product shot: the border's median colour is a studio white (every channel at least
    # `plain_white`) and at least `plain_share` of the border is within `plain_tolerance` of it
    plain_white: float = 235.0
    plain_share: float = 0.5
    plain_tolerance: float = 6.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT = CropSettings()


@dataclass(frozen=True)
class ProductCrop:
    """Where the product is in a query photo: `box` (left, top, right, bottom) in the upright
    photo's pixels, None when the photo was left as it is; `image`: what gets encoded (the
    crop, or the whole upright RGB photo); `reason`: "cropped", "product shot",
    "nothing stands out", "region too small" or "fills the photo"."""

    box: Box | None
    image: Image.Image
    reason: str

    @property
    def cropped(self) -> bool:
        return self.box is not None


def _thumbnail(image: Image.Image, s: CropSettings) -> np.ndarray:
    from scipy import ndimage

    w, h = image.size
    small = image.resize((s.thumb, max(8, round(s.thumb * h / max(1, w)))), Image.BILINEAR)
    return ndimage.uniform_filter(np.asarray(small, np.float32), size=(3, 3, 1))


def _border_pixels(arr: np.ndarray, b: int) -> np.ndarray:
    return np.concatenate([arr[:b].reshape(-1, 3), arr[-b:].reshape(-1, 3),
                           arr[:, :b].reshape(-1, 3), arr[:, -b:].reshape(-1, 3)])


def _background_distance(arr: np.ndarray, s: CropSettings) -> tuple[np.ndarray, float]:
    """Distance of every thumbnail pixel to the nearest of the border's k-means colours, and
    the distance above which a pixel stands out."""
    border = _border_pixels(arr, s.border)
    rng = np.random.default_rng(0)
    k = min(s.clusters, len(border))
    centres = border[rng.choice(len(border), k, replace=False)]
    for _ in range(8):
        nearest = ((border[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
        centres = np.array([border[nearest == j].mean(0) if (nearest == j).any() else centres[j]
                            for j in range(k)])
    dist = np.sqrt(((arr[:, :, None, :] - centres[None, None]) ** 2).sum(-1)).min(-1)
    border_dist = np.sqrt(((border[:, None] - centres[None]) ** 2).sum(-1)).min(-1)
    return dist, max(20.0, 1.5 * float(np.percentile(border_dist, 98)))


def border_plainness(arr: np.ndarray, s: CropSettings) -> tuple[float, np.ndarray]:
    """Share of the border pixels within `s.plain_tolerance` of the border's median colour,
    and that colour."""
    border = _border_pixels(arr, s.border)
    colour = np.median(border, axis=0)
    return float((np.abs(border - colour).max(1) <= s.plain_tolerance).mean()), colour


def _clean(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    mask = ndimage.binary_opening(mask, iterations=1)
    mask = ndimage.binary_closing(mask, iterations=2)
    return ndimage.binary_fill_holes(mask)


def is_product_shot(image: Image.Image, settings: CropSettings = DEFAULT) -> bool:
    """True for a catalog-style photo: at least half its border is one studio white (JPEG
    noise aside), whatever stands in front of it (a shoe, or a model from head to knee who
    touches the frame)."""
    return _product_shot(_thumbnail(image.convert("RGB"), settings), settings)


def _product_shot(arr: np.ndarray, s: CropSettings) -> bool:
    share, colour = border_plainness(arr, s)
    return share >= s.plain_share and float(colour.min()) >= s.plain_white


def _grabcut(arr: np.ndarray, seeds: np.ndarray, s: CropSettings) -> np.ndarray:
    """GrabCut from seeds: the border strip is background, seed pixels probable foreground,
    the rest probable background."""
    import cv2

    h, w = seeds.shape
    mask = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
    mask[seeds] = cv2.GC_PR_FGD
    b = s.border
    mask[:b], mask[-b:], mask[:, :b], mask[:, -b:] = (cv2.GC_BGD,) * 4
    img = np.ascontiguousarray(np.clip(arr, 0, 255).astype(np.uint8)[..., ::-1])
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(0)          # GrabCut's k-means starts from OpenCV's RNG: same photo, same box
    try:
        cv2.grabCut(img, mask, None, bgd, fgd, s.grabcut_iterations, cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        return seeds
    return (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)


def _pick_region(mask: np.ndarray) -> np.ndarray:
    """The connected region most likely the product: largest area, discounted by its distance
    from the centre of the photo (a photographer centres the product, roughly)."""
    from scipy import ndimage

    labels, n = ndimage.label(mask)
    if n <= 1:
        return mask if n == 1 else np.zeros_like(mask)
    idx = np.arange(1, n + 1)
    sizes = ndimage.sum(mask, labels, index=idx)
    cy, cx = np.array(ndimage.center_of_mass(mask, labels, idx)).T
    h, w = mask.shape
    off = np.hypot(cy / h - 0.5, cx / w - 0.5) / np.hypot(0.5, 0.5)
    return labels == idx[int(np.argmax(sizes * (1.0 - 0.5 * off)))]


def product_region(image: Image.Image, settings: CropSettings = DEFAULT) -> np.ndarray:
    """Boolean mask (thumbnail size) of the region taken to be the product."""
    arr = _thumbnail(image.convert("RGB"), settings)
    return _region(arr, settings)


def _region(arr: np.ndarray, s: CropSettings) -> np.ndarray:
    dist, threshold = _background_distance(arr, s)
    seeds = _clean(dist > threshold)
    if s.method == "grabcut" and seeds.any():
        seeds = _clean(_grabcut(arr, seeds, s))
    return _pick_region(seeds)


def locate_product(image: Image.Image, settings: CropSettings = DEFAULT) -> ProductCrop:
    """Where the product is in a query photo, and the photo cropped to it (see the module
    docstring). The box is in the pixels of the upright (EXIF-rotated) photo."""
    image = ImageOps.exif_transpose(image).convert("RGB")
    s = settings
    arr = _thumbnail(image, s)
    if _product_shot(arr, s):
        return ProductCrop(None, image, "product shot")
    mask = _region(arr, s)
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return ProductCrop(None, image, "nothing stands out")
    if len(ys) < s.min_area * mask.size:
        return ProductCrop(None, image, "region too small")
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    if (y1 - y0) * (x1 - x0) > s.max_area * h * w:
        return ProductCrop(None, image, "fills the photo")
    sy, sx = image.height / h, image.width / w
    my, mx = s.margin * (y1 - y0), s.margin * (x1 - x0)
    box = (max(0, int((x0 - mx) * sx)), max(0, int((y0 - my) * sy)),
           min(image.width, int(np.ceil((x1 + mx) * sx))),
           min(image.height, int(np.ceil((y1 + my) * sy))))
    return ProductCrop(box, image.crop(box), "cropped")


def product_box(image: Image.Image, settings: CropSettings = DEFAULT) -> Box | None:
    """(left, top, right, bottom) of the product with its margin, or None (no useful crop)."""
    return locate_product(image, settings).box


def crop_to_product(image: Image.Image, settings: CropSettings = DEFAULT) -> Image.Image:
    """The photo cropped to the product (upright RGB), or unchanged when no crop is useful."""
    return locate_product(image, settings).image


def is_studio_photo(image: Image.Image) -> bool:
    """Kept name: a catalog-style product shot (`is_product_shot`)."""
    return is_product_shot(image)
