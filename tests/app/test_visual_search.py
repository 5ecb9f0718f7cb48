"""The Visual search page (AppTest): an uploaded photo or a short video returns a grid, example
photos one click away with the query on top and the exact-match badge, filters, search as a
shopper, and bad uploads (broken files, decompression and decoder bombs) shown as messages."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image

from recsys.store import Store

from ..app_helpers import app_test, html_of, nth_photo, png_bytes, problems
from ..decode_attacks import (
    big_tile_tiff,
    growing_video,
    many_scans_jpeg,
)


def test_page_example_click_shows_query_on_top_and_exact_badge(app_db: Path):
    at = app_test(app_db, "app_pages/visual_search.py")
    assert any(b.key == "vs_ex_0" for b in at.button)
    at.button(key="vs_ex_0").click().run()                  # a catalog photo
    assert not problems(at) and not at.error
    page = html_of(at)
    assert 'class="rs-querybar"><img' in page                # the query photo, above the grid
    assert page.index("rs-querybar") < page.index('class="rs-card"')
    assert "exact match" in page and page.count('class="rs-card"') == \
        at.slider(key="vs_k").value
    at.button(key="vs_ex_4").click().run()                  # a phone photo
    at.toggle(key="vs_crop").set_value(True).run()
    assert not problems(at)
    page = html_of(at)
    assert "cropped to the product" in page and "exact match" not in page


def test_page_gender_filter_returns_only_womens_items(app_db: Path):
    store = Store(app_db)
    _, path = nth_photo(store, 3)
    store.close()
    at = app_test(app_db, "app_pages/visual_search.py")
    at.file_uploader[0].set_value(("tee.jpg", Path(path).read_bytes(), "image/jpeg")).run()
    at.multiselect(key="vs_f_gender").set_value(["Women"]).run()
    assert not problems(at) and not at.error
    page = html_of(at)
    grid = page.split('<div class="rs-grid"', 1)[1]
    metas = re.findall(r'class="rs-meta">([^<]*)</div>', grid)
    assert metas and all(m.endswith("Women") for m in metas), metas
    assert "filters: 1 gender" in page


def demo_photo(db: Path) -> bytes:
    store = Store(db)
    try:
        path = store.items("demo")["image_path"].dropna().iloc[0]
    finally:
        store.close()
    return Path(path).read_bytes()


def test_visual_search_upload_returns_grid(app_db: Path):
    at = app_test(app_db, "app_pages/visual_search.py")
    at.file_uploader[0].set_value(("query.jpg", demo_photo(app_db), "image/jpeg")).run()
    assert not problems(at) and not at.error
    page = html_of(at)
    assert page.count('class="rs-card"') == at.slider(key="vs_k").value
    assert "most similar products" in page and "answered in" in page
    store = Store(app_db)
    title = store.items("demo").dropna(subset=["image_path"]).iloc[0]["title"]
    store.close()
    first_card = page.split('class="rs-card"')[1]
    assert title in first_card            # the product whose photo was uploaded comes first


@pytest.mark.parametrize("payload, message", [
    (b"this is not an image at all", "not an image"),
    (b"", "empty"),
    (png_bytes()[:60], ""),
])
def test_visual_search_bad_upload_is_a_message(app_db: Path, payload: bytes, message: str):
    at = app_test(app_db, "app_pages/visual_search.py")
    at.file_uploader[0].set_value(("bad.jpg", payload, "image/jpeg")).run()
    assert not problems(at)
    assert at.error, "a bad upload must show an error"
    assert message.lower() in at.error[0].value.lower()
    assert 'class="rs-card"' not in html_of(at)


def test_visual_search_refuses_decompression_bomb(app_db: Path):
    buf = io.BytesIO()
    Image.new("1", (9000, 9000)).save(buf, "PNG")          # 81 MP, a few kB on disk
    at = app_test(app_db, "app_pages/visual_search.py")
    at.file_uploader[0].set_value(("huge.png", buf.getvalue(), "image/png")).run()
    assert not problems(at) and at.error
    assert "pixels" in at.error[0].value.lower() or "large" in at.error[0].value.lower()


def test_visual_search_from_catalog_item(app_db: Path):
    at = app_test(app_db, "app_pages/visual_search.py")
    at.segmented_control(key="vs_mode").set_value("Pick a catalog item").run()
    assert not problems(at)
    assert html_of(at).count('class="rs-card"') == at.slider(key="vs_k").value


def test_search_as_a_shopper_on_visual_search(app_db: Path):
    at = app_test(app_db, "app_pages/visual_search.py")
    at.segmented_control(key="vs_mode").set_value("Pick a catalog item").run()
    user = at.selectbox(key="vs_as").options[2]
    at.selectbox(key="vs_as").select(user).run()
    assert not problems(at), problems(at)
    page = html_of(at)
    assert "products for shopper" in page and "taste" in page


def test_visual_search_takes_a_short_video(app_db: Path):
    from ..data.test_video import make_video

    clip = make_video(seconds=2, size=(96, 96))
    at = app_test(app_db, "app_pages/visual_search.py")
    at.file_uploader[0].set_value(("clip.mp4", clip, "video/mp4")).run()
    assert not problems(at) and not at.error
    page = html_of(at)
    assert page.count('class="rs-card"') == at.slider(key="vs_k").value


# -- decoder bombs --------------------------------------------------------------------------------
def test_visual_search_page_refuses_decoder_bombs(app_db: Path):
    pytest.importorskip("av")
    at = app_test(app_db, "app_pages/visual_search.py")
    for name, data, words in (("tile.tif", big_tile_tiff(), "would need about"),
                              ("scans.jpg", many_scans_jpeg(), "scans"),
                              ("grow.mkv", growing_video(), "16000x16000"),
                              ("grow.mov", growing_video("mov"), "16000x16000")):
        at.file_uploader[0].set_value((name, data, "application/octet-stream")).run()
        assert not problems(at), name
        assert at.error and words in at.error[0].value, (name, [e.value for e in at.error])
        assert 'class="rs-card"' not in "".join(m.value for m in at.markdown)
