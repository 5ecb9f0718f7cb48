"""Query photos for Visual search: example photos one click away, phone-style shots made from
catalog products.

* `example_photos`: a few catalog photos of different groups and phone shots of other products,
  picked from a narrow read of the catalog (`usecases.search.example_queries` passes it).
* `phone_shot`: a phone-style JPEG of a catalog product, made by the one phone-shot generator of
  the project (`recsys.encoders.phone_shots.phone_shot`, the one the encoder's phone-shot
  evaluation uses) on a chosen surface (a plain wall, a cloth, tiles). The examples are
  generated at run time and cached under the data folder
  (`<data>/artifacts/examples/<dataset>/`), never shipped.
* `stands_out`: whether a studio photo's product cuts out cleanly (good phone shots). The crop
  of a query photo to its product is `recsys.encoders.crop_to_product`
  (`search_similar(crop=True)`, on by default).

PIL, numpy and pandas; no store. Whether a query photo is a catalog photo is
`recsys.search.exact_match`.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
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


def example_photos(items: pd.DataFrame, folder: Path, n_catalog: int = 3, n_phone: int = 3
                   ) -> list[dict[str, Any]]:
    """Photos a visitor can try with one click: `n_catalog` catalog photos (of different
    groups: article types, else master categories) and `n_phone` phone shots of other
    products that cut out cleanly (`stands_out`), made once and cached under `folder`
    (created when the catalog has photos).

    `items`: item_id, image_path and the label and group columns (title, base_colour,
    article_type, master_category) of the catalog. Each example: label, path, kind
    ("catalog" | "phone"), item_id (the product it shows). Empty without photos. Only the few
    candidates looked at are checked on disk (a million-product catalog: no `stat` each)."""
    from recsys.search.facets import item_label

    items = items[items["image_path"].notna() & items["image_path"].astype(str).ne("")]
    if items.empty:
        return []
    group = next((c for c in ("article_type", "master_category") if c in items
                  and items[c].notna().any()), None)
    items = items.sort_values("item_id")
    groups = [items[items[group] == v] for v in items[group].value_counts().index] \
        if group is not None else [items]
    picks: list[pd.Series] = []
    used: set[str] = set()

    def first_fit(rows: pd.DataFrame, phone: bool) -> pd.Series | None:
        """A product of the group not used yet whose photo is there; for a phone shot one that
        cuts out cleanly."""
        for _, row in rows.head(24).iterrows():
            if row["item_id"] in used or not Path(row["image_path"]).is_file():
                continue
            if not phone or stands_out(row["image_path"]):
                return row
        return None

    for _ in range(3):                 # one product of each of the commonest groups, again
        for rows in groups:            # from the top when the catalog has few groups
            if len(picks) == n_catalog + n_phone:
                break
            row = first_fit(rows, phone=len(picks) >= n_catalog)
            if row is not None:
                picks.append(row)
                used.add(row["item_id"])
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for n, row in enumerate(picks):
        label = item_label(row)
        if n < n_catalog:
            out.append({"label": label, "path": str(row["image_path"]), "kind": "catalog",
                        "item_id": str(row["item_id"])})
        else:
            shot = cached_phone_shot(folder, str(row["item_id"]), row["image_path"], n)
            surface = list(SURFACES)[n % len(SURFACES)]
            out.append({"label": f"{label}, phone photo {SURFACES[surface]}",
                        "path": str(shot), "kind": "phone", "item_id": str(row["item_id"])})
    return out
