"""Query photos for Visual search: example photos one click away, phone-style shots made from
catalog products, exact-match detection and a simple crop to the product.

* `phone_shot`: a catalog product cut from its studio background, pasted smaller, rotated and
  off-centre on a textured surface (wood, concrete, fabric) under uneven light, slightly
  blurred and JPEG-compressed, like a shopper's phone photo. The examples are generated at run
  time and cached under the data folder (`<data>/artifacts/examples/<dataset>/`), never shipped.
* `photo_digest`: the hash that says "this upload is that catalog photo, byte for byte".
* `product_mask` / `stands_out`: which pixels differ from the border's colour (used to cut a
  product from its studio background for the phone shots). The crop of a query photo to its
  product is `recsys.encoders.crop_to_product` (`search_similar(crop=True)`, on by default).

PIL, numpy and scipy.ndimage; no store (the use case `usecases.search.example_queries` picks the items).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from .artifacts import atomic_path
from .images import ImageSource, load_image

SURFACES = {
    "wood": ((150, 108, 70), (110, 76, 46)),
    "concrete": ((150, 150, 146), (120, 120, 118)),
    "fabric": ((70, 92, 128), (52, 70, 100)),
}
"""Background surfaces of the phone shots: (light, dark) colours."""

SHOT_SIZE = 480
SHOT_VERSION = 2
"""Part of a phone shot's file name: a change to `phone_shot` makes new files, never stale ones."""
JPEG_QUALITY = 55


@dataclass(frozen=True)
class ExamplePhoto:
    """A photo offered as a one-click query: a catalog photo or a generated phone shot."""

    label: str
    path: str
    kind: str                    # "catalog" | "phone"
    item_id: str


def photo_digest(data: bytes) -> str:
    """SHA-1 of a photo's bytes (an upload of a catalog file has the file's digest)."""
    return hashlib.sha1(data).hexdigest()


def _border_distance(rgb: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-pixel colour distance to the border's median colour, and the border's own spread."""
    border = np.concatenate([rgb[:3].reshape(-1, 3), rgb[-3:].reshape(-1, 3),
                             rgb[:, :3].reshape(-1, 3), rgb[:, -3:].reshape(-1, 3)])
    background = np.median(border, axis=0)
    dist = np.abs(rgb - background).sum(axis=2)
    border_dist = np.abs(border - background).sum(axis=1)
    return dist, float(np.percentile(border_dist, 95))


def product_mask(image: Image.Image, size: int = 96) -> np.ndarray:
    """Boolean mask (size x size) of the product: the largest blob of pixels that differ from
    the border colour, with its holes filled (a white logo on a black tee is product too)."""
    from scipy import ndimage

    small = np.asarray(image.convert("RGB").resize((size, size)).filter(
        ImageFilter.GaussianBlur(1.2)), dtype=np.float32)
    dist, spread = _border_distance(small)
    mask = ndimage.binary_closing(dist > max(45.0, 1.5 * spread), iterations=2)
    labels, n = ndimage.label(mask)
    if n > 1:
        sizes = ndimage.sum(mask, labels, range(1, n + 1))
        mask = labels == 1 + int(np.argmax(sizes))
    return ndimage.binary_fill_holes(mask)


def stands_out(photo: ImageSource | Image.Image) -> bool:
    """Whether a studio photo's product can be cut from its background cleanly (it covers a
    good part of the photo and does not run into the border): such products make good phone
    shots."""
    image = photo if isinstance(photo, Image.Image) else load_image(photo, target_size=96)
    mask = product_mask(image)
    edge = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]]).mean()
    return 0.08 < mask.mean() < 0.7 and edge < 0.05


def _surface(name: str, size: int, rng: np.random.Generator) -> np.ndarray:
    light, dark = (np.array(c, dtype=np.float32) for c in SURFACES[name])
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    if name == "wood":                          # grain: wavy stripes
        t = 0.5 + 0.5 * np.sin(40 * (y + 0.03 * np.sin(9 * x + rng.uniform(0, 6))))
    elif name == "fabric":                      # weave: a fine check
        t = 0.5 + 0.25 * (np.sin(size / 3 * x) + np.sin(size / 3 * y))
    else:                                       # concrete: blotches
        coarse = rng.random((12, 12)).astype(np.float32)
        t = np.asarray(Image.fromarray((coarse * 255).astype(np.uint8)).resize(
            (size, size), Image.BICUBIC), dtype=np.float32) / 255
    t = np.clip(t + rng.normal(0, 0.08, t.shape), 0, 1)[..., None]
    return light * t + dark * (1 - t)


def phone_shot(photo: ImageSource | Image.Image, seed: int = 0, surface: str = "wood",
               size: int = SHOT_SIZE) -> bytes:
    """A phone-style JPEG of a catalog product (see the module docstring); deterministic for a
    seed."""
    rng = np.random.default_rng(seed)
    product = photo.convert("RGB") if isinstance(photo, Image.Image) else load_image(photo)
    canvas = _surface(surface, size, rng)
    scale = rng.uniform(0.5, 0.62) * size / max(product.size)
    fitted = product.resize((max(1, int(product.width * scale)),
                             max(1, int(product.height * scale))), Image.BICUBIC)
    from scipy import ndimage

    cut = product_mask(fitted, 160)
    if cut.mean() < 0.05:               # nothing stands out from the studio background (a
        cut = np.ones_like(cut)         # model shot cut by the frame): the whole photo, printed
    cut = ndimage.binary_erosion(cut, iterations=3, border_value=1)
    mask = Image.fromarray((cut * 255).astype(np.uint8)).resize(
        fitted.size, Image.BILINEAR).filter(ImageFilter.GaussianBlur(1.0))
    angle = float(rng.uniform(-14, 14))
    fitted = fitted.rotate(angle, Image.BICUBIC, expand=True)
    mask = mask.rotate(angle, Image.BICUBIC, expand=True)
    out = Image.fromarray(canvas.astype(np.uint8))
    cx = int(size / 2 + rng.uniform(-0.08, 0.08) * size - fitted.width / 2)
    cy = int(size / 2 + rng.uniform(-0.08, 0.08) * size - fitted.height / 2)
    out.paste(fitted, (cx, cy), mask)
    arr = np.asarray(out, dtype=np.float32)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    light = 0.78 + 0.32 * (1 - np.hypot(x - rng.uniform(0.2, 0.8), y - rng.uniform(0.1, 0.5)))
    arr = np.clip(arr * light[..., None], 0, 255).astype(np.uint8)
    shot = Image.fromarray(arr).filter(ImageFilter.GaussianBlur(0.7))
    buf = io.BytesIO()
    shot.save(buf, "JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def cached_phone_shot(folder: Path, item_id: str, photo: ImageSource, n: int) -> Path:
    """The phone shot of a catalog photo, written once under `folder` (a new file name when the
    surface changes, so a stale file is never served)."""
    surface = list(SURFACES)[n % len(SURFACES)]
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(item_id))
    path = folder / f"phone-{safe}-{surface}-v{SHOT_VERSION}.jpg"
    if not path.is_file():
        with atomic_path(path) as tmp:
            tmp.write_bytes(phone_shot(photo, seed=n, surface=surface))
    return path
