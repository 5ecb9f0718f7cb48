"""A re-saved, re-compressed or resized copy of a catalog photo is that photo (the exact-match
badge) even when its vector falls under `EXACT_COSINE`; a different product's photo is not."""

from __future__ import annotations

import io

from PIL import Image

from recsys.search.exact_match import COPY_PIXELS, same_picture, thumbnail


def _copy(path: str, quality: int = 60, side: int | None = None) -> bytes:
    img = Image.open(path).convert("RGB")
    if side:
        img = img.resize((side, side))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def test_copies_are_the_same_picture_and_other_products_are_not(demo_store):
    items = demo_store.items("demo").dropna(subset=["image_path"]).sort_values("item_id")
    rows = list(zip(items["item_id"], items["image_path"]))[:40]
    for item_id, path in rows[:10]:
        for data in (_copy(path, 80), _copy(path, 40), _copy(path, 85, side=150)):
            assert same_picture(demo_store, "demo", data, item_id)
    # another product: the nearest in pixels among the first 40
    for item_id, path in rows[:10]:
        mine = thumbnail(path)
        others = [(float(mine @ thumbnail(p)), o) for o, p in rows if o != item_id]
        best, other = max(others)
        assert best < COPY_PIXELS
        assert not same_picture(demo_store, "demo", _copy(path, 80), other)


def test_an_unreadable_upload_or_a_missing_photo_is_no_copy(demo_store):
    item_id = demo_store.items("demo")["item_id"].iloc[0]
    assert not same_picture(demo_store, "demo", b"not a photo", item_id)
    assert not same_picture(demo_store, "demo", b"\xff\xd8\xff" + b"\0" * 64, item_id)
    assert not same_picture(demo_store, "demo", _copy(demo_store.items("demo")["image_path"]
                                                       .iloc[0]), "no-such-item")
