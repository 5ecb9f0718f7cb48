"""Phone-shot families: independent generators of phone-style photos of a catalog product.

One generator scores an encoder on its own augmentation (issue 22: 0.805 on the project's own
`phone_shots.phone_shot`, 0.32 on another author's generator). The phone-shot test therefore
uses several *families* that differ in all three parts of a phone photo, and scores them
leave-one-family-out (`evaluate_phone`): whatever augmentation the alignment or the crop's
tuning uses never includes the family being scored.

| family | background source | geometry | photometric chain | frame |
|---|---|---|---|---|
| `collage` | 7-14 other catalog photos, whole, scattered and overlapping (a mood board, a shop window) | product 40-70%, rotation +-15 deg | colour cast (per-channel gain), JPEG 35-60 | 240x320 |
| `room` | a rendered room: plaster wall (gradient + noise) over a table or floor of planks drawn in perspective, the product standing on it with a contact shadow | product 40-60%, rotation +-6 deg, camera keystone | exposure (gamma), vignetting, shot noise, JPEG 50-75 | 320x240 |
| `bokeh` | a large crop of another catalog photo, magnified and defocused, with out-of-focus light discs | product 50-70%, rotation +-10 deg, perspective up to 10% | warm/cool white balance, motion blur, JPEG 40-60 | 256x256 |
| `noise` | coloured noise: blobs of random colours under pixel noise | product 40-70%, rotation +-15 deg | strong colour cast, defocus blur, low resolution (down- then up-scaled), JPEG 35-50 | 240x320 |
| `flatlay` | a bedsheet or paper seen from above (weave, folds) with another product cut by the frame edge, and a hand's shadow | product 40-65%, rotation +-15 deg, slight perspective | exposure, saturation, unsharp mask (phone sharpening), JPEG 45-70 | 240x320 |

Every family cuts the product out of its studio photo with `phone_shots.product_mask` (the
only shared step), draws everything else from its own generator (`family_rng`: one generator per
(family, seed, item, view)) and returns the decoded JPEG. The ranges were fixed before any
encoder was scored on a family and are not tuned on scores: changing them changes what the
numbers mean.
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from PIL import Image, ImageFilter

from recsys.encoders.phone_shots import perspective_coeffs

Donors = Callable[[np.random.Generator], Image.Image]
"""Another catalog photo, drawn with the shot's generator (backgrounds, distractors)."""


@dataclass(frozen=True)
class Shot:
    """A phone-style photo and where the product is in it: `box` = (left, top, right, bottom)
    of the product's visible pixels (the ground truth a crop is measured against)."""

    image: Image.Image
    box: tuple[int, int, int, int]


# -- shared primitives --------------------------------------------------------------------------
def cutout(photo: Image.Image) -> Image.Image:
    """The product of a studio photo as an RGBA image cropped to its box (alpha = the mask)."""
    from .phone_shots import product_mask

    photo = photo.convert("RGB")
    alpha = product_mask(photo)
    ys, xs = np.nonzero(alpha > 0.05)
    if len(ys) == 0:                       # nothing stands out: the whole photo
        alpha = np.ones_like(alpha)
        ys, xs = np.array([0, photo.height - 1]), np.array([0, photo.width - 1])
    rgba = np.dstack([np.asarray(photo, np.uint8), (alpha * 255).astype(np.uint8)])
    return Image.fromarray(rgba, "RGBA").crop((int(xs.min()), int(ys.min()),
                                               int(xs.max()) + 1, int(ys.max()) + 1))


def donor_cutout(donors: Donors, rng: np.random.Generator) -> Image.Image:
    """The `cutout` of a donor photo drawn with `rng`: the pool's own copy when the donors come
    from a `DonorPool` (cut out once per donor, not once per shot; the same image)."""
    cut = getattr(donors, "cutout", None)
    return cut(rng) if cut is not None else cutout(donors(rng))


def warp_coeffs(size: tuple[int, int], rng: np.random.Generator, amount: float) -> list[float]:
    """A random perspective: each corner moved by up to `amount` of the side."""
    w, h = size
    corners = [(0, 0), (w, 0), (w, h), (0, h)]
    moved = [(x + rng.uniform(-amount, amount) * w, y + rng.uniform(-amount, amount) * h)
             for x, y in corners]
    return perspective_coeffs(corners, moved)


def warp(img: Image.Image, rng: np.random.Generator, amount: float) -> Image.Image:
    """`img` under a random perspective (`warp_coeffs`)."""
    if amount <= 0:
        return img
    return img.transform(img.size, Image.PERSPECTIVE, warp_coeffs(img.size, rng, amount),
                         Image.BICUBIC)


def fit_product(product: Image.Image, frame: tuple[int, int], scale: float, rotation: float,
                perspective: float, rng: np.random.Generator) -> Image.Image:
    """Resize so the product's larger relative side is `scale` of the frame, then rotate by
    `rotation` degrees and warp; never larger than the frame."""
    W, H = frame
    f = scale / max(product.width / W, product.height / H)
    product = product.resize((max(1, round(product.width * f)), max(1, round(product.height * f))),
                             Image.BICUBIC)
    product = product.rotate(rotation, Image.BICUBIC, expand=True)
    product = warp(product, rng, perspective)
    if product.width > W or product.height > H:
        g = min(W / product.width, H / product.height)
        product = product.resize((max(1, int(product.width * g)), max(1, int(product.height * g))),
                                 Image.BICUBIC)
    return product


def paste(canvas: np.ndarray, rgba: Image.Image, x0: int, y0: int) -> np.ndarray:
    """Alpha-composite `rgba` onto the float canvas at (x0, y0) (clipped to the canvas)."""
    H, W = canvas.shape[:2]
    arr = np.asarray(rgba.convert("RGBA"), np.float32)
    h, w = arr.shape[:2]
    cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(W, x0 + w), min(H, y0 + h)
    if cx1 <= cx0 or cy1 <= cy0:
        return canvas
    part = arr[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
    a = part[..., 3:4] / 255.0
    canvas[cy0:cy1, cx0:cx1] = part[..., :3] * a + canvas[cy0:cy1, cx0:cx1] * (1 - a)
    return canvas


def alpha_box(product: Image.Image, x0: int, y0: int, frame: tuple[int, int]
              ) -> tuple[int, int, int, int]:
    """The frame box of the pasted product's pixels (alpha > 50%), clipped to the frame."""
    a = np.asarray(product.getchannel("A")) > 127
    ys, xs = np.nonzero(a)
    if len(ys) == 0:
        return (max(0, x0), max(0, y0), min(frame[0], x0 + product.width),
                min(frame[1], y0 + product.height))
    return (max(0, x0 + int(xs.min())), max(0, y0 + int(ys.min())),
            min(frame[0], x0 + int(xs.max()) + 1), min(frame[1], y0 + int(ys.max()) + 1))


def smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Value noise in [0, 1] with about `cells` blobs across (bicubic upsampling)."""
    small = rng.random((cells + 1, cells + 1)).astype(np.float32)
    out = np.asarray(Image.fromarray((small * 255).astype(np.uint8)).resize((w, h), Image.BICUBIC),
                     np.float32) / 255.0
    return np.clip(out, 0.0, 1.0)


def jpeg(img: np.ndarray | Image.Image, quality: int) -> Image.Image:
    if not isinstance(img, Image.Image):
        img = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=int(quality))
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def vignette(h: int, w: int, strength: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xx / w - 0.5) ** 2 + (yy / h - 0.5) ** 2) / 0.5
    return (1.0 - strength * r2)[..., None]


# -- the families -------------------------------------------------------------------------------
def collage(product: Image.Image, rng: np.random.Generator, donors: Donors) -> Shot:
    """On a mood board of other catalog photos; colour cast; JPEG 35-60."""
    W, H = 240, 320
    canvas = np.full((H, W, 3), rng.uniform(170, 250), np.float32)
    for _ in range(int(rng.integers(7, 15))):
        d = donors(rng).convert("RGB")
        side = int(rng.uniform(0.25, 0.55) * W)
        d = d.resize((side, side), Image.BILINEAR).rotate(rng.uniform(-20, 20), Image.BILINEAR,
                                                           expand=True, fillcolor=(255, 255, 255))
        paste(canvas, d.convert("RGBA"), int(rng.uniform(-side / 3, W - side / 2)),
              int(rng.uniform(-side / 3, H - side / 2)))
    product = fit_product(product, (W, H), rng.uniform(0.40, 0.70), rng.uniform(-15, 15),
                          0.0, rng)
    x0, y0 = int(rng.uniform(0, W - product.width + 1)), int(rng.uniform(0, H - product.height + 1))
    paste(canvas, product, x0, y0)
    gains = 1.0 + rng.uniform(-0.15, 0.15, 3)
    return Shot(jpeg(canvas * gains[None, None, :].astype(np.float32), rng.integers(35, 61)),
                alpha_box(product, x0, y0, (W, H)))


def _planks(rng, h, w, horizon: float) -> np.ndarray:
    """A floor / table of planks in perspective below the horizon (rows 0..h)."""
    base = np.array(rng.choice([[150, 110, 75], [185, 150, 110], [110, 75, 50], [200, 190, 175],
                                [120, 120, 125]]), np.float32) + rng.normal(0, 12, 3)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    depth = np.clip((yy + 1) / h, 0.02, 1.0)            # 0 far (horizon) .. 1 near
    vx = w * rng.uniform(0.3, 0.7)                       # vanishing point
    u = (xx - vx) / depth                                # converging plank lines
    period = rng.uniform(30, 70)
    plank = np.floor(u / period)
    shade = 0.85 + 0.15 * np.sin(plank * 12.9898) ** 2   # plank-to-plank tone
    grain = 0.93 + 0.07 * np.sin(u * rng.uniform(0.2, 0.5) + 3 * smooth_noise(rng, h, w, 6))
    gap = np.abs(u / period - np.round(u / period)) * period < 1.5 / depth   # ~1.5 px seams
    tex = base * (shade * grain)[..., None]
    tex[gap] *= 0.6
    return tex * (0.75 + 0.25 * depth)[..., None]


def room(product: Image.Image, rng: np.random.Generator, donors: Donors) -> Shot:
    """Standing on a table or floor in a room; exposure, vignetting, shot noise, JPEG 50-75."""
    W, H = 320, 240
    hy = int(H * rng.uniform(0.30, 0.60))                # horizon: wall above, floor below
    wall_a = np.array(rng.choice([[225, 220, 210], [200, 205, 210], [215, 200, 180],
                                  [180, 190, 170], [235, 230, 225]]), np.float32)
    wall_b = wall_a * rng.uniform(0.7, 0.95)
    t = np.linspace(0, 1, W, dtype=np.float32)[None, :, None]
    wall = wall_a * (1 - t) + wall_b * t
    wall = wall * (0.95 + 0.05 * smooth_noise(rng, hy, W, 20))[..., None]
    canvas = np.zeros((H, W, 3), np.float32)
    canvas[:hy] = wall
    canvas[hy:] = _planks(rng, H - hy, W, hy)
    product = fit_product(product, (W, H), rng.uniform(0.40, 0.60), rng.uniform(-6, 6),
                          0.0, rng)
    pw, ph = product.size
    x0 = int(rng.uniform(0, W - pw + 1))
    foot = int(rng.uniform(max(hy + 5, ph), H))          # stands on the floor
    y0 = min(H - ph, foot - ph)
    # contact shadow: a dark blurred ellipse under the product
    shadow = Image.new("L", (W, H), 0)
    from PIL import ImageDraw
    ImageDraw.Draw(shadow).ellipse((x0 + pw * 0.05, y0 + ph - ph * 0.06, x0 + pw * 0.95,
                                    y0 + ph + ph * 0.06), fill=int(rng.uniform(90, 160)))
    s = np.asarray(shadow.filter(ImageFilter.GaussianBlur(4)), np.float32)[..., None] / 255.0
    canvas *= (1 - 0.6 * s)
    paste(canvas, product, x0, y0)
    mask = np.zeros((H, W), np.uint8)
    mask[y0:y0 + ph, x0:x0 + pw] = np.asarray(product.getchannel("A"))[:H - y0, :W - x0]
    # camera keystone: the whole frame (and the product's mask) warped a little
    coeffs = warp_coeffs((W, H), rng, 0.05)
    frame = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8)).transform(
        (W, H), Image.PERSPECTIVE, coeffs, Image.BICUBIC)
    inside = np.asarray(Image.new("L", (W, H), 255).transform((W, H), Image.PERSPECTIVE, coeffs,
                                                               Image.NEAREST)) > 0
    mask = np.asarray(Image.fromarray(mask).transform((W, H), Image.PERSPECTIVE, coeffs,
                                                      Image.BILINEAR))
    arr = np.asarray(frame, np.float32).copy()
    arr[~inside] = wall_a * 0.6                           # corners the warp left empty
    ys, xs = np.nonzero(mask > 127)
    box = ((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1) if len(ys)
           else (x0, y0, x0 + pw, y0 + ph))
    gamma = rng.uniform(0.7, 1.5)                         # over / under exposed
    arr = 255.0 * (arr / 255.0) ** gamma
    arr = arr * vignette(H, W, rng.uniform(0.3, 0.6))
    lam = rng.uniform(0.3, 1.2)                           # shot noise, stronger where bright
    arr = arr + rng.normal(0, 1, arr.shape).astype(np.float32) * np.sqrt(np.maximum(arr, 1) * lam)
    return Shot(jpeg(arr, rng.integers(50, 76)), box)


def bokeh(product: Image.Image, rng: np.random.Generator, donors: Donors) -> Shot:
    """In front of a defocused catalog photo with light discs; white balance, motion blur."""
    W = H = 256
    d = donors(rng).convert("RGB")
    side = int(d.width * rng.uniform(0.3, 0.6))
    x, y = int(rng.uniform(0, d.width - side)), int(rng.uniform(0, d.height - side))
    bg = d.crop((x, y, x + side, y + side)).resize((W, H), Image.BICUBIC)
    bg = bg.filter(ImageFilter.GaussianBlur(rng.uniform(3, 7.5)))
    canvas = np.asarray(bg, np.float32).copy()
    for _ in range(int(rng.integers(4, 14))):              # out-of-focus lights
        cx, cy, r = rng.uniform(0, W), rng.uniform(0, H), rng.uniform(5, 20)
        colour = np.array(rng.uniform(180, 255, 3), np.float32)
        x0, x1 = max(0, int(cx - r - 2)), min(W, int(cx + r + 3))
        y0, y1 = max(0, int(cy - r - 2)), min(H, int(cy + r + 3))
        if x1 <= x0 or y1 <= y0:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        disc = np.clip((r - np.hypot(xx - cx, yy - cy)) / 1.5, 0, 1)[..., None]
        canvas[y0:y1, x0:x1] = canvas[y0:y1, x0:x1] * (1 - 0.5 * disc) + 0.5 * disc * colour
    product = fit_product(product, (W, H), rng.uniform(0.50, 0.70), rng.uniform(-10, 10),
                          0.10, rng)
    x0, y0 = int(rng.uniform(0, W - product.width + 1)), int(rng.uniform(0, H - product.height + 1))
    paste(canvas, product, x0, y0)
    warm = rng.uniform(-0.2, 0.2)                           # tungsten or shade
    canvas = canvas * np.array([1 + warm, 1 + 0.3 * warm, 1 - warm], np.float32)
    img = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    n = int(rng.integers(2, 6))                            # hand shake: a line kernel
    angle = rng.uniform(0, math.pi)
    kernel = np.zeros((n, n), np.float32)
    for i in range(n):
        t = i - (n - 1) / 2
        kernel[int(round((n - 1) / 2 + t * math.sin(angle))),
               int(round((n - 1) / 2 + t * math.cos(angle)))] = 1
    from scipy import ndimage
    arr = np.asarray(img, np.float32)
    arr = np.stack([ndimage.convolve(arr[..., c], kernel / kernel.sum(), mode="nearest")
                    for c in range(3)], -1)
    return Shot(jpeg(arr, rng.integers(40, 61)), alpha_box(product, x0, y0, (W, H)))


def noise(product: Image.Image, rng: np.random.Generator, donors: Donors) -> Shot:
    """On coloured noise; strong colour cast, defocus, low resolution, JPEG 35-50."""
    W, H = 240, 320
    colours = rng.uniform(0, 255, (4, 3)).astype(np.float32)
    weights = np.stack([smooth_noise(rng, H, W, int(rng.integers(3, 12))) for _ in range(4)], -1)
    weights = weights ** 3
    weights /= weights.sum(-1, keepdims=True) + 1e-6
    canvas = weights @ colours + rng.normal(0, rng.uniform(10, 35), (H, W, 3)).astype(np.float32)
    product = fit_product(product, (W, H), rng.uniform(0.40, 0.70), rng.uniform(-15, 15),
                          0.0, rng)
    x0, y0 = int(rng.uniform(0, W - product.width + 1)), int(rng.uniform(0, H - product.height + 1))
    paste(canvas, product, x0, y0)
    cast = np.array([1.0, 1.0, 1.0], np.float32)
    cast[int(rng.integers(3))] += rng.uniform(0.12, 0.3)    # green fluorescent, red, blue...
    img = Image.fromarray(np.clip(canvas * cast, 0, 255).astype(np.uint8))
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.1)))
    f = rng.uniform(0.5, 0.8)                               # a cheap sensor: fewer pixels
    img = img.resize((int(W * f), int(H * f)), Image.BILINEAR).resize((W, H), Image.BILINEAR)
    return Shot(jpeg(img, rng.integers(35, 51)), alpha_box(product, x0, y0, (W, H)))


def flatlay(product: Image.Image, rng: np.random.Generator, donors: Donors) -> Shot:
    """Laid on a bedsheet or paper, seen from above, another product cut by the frame edge;
    exposure, saturation, phone sharpening, JPEG 45-70."""
    W, H = 240, 320
    base = np.array(rng.choice([[235, 235, 240], [210, 200, 190], [150, 170, 200],
                                [200, 160, 160], [90, 90, 100], [170, 190, 160]]), np.float32)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    p = rng.uniform(2.0, 3.5)
    weave = 0.5 + 0.25 * (np.sin(2 * math.pi * xx / p) * np.sin(2 * math.pi * yy / p))
    folds = smooth_noise(rng, H, W, int(rng.integers(2, 5)))
    canvas = base * (0.8 + 0.06 * weave + 0.25 * folds)[..., None]
    # a distractor product half outside the frame
    other = fit_product(donor_cutout(donors, rng), (W, H), rng.uniform(0.35, 0.6),
                        rng.uniform(0, 360), 0.0, rng)
    side = int(rng.integers(4))
    ox = [-other.width // 2, W - other.width // 2, int(rng.uniform(0, W - other.width + 1)),
          int(rng.uniform(0, W - other.width + 1))][side]
    oy = [int(rng.uniform(0, H - other.height + 1)), int(rng.uniform(0, H - other.height + 1)),
          -other.height // 2, H - other.height // 2][side]
    paste(canvas, other, ox, oy)
    product = fit_product(product, (W, H), rng.uniform(0.40, 0.65), rng.uniform(-15, 15),
                          0.04, rng)
    x0, y0 = int(rng.uniform(0, W - product.width + 1)), int(rng.uniform(0, H - product.height + 1))
    paste(canvas, product, x0, y0)
    # a hand's shadow from one side
    cx, cy = rng.uniform(-0.2, 1.2) * W, rng.uniform(-0.2, 1.2) * H
    shade = np.exp(-(((xx - cx) / (0.35 * W)) ** 2 + ((yy - cy) / (0.25 * H)) ** 2))
    canvas = canvas * (1 - rng.uniform(0.2, 0.45) * shade)[..., None]
    canvas = canvas * rng.uniform(0.75, 1.25)                # exposure
    grey = canvas.mean(-1, keepdims=True)
    canvas = grey + (canvas - grey) * rng.uniform(0.6, 1.4)  # saturation
    img = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    img = img.filter(ImageFilter.UnsharpMask(radius=1, percent=int(rng.uniform(60, 150)),
                                             threshold=2))
    return Shot(jpeg(img, rng.integers(45, 71)), alpha_box(product, x0, y0, (W, H)))


@dataclass(frozen=True)
class PhoneFamily:
    """A named phone-shot generator: `make(product, rng, donors) -> Shot`, `product`
    being the studio photo's `cutout` (RGBA)."""

    name: str
    description: str
    make: Callable[[Image.Image, np.random.Generator, Donors], Shot]


FAMILIES: dict[str, PhoneFamily] = {f.name: f for f in (
    PhoneFamily("collage", "on a collage of other catalog photos; colour cast; JPEG 35-60",
                collage),
    PhoneFamily("room", "standing in a rendered room (wall, planks in perspective, shadow); "
                "exposure, vignetting, shot noise; JPEG 50-75", room),
    PhoneFamily("bokeh", "before a defocused catalog photo with light discs; white balance, "
                "motion blur; JPEG 40-60", bokeh),
    PhoneFamily("noise", "on coloured noise; colour cast, defocus, low resolution; JPEG 35-50",
                noise),
    PhoneFamily("flatlay", "on a sheet from above, another product at the edge, a hand's "
                "shadow; exposure, saturation, sharpening; JPEG 45-70", flatlay),
)}
FAMILY_NAMES: tuple[str, ...] = tuple(FAMILIES)


def check_families(names: Sequence[str]) -> list[str]:
    """`names` as a list, each a known family (ValueError naming the known ones otherwise)."""
    out = []
    for n in names:
        if n not in FAMILIES:
            raise ValueError(f"unknown phone-shot family {n!r}; known: {', '.join(FAMILIES)}")
        out.append(n)
    return out


def family_rng(family: str, seed: int, item_id: str, view: int = 0) -> np.random.Generator:
    """The generator of one shot: the same image for the same (family, seed, item, view)."""
    digest = hashlib.sha1(f"family:{family}:{seed}:{item_id}:{view}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


class DonorPool:
    """Donor photos for backgrounds and distractors: `size` catalog photos drawn once with
    `seed` and kept decoded in memory (a collage uses up to 14). Call `donors(exclude)` for the
    `Donors` of one shot: never the product's own photo."""

    def __init__(self, paths: Sequence[str], size: int = 512, seed: int = 0):
        paths = sorted(set(str(p) for p in paths))       # the same pool whatever the order
        if not paths:
            raise ValueError("a donor pool needs at least one catalog photo")
        rng = np.random.default_rng(seed)
        pick = rng.choice(len(paths), size=min(size, len(paths)), replace=False)
        self.paths = [paths[i] for i in sorted(pick)]
        self._images: dict[str, Image.Image] = {}
        self._cutouts: dict[str, Image.Image] = {}

    def image(self, path: str) -> Image.Image:
        img = self._images.get(path)
        if img is None:
            from recsys.data.images import load_image
            img = load_image(path).convert("RGB")
            img.load()
            self._images[path] = img
        return img

    def cutout(self, path: str) -> Image.Image:
        """The donor's `cutout`, computed once (a flat-lay shot's distractor product)."""
        cut = self._cutouts.get(path)
        if cut is None:
            cut = self._cutouts[path] = cutout(self.image(path))
        return cut

    def donors(self, exclude: str | None = None) -> Donors:
        pool = [p for p in self.paths if p != exclude] or self.paths

        def draw(rng: np.random.Generator) -> Image.Image:
            return self.image(pool[int(rng.integers(len(pool)))])

        # the same draw (one integer from `rng`), cut out: `donor_cutout`
        draw.cutout = lambda rng: self.cutout(pool[int(rng.integers(len(pool)))])  # type: ignore[attr-defined]
        return draw


def family_shot(family: str, photo: Image.Image | None, rng: np.random.Generator,
                donors: Donors, product: Image.Image | None = None) -> Shot:
    """A phone-style photo of the product in the studio `photo` made by `family`, with the
    product's box. `product`: the photo's `cutout` when already computed (one cutout serves
    every family)."""
    if product is None:
        if photo is None:
            raise ValueError("family_shot needs the studio photo or its cutout")
        product = cutout(photo)
    return FAMILIES[check_families([family])[0]].make(product, rng, donors)
