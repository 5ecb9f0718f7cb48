"""Visual search (issue 11): real filters next to the words, example photos one click away,
the exact-match badge and the crop to the product for phone photos."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from recsys import usecases
from recsys.encoders import crop_to_product
from recsys.search.query_photos import phone_shot
from recsys.store import Store

from ..app_helpers import app_test, html_of, png_bytes, problems


@pytest.fixture
def store(app_db: Path):
    s = Store(app_db)
    yield s
    s.close()


def _photo(store: Store, n: int = 0) -> tuple[str, str]:
    items = store.items("demo").dropna(subset=["image_path"]).sort_values("item_id")
    row = items.iloc[n]
    return row["item_id"], row["image_path"]


def test_for_women_is_a_filter_not_words(store: Store):
    _, path = _photo(store, 3)
    hits = usecases.search_similar(store, "demo", photo=path, k=12,
                                   filters={"gender": ["Women"]})
    assert len(hits.results) > 0 and set(hits.results["gender"]) == {"Women"}
    assert hits.query["filters"] == {"gender": ["Women"]}
    words = usecases.search_similar(store, "demo", photo=path, k=12, text="for women")
    assert set(words.results["gender"]) != {"Women"}      # why words were the wrong tool


def test_price_range_filter(store: Store):
    _, path = _photo(store, 1)
    hits = usecases.search_similar(store, "demo", photo=path, k=40, price=(1000, 2000))
    assert len(hits.results) and hits.results["price"].between(1000, 2000).all()
    open_top = usecases.search_similar(store, "demo", photo=path, k=40, price=(3000, None))
    assert (open_top.results["price"] >= 3000).all()
    with pytest.raises(usecases.SearchError, match="low to high"):
        usecases.search_similar(store, "demo", photo=path, price=(2000, 1000))


def test_exact_match_for_a_catalog_photo(store: Store):
    item_id, path = _photo(store, 5)
    same_file = usecases.search_similar(store, "demo", photo=Path(path).read_bytes(), k=4)
    assert same_file.exact_match == {"item_id": item_id, "how": "same file",
                                     "similarity": 1.0}
    decoded = Image.open(path).convert("RGB")                 # same pixels, no file bytes
    same_look = usecases.search_similar(store, "demo", photo=decoded, k=4,
                                        filters={"gender": ["Nobody"]})   # filtered out too
    assert same_look.exact_match["item_id"] == item_id
    assert same_look.exact_match["how"] == "same look"
    other = usecases.search_similar(store, "demo", photo=png_bytes((20, 200, 40)), k=4)
    assert other.exact_match is None
    assert same_file.to_dict()["exact_match"]["item_id"] == item_id


def test_crop_to_product_finds_the_product_on_a_textured_table():
    rng = np.random.default_rng(0)
    table = (120 + 25 * rng.random((300, 400, 3))).astype(np.uint8)
    img = Image.fromarray(table)
    ImageDraw.Draw(img).rectangle([230, 60, 330, 200], fill=(200, 20, 20))
    box = crop_to_product(img)
    assert 100 <= box.width <= 190 and 140 <= box.height <= 240     # 101 x 141 + padding
    arr = np.asarray(box, dtype=float)
    assert (arr[..., 0] - arr[..., 1] > 100).mean() > 0.4   # mostly the red product
    plain = Image.new("RGB", (200, 100), (90, 90, 90))        # nothing stands out
    assert crop_to_product(plain).size == (200, 100)          # left as it is


def test_search_with_crop_encodes_the_cropped_photo(store: Store):
    _, path = _photo(store, 2)
    shot = phone_shot(path, seed=1, surface="tiles")
    assert Image.open(io.BytesIO(shot)).format == "JPEG"
    hits = usecases.search_similar(store, "demo", photo=shot, k=5, crop=True)
    cropped = Image.open(io.BytesIO(hits.query_photo))
    assert cropped.size < Image.open(io.BytesIO(shot)).size and hits.query["crop"] is True
    assert usecases.search_similar(store, "demo", photo=shot, k=5).query["crop"] is True
    assert usecases.search_similar(store, "demo", photo=shot, k=5,
                                   crop=False).query_photo is None


def test_example_photos_are_made_once_under_the_data_folder(store: Store, app_db: Path):
    examples = usecases.example_queries(store, "demo")
    kinds = [e["kind"] for e in examples]
    assert kinds == ["catalog"] * 3 + ["phone"] * 3
    assert len({e["item_id"] for e in examples}) == 6
    phones = [Path(e["path"]) for e in examples if e["kind"] == "phone"]
    root = Path(__file__).resolve().parents[2]
    for p in phones:
        assert p.is_file() and app_db.parent in p.parents and root not in p.parents
    stamps = [p.stat().st_mtime_ns for p in phones]
    assert [Path(e["path"]) for e in usecases.example_queries(store, "demo")
            if e["kind"] == "phone"] == phones
    assert [p.stat().st_mtime_ns for p in phones] == stamps           # cached, not redrawn


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
    _, path = _photo(store, 3)
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


def test_exact_match_reads_a_handful_of_files_not_the_catalog(store: Store, monkeypatch):
    """A copy of a catalog photo is named "same file" by comparing it with its few nearest
    catalog photos only: preparing the search and answering it never touches every photo file
    (on a 1M-product catalog the old size index took 60 s of `prepare_search`)."""
    import os

    item, path = _photo(store, 5)
    folder = str(Path(path).parent)
    data = Path(path).read_bytes()
    touched: list[str] = []
    real_stat = os.stat

    def counting_stat(p, *a, **k):
        if str(p).startswith(folder):
            touched.append(str(p))
        return real_stat(p, *a, **k)

    monkeypatch.setattr(os, "stat", counting_stat)
    usecases.prepare_search(store, "demo")
    hits = usecases.search_similar(store, "demo", photo=data, k=8)
    assert hits.exact_match["item_id"] == item and hits.exact_match["how"] == "same file"
    assert len(set(touched)) <= 5        # the photo's nearest catalog photos, no more
    copy = data + b"\0"                  # not byte-identical: the same look, not the same file
    near = usecases.search_similar(store, "demo", photo=copy, k=8)
    assert near.exact_match is None or near.exact_match["how"] == "same look"
