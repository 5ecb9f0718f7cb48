"""The search use cases on the scalable index: filters as one cached mask, keywords, exact /
approximate / float16 answering alike, re-embedded items reaching the cached index, facets;
photos (filters that are not words, price ranges, the exact-match badge read from a handful of
files, the crop to the product, example photos made once), the result wrapping the index's hits,
and a checkpoint whose pickle never runs."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from recsys import usecases
from recsys.search.facets import filter_items
from recsys.search.query_photos import phone_shot
from recsys.store import Store
from recsys.usecases import _cache

from ..app_helpers import nth_photo, png_bytes
from ..cli_helpers import cli
from recsys.encoders.checkpoints import (
    DamagedCheckpoint,
)


@pytest.fixture
def demo(app_db: Path):
    store = Store(app_db)
    yield store
    store.close()


def test_filters_are_one_mask_inside_the_search(demo: Store):
    items = demo.items("demo")
    item = str(items["item_id"].iloc[3])
    gender = str(items["gender"].dropna().iloc[0])
    price = (float(items["price"].quantile(0.2)), float(items["price"].quantile(0.8)))
    allowed = set(filter_items(items, {"gender": [gender]}, price=price)["item_id"]) - {item}
    hits = usecases.search_similar(demo, "demo", item_id=item, k=50,
                                   filters={"gender": [gender]}, price=price)
    got = list(hits.results["item_id"])
    assert got and set(got) <= allowed and len(got) == min(50, len(allowed))
    # the same products and order as the unfiltered exact ranking restricted to the filter
    everything = usecases.search_similar(demo, "demo", item_id=item, k=len(items),
                                         method="exact")
    assert got == [i for i in everything.results["item_id"] if i in allowed][:len(got)]
    assert set(hits.timings) == {"encode", "filter", "rank", "join"}
    assert hits.method == "exact" and hits.to_dict()["method"] == "exact"
    # the facet codes are built once per index and catalog version, then reused
    facets = [v for k, v in _cache._entries.get("facets", {}).items()
              if k[0] == str(Path(demo.path).resolve())]
    assert len(facets) == 1
    usecases.search_similar(demo, "demo", item_id=item, k=5, filters={"gender": [gender]})
    assert [v for k, v in _cache._entries["facets"].items()
            if k[0] == str(Path(demo.path).resolve())] == facets
    with pytest.raises(usecases.SearchError, match="cannot be filtered by 'colour'.*base_colour"):
        usecases.search_similar(demo, "demo", item_id=item, filters={"colour": ["Red"]})
    with pytest.raises(usecases.SearchError, match="price range"):
        usecases.search_similar(demo, "demo", item_id=item, price=(50, 10))


def test_catalog_search_keeps_to_filters_and_keywords(demo: Store):
    items = demo.items("demo")
    colour = str(items["base_colour"].dropna().iloc[0])
    word = str(items["title"].dropna().iloc[0]).split()[0]
    allowed = set(filter_items(items, {"base_colour": [colour]}, word)["item_id"])
    page = usecases.search_catalog(demo, "demo", query="a bag", k=10, items=items,
                                   filters={"base_colour": [colour]}, keywords=word)
    assert page.ranked and len(page.items) == min(10, len(allowed))
    assert set(page.items["item_id"]) <= allowed
    nothing = usecases.search_catalog(demo, "demo", query="a bag", items=items,
                                      keywords="no-such-word-anywhere")
    assert nothing.ranked and nothing.items.empty and "rank" in nothing.items


def test_exact_approximate_and_float16_answer_alike(demo: Store, monkeypatch):
    items = demo.items("demo").dropna(subset=["image_path"])
    photo, own = items["image_path"].iloc[5], items["item_id"].iloc[5]
    exact = usecases.search_similar(demo, "demo", photo=photo, k=8, method="exact")
    assert exact.method == "exact" and exact.results["item_id"].iloc[0] == own
    assert usecases.search_similar(demo, "demo", photo=photo, k=8).method == "exact"
    with pytest.raises(usecases.SearchError, match="no approximate index.*exact"):
        usecases.search_similar(demo, "demo", photo=photo, k=8, method="ann")
    with pytest.raises(usecases.SearchError, match="Unknown search method"):
        usecases.search_similar(demo, "demo", photo=photo, method="fast")
    with pytest.raises(usecases.SearchError, match="Unknown index storage"):
        usecases.search_similar(demo, "demo", photo=photo, storage="int4")

    half = usecases.search_similar(demo, "demo", photo=photo, k=8, storage="float16")
    info = usecases.prepare_search(demo, "demo", storage="float16")
    assert info.storage == "float16" and not info.ann
    assert half.results["item_id"].iloc[0] == exact.results["item_id"].iloc[0]
    assert len(set(half.results["item_id"]) & set(exact.results["item_id"])) >= 7

    # a catalog above the (lowered) threshold gets the approximate index, used automatically
    import recsys.search.vector_index as vi

    monkeypatch.setattr(vi, "ANN_MIN_ITEMS", 32)
    _cache.clear()
    info = usecases.prepare_search(demo, "demo")
    assert info.ann and info.ann_min_items == 32
    auto = usecases.search_similar(demo, "demo", photo=photo, k=8)
    ann = usecases.search_similar(demo, "demo", photo=photo, k=8, method="ann")
    assert auto.method == ann.method == "ann"
    assert len(set(ann.results["item_id"]) & set(exact.results["item_id"])) >= 7
    code, data, err = cli("search", "--db", str(demo.path), "--image", photo, "--k", "8",
                          "--exact", "--json")
    assert code == 0, err
    assert data["method"] == "exact"
    assert [r["item_id"] for r in data["results"]] == list(exact.results["item_id"])
    code, text, err = cli("search", "--db", str(demo.path), "--image", photo, "--k", "3",
                          "--ann", "--storage", "float16", "--filter", "gender=Women")
    assert code == 0, err
    assert "ann search" in text and "filter" in text and "rank" in text
    with pytest.raises(SystemExit):                      # argparse: one or the other
        cli("search", "--db", str(demo.path), "--image", photo, "--exact", "--ann")


def test_a_re_embedded_item_reaches_the_cached_index(demo: Store):
    """Regression: replacing an item's vectors (same encoder version, new content) kept their
    old write time, so the vectors' version token (count and newest write time) did not change
    and a running app kept searching its cached, stale index."""
    sets = demo.embedding_sets("demo")
    encoder, version = str(sets.iloc[0]["encoder"]), str(sets.iloc[0]["version"])
    ids = list(demo.items("demo")["item_id"])
    a, b = ids[2], ids[9]
    before = usecases.search_similar(demo, "demo", item_id=b, k=1, image_weight=1.0)
    assert before.results["item_id"].iloc[0] != a
    written = set(demo.embedding_sets("demo")["updated_at"])
    for modality in ("image", "text"):            # item a now looks and reads exactly like b
        _, vec = demo.embeddings("demo", encoder, version, modality)
        row = ids.index(b) if len(vec) == len(ids) else None
        assert row is not None
        demo.upsert_embeddings("demo", encoder, version, modality, [a], vec[[row]],
                               ["changed"])
    after = usecases.search_similar(demo, "demo", item_id=b, k=1, image_weight=1.0)
    assert after.results["item_id"].iloc[0] == a           # was b's old nearest neighbour
    assert after.results["score"].iloc[0] == pytest.approx(1.0, abs=1e-4)
    assert set(demo.embedding_sets("demo")["updated_at"]).isdisjoint(written)


def test_search_facets_match_the_whole_catalog_and_follow_its_changes(app_db: Path):
    """The Visual search filters come from a narrow read, yet offer exactly what the whole
    catalog's facets offer; a changed catalog gives new values (no stale cache)."""
    from recsys.search.facets import available_facets, facet_values

    store = Store(app_db)
    items = store.items("demo")
    offered = usecases.search_facets(store, "demo")
    labels = available_facets(items)
    assert offered.facets == {c: (labels[c], facet_values(items, c)) for c in labels}
    prices = items["price"].dropna()
    assert offered.price == (float(prices.min()), float(prices.max()))
    only = usecases.search_facets(store, "demo", ["gender", "no_such_column"])
    assert set(only.facets) <= {"gender"}

    changed = items.head(1).copy()
    changed["price"] = float(prices.max()) + 1000
    with store.transaction() as cur:
        Store.upsert_items(cur, "demo", changed)
    assert usecases.search_facets(store, "demo").price[1] == float(prices.max()) + 1000


def test_for_women_is_a_filter_not_words(demo: Store):
    _, path = nth_photo(demo, 3)
    hits = usecases.search_similar(demo, "demo", photo=path, k=12,
                                   filters={"gender": ["Women"]})
    assert len(hits.results) > 0 and set(hits.results["gender"]) == {"Women"}
    assert hits.query["filters"] == {"gender": ["Women"]}
    words = usecases.search_similar(demo, "demo", photo=path, k=12, text="for women")
    assert set(words.results["gender"]) != {"Women"}      # why words were the wrong tool


def test_price_range_filter(demo: Store):
    _, path = nth_photo(demo, 1)
    hits = usecases.search_similar(demo, "demo", photo=path, k=40, price=(1000, 2000))
    assert len(hits.results) and hits.results["price"].between(1000, 2000).all()
    open_top = usecases.search_similar(demo, "demo", photo=path, k=40, price=(3000, None))
    assert (open_top.results["price"] >= 3000).all()
    with pytest.raises(usecases.SearchError, match="low to high"):
        usecases.search_similar(demo, "demo", photo=path, price=(2000, 1000))


def test_exact_match_for_a_catalog_photo(demo: Store):
    item_id, path = nth_photo(demo, 5)
    same_file = usecases.search_similar(demo, "demo", photo=Path(path).read_bytes(), k=4)
    assert same_file.exact_match == {"item_id": item_id, "how": "same file",
                                     "similarity": 1.0}
    decoded = Image.open(path).convert("RGB")                 # same pixels, no file bytes
    same_look = usecases.search_similar(demo, "demo", photo=decoded, k=4,
                                        filters={"gender": ["Nobody"]})   # filtered out too
    assert same_look.exact_match["item_id"] == item_id
    assert same_look.exact_match["how"] == "same look"
    other = usecases.search_similar(demo, "demo", photo=png_bytes((20, 200, 40)), k=4)
    assert other.exact_match is None
    assert same_file.to_dict()["exact_match"]["item_id"] == item_id


def test_the_use_case_result_wraps_the_index_hits(demo: Store):
    """`SearchHits` is the index's `Hits` joined with the catalog: the same items in the same
    order, the same scores, the method the index answered with."""
    from recsys.search.hits import Hits

    _, path = nth_photo(demo, 4)
    found = usecases.search_similar(demo, "demo", photo=path, text="shirt", k=6)
    assert isinstance(found.hits, Hits) and len(found.hits) == len(found.results) == 6
    assert list(found.results["item_id"]) == found.hits.item_ids
    np.testing.assert_allclose(found.results["score"], found.hits.scores, atol=1e-6)
    assert found.method == found.hits.method == found.to_dict()["method"]
    assert [r["item_id"] for r in found.rows()] == found.hits.item_ids


def test_search_with_crop_encodes_the_cropped_photo(demo: Store):
    _, path = nth_photo(demo, 2)
    shot = phone_shot(path, seed=1, surface="tiles")
    assert Image.open(io.BytesIO(shot)).format == "JPEG"
    hits = usecases.search_similar(demo, "demo", photo=shot, k=5, crop=True)
    cropped = Image.open(io.BytesIO(hits.query_photo))
    assert cropped.size < Image.open(io.BytesIO(shot)).size and hits.query["crop"] is True
    assert usecases.search_similar(demo, "demo", photo=shot, k=5).query["crop"] is True
    assert usecases.search_similar(demo, "demo", photo=shot, k=5,
                                   crop=False).query_photo is None


def test_example_photos_are_made_once_under_the_data_folder(demo: Store, app_db: Path):
    examples = usecases.example_queries(demo, "demo")
    kinds = [e["kind"] for e in examples]
    assert kinds == ["catalog"] * 3 + ["phone"] * 3
    assert len({e["item_id"] for e in examples}) == 6
    phones = [Path(e["path"]) for e in examples if e["kind"] == "phone"]
    root = Path(__file__).resolve().parents[2]
    for p in phones:
        assert p.is_file() and app_db.parent in p.parents and root not in p.parents
    stamps = [p.stat().st_mtime_ns for p in phones]
    assert [Path(e["path"]) for e in usecases.example_queries(demo, "demo")
            if e["kind"] == "phone"] == phones
    assert [p.stat().st_mtime_ns for p in phones] == stamps           # cached, not redrawn


def test_exact_match_reads_a_handful_of_files_not_the_catalog(demo: Store, monkeypatch):
    """A copy of a catalog photo is named "same file" by comparing it with its few nearest
    catalog photos only: preparing the search and answering it never touches every photo file
    (on a 1M-product catalog the old size index took 60 s of `prepare_search`)."""
    import os

    item, path = nth_photo(demo, 5)
    folder = str(Path(path).parent)
    data = Path(path).read_bytes()
    touched: list[str] = []
    real_stat = os.stat

    def counting_stat(p, *a, **k):
        if str(p).startswith(folder):
            touched.append(str(p))
        return real_stat(p, *a, **k)

    monkeypatch.setattr(os, "stat", counting_stat)
    usecases.prepare_search(demo, "demo")
    assert len(set(touched)) <= 5        # its warm-up query's nearest catalog photos at most
    touched.clear()
    hits = usecases.search_similar(demo, "demo", photo=data, k=8)
    assert hits.exact_match["item_id"] == item and hits.exact_match["how"] == "same file"
    assert len(set(touched)) <= 5        # the photo's nearest catalog photos, no more
    copy = data + b"\0"                  # not byte-identical: the same look, not the same file
    near = usecases.search_similar(demo, "demo", photo=copy, k=8)
    assert near.exact_match is None or near.exact_match["how"] == "same look"


def test_search_text_through_the_use_case_does_not_run_the_pickle(evil_store):
    db, marker = evil_store
    store = Store(db)
    try:
        with pytest.raises(DamagedCheckpoint, match="cannot be read safely.*Align the encoder "
                                                    "again"):
            usecases.search_similar(store, "demo", text="red summer dress")
        with pytest.raises(DamagedCheckpoint):
            usecases.prepare_search(store, "demo")
    finally:
        store.close()
    assert not marker.exists()
