"""Phone-style queries made from studio product photos (for the phone-shot evaluation).

A catalog photo shows the product on a plain white background, centred and evenly lit; a
shopper's phone photo shows it somewhere in the frame, on a table, a bed or a floor, a little
turned, in warm or dim light, and JPEG-compressed. `phone_shot` turns a studio photo into such a
query, reproducibly from a seed:

1. the product is cut out with `product_mask` (distance from the border colour, holes filled,
   specks dropped, edges feathered);
2. it is pasted on a background: a procedural texture (wood grain, knitted fabric, fractal noise,
   a floor of tiles or planks, a two-colour gradient) or a magnified crop of another catalog
   photo (real fabric, leather, prints), under a soft lighting gradient;
3. scaled to 45-85% of the frame, placed off-centre, rotated (up to 20 degrees), warped by a
   random perspective (corners moved up to 8% of the side);
4. relit (brightness, contrast, colour temperature), blurred a little, given sensor noise and
   saved as a JPEG of quality 40-85, in a 3:4 portrait frame.

The ranges are fixed in `PhoneShotStyle` (chosen before any encoder was scored on them, and not
tuned since): changing them changes what the phone-shot numbers mean.
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageFilter

BACKGROUNDS = ("gradient", "wood", "fabric", "noise", "tiles", "photo")


@dataclass(frozen=True)
class PhoneShotStyle:
    """The ranges phone-style queries are drawn from (see the module docstring)."""

    width: int = 480
    height: int = 640
    scale: tuple[float, float] = (0.45, 0.85)        # product height / frame height
    max_rotation: float = 20.0                       # degrees, either way
    max_perspective: float = 0.08                    # corner shift / side
    brightness: tuple[float, float] = (0.65, 1.2)
    contrast: tuple[float, float] = (0.75, 1.15)
    temperature: float = 0.12                        # +-12% red/blue gain (warm / cool light)
    blur: tuple[float, float] = (0.0, 1.2)           # Gaussian radius in pixels
    noise: tuple[float, float] = (1.0, 6.0)          # sensor noise std (0..255 scale)
    jpeg_quality: tuple[int, int] = (40, 85)
    backgrounds: tuple[str, ...] = BACKGROUNDS

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- the product's mask --------------------------------------------------------------------------
def background_colour(arr: np.ndarray) -> np.ndarray:
    """The median colour of a photo's outer 2-pixel frame (white on studio shots)."""
    border = np.concatenate([arr[:2].reshape(-1, 3), arr[-2:].reshape(-1, 3),
                             arr[:, :2].reshape(-1, 3), arr[:, -2:].reshape(-1, 3)])
    return np.median(border, axis=0)


def product_mask(image: Image.Image, threshold: float = 10.0) -> np.ndarray:
    """Alpha in [0, 1] (H x W): 1 on the product, 0 on the plain studio background.

    Product pixels differ from the border colour by more than `threshold` (max over RGB) or sit
    on an edge (Sobel magnitude > 40: the outline of a white shirt on white); gaps are closed,
    holes inside the outline filled (a white logo on a shirt), specks under 0.2% of the photo
    dropped, and the edge feathered by one pixel.
    """
    from scipy import ndimage

    arr = np.asarray(image.convert("RGB"), dtype=np.float32)
    bg = background_colour(arr)
    grey = arr.mean(axis=2)
    edges = np.hypot(ndimage.sobel(grey, 0), ndimage.sobel(grey, 1))
    fg = (np.abs(arr - bg).max(axis=2) > threshold) | (edges > 40)
    fg = ndimage.binary_closing(fg, structure=np.ones((5, 5)), iterations=2)
    fg = ndimage.binary_fill_holes(fg)
    fg = ndimage.binary_opening(fg, structure=np.ones((3, 3)))
    labels, n = ndimage.label(fg)
    if n > 1:
        sizes = ndimage.sum(fg, labels, index=np.arange(1, n + 1))
        keep = np.flatnonzero(sizes >= max(16, 0.002 * fg.size)) + 1
        fg = np.isin(labels, keep)
    alpha = ndimage.gaussian_filter(fg.astype(np.float32), 0.8)
    return np.clip(alpha, 0.0, 1.0)


# -- backgrounds --------------------------------------------------------------------------------
def _room_colour(rng: np.random.Generator) -> np.ndarray:
    """A plausible surface colour: greys, beiges, browns, muted blues and greens."""
    base = rng.choice([[200, 190, 175], [150, 120, 90], [110, 80, 55], [180, 180, 185],
                       [90, 95, 100], [160, 170, 150], [120, 135, 160], [220, 215, 205],
                       [60, 55, 50], [190, 160, 140]])
    return np.clip(np.asarray(base, np.float32) + rng.normal(0, 18, 3), 0, 255)


def _fractal_noise(rng: np.random.Generator, h: int, w: int, octaves: int = 5) -> np.ndarray:
    """Smooth value noise in [0, 1] summed over octaves (clouds, stains, uneven walls)."""
    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        cells = 2 ** (o + 2)
        small = rng.random((cells + 1, cells + 1)).astype(np.float32)
        layer = np.asarray(Image.fromarray((small * 255).astype(np.uint8)).resize(
            (w, h), Image.BICUBIC), np.float32) / 255.0
        out += amp * layer
        total += amp
        amp *= 0.55
    out /= total
    return (out - out.min()) / max(1e-6, float(out.max() - out.min()))


def _gradient(rng, h, w):
    a, b = _room_colour(rng), _room_colour(rng)
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = (np.cos(angle) * xx / w + np.sin(angle) * yy / h)
    t = (t - t.min()) / max(1e-6, float(t.max() - t.min()))
    return a * (1 - t[..., None]) + b * t[..., None]


def _wood(rng, h, w):
    light, dark = _room_colour(rng), None
    dark = light * rng.uniform(0.55, 0.8)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    warp = _fractal_noise(rng, h, w, 4) * rng.uniform(8, 20)
    freq = rng.uniform(0.04, 0.12)
    if rng.random() < 0.5:
        xx, yy = yy, xx
    grain = 0.5 + 0.5 * np.sin(freq * yy + warp + 0.02 * xx * rng.uniform(-1, 1))
    grain = grain ** rng.uniform(1.0, 3.0)
    return dark * grain[..., None] + light * (1 - grain[..., None])


def _fabric(rng, h, w):
    colour = _room_colour(rng)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    period = rng.uniform(3, 9)
    weave = 0.5 + 0.25 * (np.sin(2 * math.pi * xx / period) + np.sin(2 * math.pi * yy / period))
    folds = _fractal_noise(rng, h, w, 3)
    shade = 0.75 + 0.15 * weave + 0.25 * folds
    return colour * shade[..., None]


def _noise(rng, h, w):
    a, b = _room_colour(rng), _room_colour(rng)
    t = _fractal_noise(rng, h, w)[..., None]
    return a * (1 - t) + b * t


def _tiles(rng, h, w):
    colour = _room_colour(rng)
    grout = colour * rng.uniform(0.5, 0.8)
    size = int(rng.uniform(40, 160))
    yy, xx = np.mgrid[0:h, 0:w]
    planks = rng.random() < 0.5
    lines = (yy % size < 3) | ((xx % (size * (3 if planks else 1))) < 3)
    tex = colour * (0.85 + 0.3 * _fractal_noise(rng, h, w, 4))[..., None]
    tex[lines] = grout
    return tex


def _photo(rng, h, w, donor: Image.Image | None):
    """A magnified crop of another product photo (real fabric, leather, print)."""
    if donor is None:
        return _noise(rng, h, w)
    arr = np.asarray(donor.convert("RGB"))
    alpha = product_mask(donor) > 0.5
    ys, xs = np.nonzero(alpha)
    if len(ys) < 100:
        return _noise(rng, h, w)
    # a window well inside the product
    cy, cx = int(np.median(ys)), int(np.median(xs))
    half = max(8, int(min(ys.max() - ys.min(), xs.max() - xs.min()) * rng.uniform(0.12, 0.3)))
    crop = Image.fromarray(arr).crop((cx - half, cy - half, cx + half, cy + half))
    tex = np.asarray(crop.resize((w, h), Image.BICUBIC).filter(
        ImageFilter.GaussianBlur(rng.uniform(1.0, 3.0))), np.float32)
    return tex


def make_background(rng: np.random.Generator, width: int, height: int, kind: str,
                    donor: Image.Image | None = None) -> np.ndarray:
    """An H x W x 3 float background of the given kind (one of `BACKGROUNDS`)."""
    makers = {"gradient": _gradient, "wood": _wood, "fabric": _fabric, "noise": _noise,
              "tiles": _tiles}
    if kind == "photo":
        bg = _photo(rng, height, width, donor)
    elif kind in makers:
        bg = makers[kind](rng, height, width)
    else:
        raise ValueError(f"unknown background kind {kind!r}; use one of {BACKGROUNDS}")
    # soft light falling from one side, as from a window or a lamp
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    t = np.cos(angle) * (xx / width - 0.5) + np.sin(angle) * (yy / height - 0.5)
    light = 1.0 + rng.uniform(0.1, 0.35) * t
    return np.clip(bg * light[..., None], 0, 255)


# -- the composite ------------------------------------------------------------------------------
def perspective_coeffs(src: Sequence[tuple[float, float]],
                        dst: Sequence[tuple[float, float]]) -> list[float]:
    """PIL's 8 perspective coefficients mapping output points `dst` to input points `src`."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    return np.linalg.solve(np.asarray(rows, np.float64), np.asarray(rhs, np.float64)).tolist()


def phone_shot(photo: Image.Image, rng: np.random.Generator,
               style: PhoneShotStyle = PhoneShotStyle(),
               donor: Image.Image | None = None, background: str | None = None) -> Image.Image:
    """A phone-style photo of the product in a studio `photo` (see the module docstring).

    `donor` is another product photo for the "photo" background kind; `background` forces a
    kind (default: drawn from `style.backgrounds`). Returns the decoded JPEG as an RGB image.
    """
    photo = photo.convert("RGB")
    alpha = product_mask(photo)
    ys, xs = np.nonzero(alpha > 0.05)
    if len(ys) == 0:                     # nothing but background: use the whole photo
        ys, xs = np.array([0, photo.height - 1]), np.array([0, photo.width - 1])
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    rgba = np.dstack([np.asarray(photo, np.uint8), (alpha * 255).astype(np.uint8)])
    product = Image.fromarray(rgba, "RGBA").crop(box)

    # scale, rotate, perspective
    W, H = style.width, style.height
    target = rng.uniform(*style.scale) * H
    f = min(target / product.height, 0.9 * W / product.width)
    product = product.resize((max(1, int(product.width * f)), max(1, int(product.height * f))),
                             Image.BICUBIC)
    product = product.rotate(rng.uniform(-style.max_rotation, style.max_rotation),
                             Image.BICUBIC, expand=True)
    pw, ph = product.size
    d = style.max_perspective
    corners = [(0, 0), (pw, 0), (pw, ph), (0, ph)]
    moved = [(x + rng.uniform(-d, d) * pw, y + rng.uniform(-d, d) * ph) for x, y in corners]
    product = product.transform((pw, ph), Image.PERSPECTIVE, perspective_coeffs(corners, moved),
                                Image.BICUBIC)
    if pw > W or ph > H:
        g = min(W / pw, H / ph)
        product = product.resize((max(1, int(pw * g)), max(1, int(ph * g))), Image.BICUBIC)
        pw, ph = product.size

    kind = background or str(rng.choice(style.backgrounds))
    canvas = make_background(rng, W, H, kind, donor)
    x0 = int(rng.uniform(0, W - pw + 1))
    y0 = int(rng.uniform(0, H - ph + 1))
    parr = np.asarray(product, np.float32)
    a = parr[..., 3:4] / 255.0
    region = canvas[y0:y0 + ph, x0:x0 + pw]
    canvas[y0:y0 + ph, x0:x0 + pw] = parr[..., :3] * a + region * (1 - a)

    # light, colour temperature, blur, noise, JPEG
    img = canvas * rng.uniform(*style.brightness)
    mean = img.mean()
    img = (img - mean) * rng.uniform(*style.contrast) + mean
    warm = rng.uniform(-style.temperature, style.temperature)
    img = img * np.array([1 + warm, 1.0, 1 - warm], np.float32)
    out = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    radius = rng.uniform(*style.blur)
    if radius > 0.05:
        out = out.filter(ImageFilter.GaussianBlur(radius))
    noisy = np.asarray(out, np.float32) + rng.normal(0, rng.uniform(*style.noise), (H, W, 3))
    out = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    out.save(buf, "JPEG", quality=int(rng.integers(style.jpeg_quality[0],
                                                   style.jpeg_quality[1] + 1)))
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def shot_rng(seed: int, item_id: str) -> np.random.Generator:
    """The generator of one item's phone shot: the same query for the same (seed, item)."""
    import hashlib

    digest = hashlib.sha1(f"phone:{seed}:{item_id}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))
