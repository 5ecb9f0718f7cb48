"""Issue 14 through the use-case floor: the search use cases on the scalable index (filters as
a cached mask, exact / approximate / float16), model-file housekeeping and disk use, each
from the use case, the command line and the app."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys import usecases
from recsys.search.facets import filter_items
from recsys.store import Store
from recsys.usecases import _cache

from ..app_helpers import app_test, problems
from ..test_models_helpers import DATASET, fill_store
from .test_app_and_cli_agree import cli


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


def test_cli_train_keeps_models_and_prune_models_deletes_the_rest(store: Store):
    fill_store(store)
    db = str(store.path)
    store.close()
    runs = []
    for _ in range(3):
        code, data, err = cli("train", "--db", db, "--model", "popularity", "--keep-models",
                              "0", "--json")
        assert code == 0, err
        runs.append(data["run_id"])
    code, data, err = cli("prune-models", "--db", db, "--keep", "1", "--dry-run", "--json")
    assert code == 0, err
    assert [d["run_id"] for d in data["deleted"]] == runs[:2][::-1] and data["dry_run"]
    assert all(Path(d["path"]).is_file() for d in data["deleted"])          # nothing deleted
    code, text, err = cli("prune-models", "--db", db, "--keep", "1")
    assert code == 0 and "Deleted 2 model files" in text, err
    code, data, err = cli("runs", "--db", db, "--json")
    assert [r["run_id"] for r in data] == [runs[2]]                  # the rest lost their file
    code, data, err = cli("train", "--db", db, "--model", "popularity", "--keep-models", "1",
                          "--json")
    assert code == 0 and [d["run_id"] for d in data["pruned"]] == [runs[2]], err
    code, _, err = cli("train", "--db", db, "--model", "popularity", "--keep-models", "-1")
    assert code == 2 and "keep_models must be 0" in err
    code, _, err = cli("prune-models", "--db", db, "--model", "no-such-model")
    assert code == 2 and "no-such-model" in err
    code, text, err = cli("status", "--db", db)
    assert code == 0 and "Disk use:" in text and "models" in text and "prune-models" in text
    code, data, err = cli("status", "--db", db, "--json")
    assert data["disk"]["model_files"] == 1 and data["disk"]["total"] >= data["disk"]["database"]
    with pytest.raises(Exception, match="keep_models must be 0"):
        reopened = Store(db)
        try:
            usecases.train(reopened, DATASET, "popularity", keep_models=-2)
        finally:
            reopened.close()


def test_data_page_shows_disk_use_and_deletes_old_model_files(app_db: Path):
    store = Store(app_db)
    try:
        for _ in range(3):
            usecases.train(store, "demo", "popularity", keep_models=0)
        before = usecases.disk_usage(store)
    finally:
        store.close()
    at = app_test(app_db, "app_pages/data.py")
    assert not problems(at)
    assert any(e.label.startswith("Disk use:") for e in at.expander)
    at.number_input(key="disk_keep").set_value(1).run()
    at.button(key="disk_prune").click().run()
    assert not problems(at)
    assert any("Deleted" in s.value and "model files" in s.value for s in at.success)
    store = Store(app_db)
    try:
        after = usecases.disk_usage(store)
    finally:
        store.close()
    assert after.model_files < before.model_files and after.models < before.models


def test_train_page_offers_the_ease_memory_settings(app_db: Path):
    """EASE's new hyperparameters (mode, support, memory share) reach the Train page by
    themselves, from the model's description."""
    at = app_test(app_db, "app_pages/train.py")
    at.selectbox(key="tr_model").set_value("ease").run()
    assert not problems(at)
    mode = at.selectbox(key="tr_ease_mode")
    assert mode.value == "auto" and set(mode.options) == {"auto", "dense", "sparse"}
    assert at.number_input(key="tr_ease_support").value == 128
    assert at.number_input(key="tr_ease_memory_fraction").value == pytest.approx(0.25)
    assert at.number_input(key="tr_ease_dense_max_items").value == 20_000


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
