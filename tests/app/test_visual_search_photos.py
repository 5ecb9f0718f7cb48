"""Visual search page (issue 22): the crop box drawn on the query photo, "not cropped" for a
catalog photo, and the "No close match — similar styles" label."""

from __future__ import annotations

import re
from pathlib import Path

from recsys.search.query_photos import phone_shot
from recsys.store import Store

from ..app_helpers import app_test, html_of, problems

PAGE = "app_pages/visual_search.py"


def _photo_of(app_db: Path, article_type: str) -> str:
    store = Store(app_db)
    items = store.items("demo").dropna(subset=["image_path"]).sort_values("item_id")
    store.close()
    return items.loc[items["article_type"] == article_type, "image_path"].iloc[0]


def _box(page: str) -> list[float]:
    found = re.search(r'class="rs-cropbox"[^>]*style="left:([\d.]+)%;top:([\d.]+)%;'
                      r'width:([\d.]+)%;height:([\d.]+)%"', page)
    assert found, "no crop box on the query photo"
    return [float(v) for v in found.groups()]


def test_phone_photo_shows_its_crop_box_and_a_catalog_photo_is_not_cropped(app_db: Path):
    at = app_test(app_db, PAGE)
    shot = phone_shot(_photo_of(app_db, "Tshirts"), seed=2, surface="tiles")
    at.file_uploader[0].set_value(("shot.jpg", shot, "image/jpeg")).run()
    assert not problems(at) and not at.error
    page = html_of(at)
    assert 'class="rs-shot" style="aspect-ratio:' in page       # the whole photo...
    left, top, width, height = _box(page)                        # ...with the product's box
    assert 0 <= left and 0 <= top and 0 < width < 100 and 0 < height < 100
    assert left + width <= 100.1 and top + height <= 100.1 and width * height < 9000
    assert "cropped to the product (the box)" in page
    catalog = Path(_photo_of(app_db, "Caps")).read_bytes()
    at.file_uploader[0].set_value(("cap.jpg", catalog, "image/jpeg")).run()
    page = html_of(at)
    assert not problems(at) and 'class="rs-cropbox"' not in page
    assert "not cropped: a catalog photo" in page and "exact match" in page
    assert "No close match" not in page


def test_photo_of_a_kind_the_shop_does_not_sell_is_labelled_similar_styles(app_db: Path):
    store = Store(app_db)
    items = store.items("demo")
    belts = list(items.loc[items["article_type"] == "Belts", "item_id"])
    sets = store.embedding_sets("demo")
    for row in sets.itertuples():                  # the shop stops selling belts
        store.delete_embeddings("demo", row.encoder, row.version, row.modality, belts)
    store.close()
    at = app_test(app_db, PAGE)
    shot = phone_shot(_photo_of(app_db, "Belts"), seed=3)
    at.file_uploader[0].set_value(("belt.jpg", shot, "image/jpeg")).run()
    assert not problems(at) and not at.error
    page = html_of(at)
    assert "No close match — similar styles" in page
    assert "are similar styles, not the same product" in page
    assert "most similar products" not in page and "similar style" in page
    grid = page.split('<div class="rs-grid"', 1)[1]
    assert grid.count('class="rs-card"') == at.slider(key="vs_k").value   # still shown
