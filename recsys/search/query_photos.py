"""Query photos for Visual search: example photos one click away, phone-style shots made from
catalog products, exact-match detection.

* `phone_shot`: a phone-style JPEG of a catalog product, made by the one phone-shot generator of
  the project (`recsys.encoders.phone_shots.phone_shot`, the one the encoder's phone-shot
  evaluation uses) on a chosen surface (a plain wall, a cloth, tiles). The examples are generated at run
  time and cached under the data folder (`<data>/artifacts/examples/<dataset>/`), never shipped.
* `photo_digest`: the hash that says "this upload is that catalog photo, byte for byte".
* `stands_out`: whether a studio photo's product cuts out cleanly (good phone shots). The crop
  of a query photo to its product is `recsys.encoders.crop_to_product`
  (`search_similar(crop=True)`, on by default).

PIL and numpy; no store (the use case `usecases.search.example_queries` picks the items).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from recsys.core.files import atomic_path
from recsys.data.images import ImageSource, load_image

SURFACES = {
    "gradient": "against a plain wall",
    "fabric": "on a knitted cloth",
    "tiles": "on a tiled floor",
}
"""The surfaces example phone shots are taken on (`encoders.phone_shots.BACKGROUNDS` kinds),
with the words the example's label uses."""

SHOT_VERSION = 3
"""Part of a phone shot's file name: a change to `phone_shot` makes new files, never stale ones."""
JPEG_QUALITY = 90          # the generator already JPEG-compresses like a phone; keep that look


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


def stands_out(photo: ImageSource | Image.Image) -> bool:
    """Whether a studio photo's product can be cut from its background cleanly (it covers a
    good part of the photo and does not run into the border): such products make good phone
    shots."""
    from recsys.encoders.phone_shots import product_mask

    image = photo if isinstance(photo, Image.Image) else load_image(photo, target_size=96)
    mask = product_mask(image.convert("RGB").resize((96, 96))) > 0.5
    edge = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]]).mean()
    return bool(0.08 < mask.mean() < 0.7 and edge < 0.05)


def phone_shot(photo: ImageSource | Image.Image, seed: int = 0, surface: str = "fabric"
               ) -> bytes:
    """A phone-style JPEG of a catalog product on `surface` (one of `SURFACES`), made by
    `encoders.phone_shots.phone_shot`; deterministic for a seed."""
    from recsys.encoders.phone_shots import phone_shot as shoot

    if surface not in SURFACES:
        raise ValueError(f"surface must be one of {', '.join(SURFACES)}, not {surface!r}")
    product = photo.convert("RGB") if isinstance(photo, Image.Image) else load_image(photo)
    shot = shoot(product, np.random.default_rng(seed), background=surface)
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
