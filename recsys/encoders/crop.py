"""Crop an uploaded photo to the product before it is encoded (visual search).

Catalog photos show the product filling a plain white frame; a phone photo shows it small, on
a table or a bed. `crop_to_product` finds the product by how its colours differ from the
photo's border (the background): the border pixels of a 96-px thumbnail are clustered into 4
colours (k-means), a pixel whose colour is far from all of them is product, the mask is cleaned
(opening, closing, holes filled), its largest region's box plus an 8% margin is the crop.

No learned segmentation model is used: the background-removal libraries on PyPI (rembg and
others) download their networks at first use, which this project cannot rely on offline; this
crop needs numpy and scipy only and takes about 10 ms. It leaves the photo as it is when:

- its border is plain near-white (a studio photo: already framed; cropping it would move it
  away from its own catalog vector),
- no region stands out from the border (the product touches the edges, or the background is as
  varied as the product), or the region is tiny (< 2% of the thumbnail) or almost the whole
  photo (> 90%): there is nothing useful to crop.

On the phone-shot test (docs/encoders.md) it lifts exact-item recall@10 of held-out products
from phone-style photos; that is why the app's visual search uses it by default.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

THUMB = 96            # the mask is computed on a thumbnail this wide
BORDER = 3            # border width (thumbnail pixels) that samples the background
CLUSTERS = 4          # background colours
MARGIN = 0.08         # margin around the product box, share of its size
MIN_AREA, MAX_AREA = 0.02, 0.90


def _thumbnail(image: Image.Image) -> np.ndarray:
    from scipy import ndimage

    w, h = image.size
    small = image.resize((THUMB, max(8, round(THUMB * h / max(1, w)))), Image.BILINEAR)
    return ndimage.uniform_filter(np.asarray(small, np.float32), size=(3, 3, 1))


def _border_pixels(arr: np.ndarray) -> np.ndarray:
    b = BORDER
    return np.concatenate([arr[:b].reshape(-1, 3), arr[-b:].reshape(-1, 3),
                           arr[:, :b].reshape(-1, 3), arr[:, -b:].reshape(-1, 3)])


def is_studio_photo(image: Image.Image) -> bool:
    """True when the photo's border is plain near-white (a catalog-style product shot)."""
    border = _border_pixels(_thumbnail(image.convert("RGB")))
    return bool(border.mean() > 235 and border.std(axis=0).max() < 10)


def product_mask(image: Image.Image) -> np.ndarray:
    """Boolean mask (thumbnail size) of the largest region that stands out from the border."""
    from scipy import ndimage

    arr = _thumbnail(image.convert("RGB"))
    border = _border_pixels(arr)
    rng = np.random.default_rng(0)
    centres = border[rng.choice(len(border), CLUSTERS, replace=False)]
    for _ in range(8):                                   # k-means on the border colours
        nearest = ((border[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
        centres = np.array([border[nearest == j].mean(0) if (nearest == j).any() else centres[j]
                            for j in range(CLUSTERS)])
    dist = np.sqrt(((arr[:, :, None, :] - centres[None, None]) ** 2).sum(-1)).min(-1)
    border_dist = np.sqrt(((border[:, None] - centres[None]) ** 2).sum(-1)).min(-1)
    mask = dist > max(20.0, 1.5 * float(np.percentile(border_dist, 98)))
    mask = ndimage.binary_opening(mask, iterations=1)
    mask = ndimage.binary_closing(mask, iterations=2)
    mask = ndimage.binary_fill_holes(mask)
    labels, n = ndimage.label(mask)
    if n == 0:
        return mask
    sizes = ndimage.sum(mask, labels, index=np.arange(1, n + 1))
    return labels == (1 + int(np.argmax(sizes)))


def product_box(image: Image.Image) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom) of the product with its margin, or None (no useful crop)."""
    image = image.convert("RGB")
    if is_studio_photo(image):
        return None
    mask = product_mask(image)
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    if len(ys) < MIN_AREA * mask.size:
        return None
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    if (y1 - y0) * (x1 - x0) > MAX_AREA * h * w:
        return None
    sy, sx = image.height / h, image.width / w
    my, mx = MARGIN * (y1 - y0), MARGIN * (x1 - x0)
    return (max(0, int((x0 - mx) * sx)), max(0, int((y0 - my) * sy)),
            min(image.width, int(np.ceil((x1 + mx) * sx))),
            min(image.height, int(np.ceil((y1 + my) * sy))))


def crop_to_product(image: Image.Image) -> Image.Image:
    """The photo cropped to the product (upright RGB), or unchanged when no crop is useful."""
    image = ImageOps.exif_transpose(image).convert("RGB")
    box = product_box(image)
    return image if box is None else image.crop(box)
