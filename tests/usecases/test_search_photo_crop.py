"""Visual search's photo queries (issue 22): the crop box on the whole photo, no crop on a
product shot, and "no close match" under the catalog's calibrated threshold."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from recsys import usecases
from recsys.search import close_match
from recsys.search.query_photos import phone_shot
from recsys.store import Store


@pytest.fixture
def store(app_db: Path):
    s = Store(app_db)
    yield s
    s.close()


def _photos(store: Store, n: int) -> list[tuple[str, str]]:
    items = store.items("demo").dropna(subset=["image_path"]).sort_values("item_id")
    return list(zip(items["item_id"], items["image_path"]))[:n]


def test_phone_shot_is_cropped_and_the_box_is_on_the_whole_photo(store: Store):
    _, path = _photos(store, 3)[2]
    shot = phone_shot(path, seed=1, surface="tiles")
    found = usecases.search_similar(store, "demo", photo=shot, k=5)
    size = Image.open(io.BytesIO(shot)).size
    assert found.crop["cropped"] and found.crop["size"] == list(size)
    left, top, right, bottom = found.crop["box"]
    assert 0 <= left < right <= size[0] and 0 <= top < bottom <= size[1]
    assert (right - left) * (bottom - top) < 0.9 * size[0] * size[1]
    assert found.crop["fraction"] == pytest.approx([left / size[0], top / size[1],
                                                   right / size[0], bottom / size[1]])
    preview = Image.open(io.BytesIO(found.query_preview))          # the whole photo, to draw on
    assert preview.format == "JPEG" and preview.size == size
    crop = Image.open(io.BytesIO(found.query_photo))               # what was encoded beside it
    assert crop.size == (right - left, bottom - top)
    assert found.to_dict()["crop"] == found.crop and "close_match" in found.to_dict()
    off = usecases.search_similar(store, "demo", photo=shot, k=5, crop=False)
    assert off.crop is None and off.query_preview is None and off.query_photo is None


def test_catalog_photo_is_never_cropped_and_a_close_match(store: Store):
    """The demo's drawn photos are on a grey gradient, not studio white, so the product-shot
    rule does not see them; the exact match does (same file, or re-saved: same look)."""
    for n, (item_id, path) in enumerate(_photos(store, 4)):
        photo = Path(path).read_bytes()
        if n % 2:
            buf = io.BytesIO()
            Image.open(path).save(buf, "JPEG", quality=80)
            photo = buf.getvalue()
        found = usecases.search_similar(store, "demo", photo=photo, k=10)
        assert found.exact_match["item_id"] == item_id
        assert found.crop["box"] is None and found.crop["reason"] == "catalog photo"
        assert found.query_photo is None                   # nothing but the photo was encoded
        assert found.results["item_id"].iloc[0] == item_id
        assert found.close_match is not None and found.close_match["close"]
        assert not found.no_close_match


def test_photo_of_a_kind_the_catalog_lacks_says_no_close_match(store: Store, app_db: Path):
    """The shop stops selling belts (their vectors leave the index): a phone shot of a belt
    now has no close match, and the threshold is calibrated again for the new vectors."""
    before = usecases.search_similar(store, "demo", photo=phone_shot(_kind(store, "Belts"),
                                                                     seed=3), k=8)
    assert before.close_match["close"]                     # belts are sold: a close match
    items = store.items("demo")
    gone = list(items.loc[items["article_type"] == "Belts", "item_id"])
    enc, version = before.encoder.split(":")[0].split("@")
    store.delete_embeddings("demo", enc, version, "image", gone)
    store.delete_embeddings("demo", enc, version, "text", gone)
    found = usecases.search_similar(store, "demo", photo=phone_shot(_kind(store, "Belts"),
                                                                    seed=3), k=8)
    assert found.items == before.items - len(gone)
    assert found.no_close_match and found.close_match["score"] < found.close_match["threshold"]
    assert found.close_match["threshold"] != before.close_match["threshold"]   # recalibrated
    assert len(found.results) == 8                         # the similar styles are still shown
    # words and filters do not change the check: the whole catalog, by photo
    refined = usecases.search_similar(store, "demo", photo=phone_shot(_kind(store, "Belts"),
                                                                      seed=3), k=8,
                                      text="leather", image_weight=0.8)
    assert refined.close_match == found.close_match
    saved = list((app_db.parent / "artifacts").rglob(close_match.FILE))
    assert len(saved) == 1                                 # one file beside the index
    kept = json.loads(saved[0].read_text())["threshold"]
    assert kept["cutoff"] == pytest.approx(found.close_match["threshold"])
    assert kept["n_items"] == found.items
    # the catalog's type names through the encoder's text tower take part (no "Belts" left),
    # and the broad list of other product-type names (issue 22, phase 5)
    assert kept["features"][-6:] == ["text_max", "text_margin", "text_agree", "text_raw",
                                     "open_gap", "open_mass"]


def _kind(store: Store, article_type: str) -> str:
    items = store.items("demo").dropna(subset=["image_path"]).sort_values("item_id")
    return items.loc[items["article_type"] == article_type, "image_path"].iloc[0]


def test_studio_photo_not_in_the_catalog_is_a_product_shot_left_whole(store: Store):
    image = Image.new("RGB", (240, 300), (255, 255, 255))
    image.paste((200, 30, 30), (70, 60, 170, 240))
    buf = io.BytesIO()
    image.save(buf, "PNG")
    found = usecases.search_similar(store, "demo", photo=buf.getvalue(), k=4)
    assert found.exact_match is None
    assert found.crop == {"box": None, "fraction": None, "reason": "product shot",
                          "cropped": False, "size": [240, 300]}
    assert found.query_photo is None and found.query_preview is not None
