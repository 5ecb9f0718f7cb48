"""The in-memory vector index: exact search against brute force with any modalities, filters and
exclusions inside the search, one result type (`Hits`) for every search, the approximate (IVF)
part's recall and incremental update, float16 storage, and storage and copies within the memory
budget."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.core import memory
from recsys.core.memory import (
    MemoryBudget,
)
from recsys.search.facets import rank_subset
from recsys.search.hits import Hits
from recsys.search.item_index import ItemIndex
from recsys.search.vector_index import VectorIndex, VectorIndexError


def clustered(n: int, d: int, seed: int = 0, centres: int = 40) -> np.ndarray:
    """Unit vectors around a few centres: neighbours are meaningful, as in real embeddings."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, d))
    x = c[rng.integers(0, centres, n)] + 0.6 * rng.standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def brute_force(vectors: dict[str, np.ndarray], present: dict[str, np.ndarray],
                queries: dict[str, np.ndarray], weights: dict[str, float], k: int,
                allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The documented fusion rule, item by item: weighted mean of the cosines over the queried
    modalities the item has (equal weights if those all have weight 0)."""
    n = len(next(iter(vectors.values())))
    scores = np.full(n, -np.inf)
    for i in range(n):
        mods = [m for m in queries if present[m][i]]
        if not mods:
            continue
        cos = {m: float(vectors[m][i] @ (queries[m] / np.linalg.norm(queries[m])))
               for m in mods}
        total = sum(weights[m] for m in mods)
        scores[i] = (sum(weights[m] * cos[m] for m in mods) / total if total > 0
                     else np.mean(list(cos.values())))
    if allowed is not None:
        scores[~allowed] = -np.inf
    order = np.argsort(-scores, kind="stable")[:k]
    order = order[np.isfinite(scores[order])]
    return order, scores[order]


@pytest.fixture
def three_modalities():
    """Items with image (16-d), text (16-d) and a user-brought 'feat' modality (5-d); some
    items lack text, one lacks everything but its features."""
    n = 300
    vectors = {"image": clustered(n, 16, 1), "text": clustered(n, 16, 2),
               "feat": clustered(n, 5, 3, centres=4)}
    present = {m: np.ones(n, dtype=bool) for m in vectors}
    present["text"][::7] = False
    present["image"][5] = present["text"][5] = False
    ids = [f"it{i:04d}" for i in range(n)]
    index = VectorIndex({m: v.shape[1] for m, v in vectors.items()})
    index.add(ids, vectors, present)
    return index, ids, vectors, present


def test_exact_search_matches_brute_force_with_any_modalities(three_modalities):
    index, ids, vectors, present = three_modalities
    assert index.modalities == ["image", "text", "feat"] and len(index) == 300
    rng = np.random.default_rng(0)
    for weights in ({"image": 0.5, "text": 0.5}, {"image": 1.0, "text": 0.0},
                    {"image": 0.2, "text": 0.3, "feat": 0.5}, {"feat": 1.0}):
        q = rng.standard_normal(16).astype(np.float32)
        queries = {m: (q if vectors[m].shape[1] == 16 else rng.standard_normal(5))
                   for m in weights}
        hits = index.search(queries, weights, k=12)
        order, scores = brute_force(vectors, present, queries, weights, 12)
        assert [ids[i] for i in order] == list(index.slot_ids[hits.slots])
        np.testing.assert_allclose(hits.scores, scores, atol=1e-5)
        for m in weights:      # per-modality cosines, -inf where the item lacks the modality
            expect = [float(vectors[m][i] @ queries[m] / np.linalg.norm(queries[m]))
                      if present[m][i] else -np.inf for i in order]
            np.testing.assert_allclose(hits.parts[m], expect, atol=1e-5)
    # the item with only features is reached by a features query alone
    assert "it0005" in set(index.slot_ids[index.search({"feat": vectors["feat"][5]},
                                                       {"feat": 1.0}, k=1).slots])


def test_filters_and_exclusions_are_applied_inside_the_search(three_modalities):
    index, ids, vectors, present = three_modalities
    allowed = np.zeros(len(index), dtype=bool)
    allowed[::10] = True
    q = {"image": vectors["image"][3], "text": vectors["image"][3]}
    w = {"image": 0.6, "text": 0.4}
    hits = index.search(q, w, k=8, allowed=allowed, exclude=["it0010"])
    order, _ = brute_force(vectors, present, q, w, 9, allowed)
    expect = [ids[i] for i in order if ids[i] != "it0010"][:8]
    assert list(index.slot_ids[hits.slots]) == expect
    assert index.search(q, w, k=5, allowed=np.zeros(len(index), bool)).slots.size == 0
    with pytest.raises(VectorIndexError, match="mask"):
        index.search(q, w, allowed=np.ones(3, dtype=bool))
    with pytest.raises(VectorIndexError, match="dimensions"):
        index.search({"image": np.ones(7)}, w)


def test_ann_recall_filters_and_incremental_update():
    n, d = 6000, 32
    img, txt = clustered(n, d, 4, centres=60), clustered(n, d, 5, centres=60)
    ids = [f"p{i}" for i in range(n)]
    index = VectorIndex({"image": d, "text": d}, ann_min_items=1000)
    index.add(ids, {"image": img, "text": txt})
    index.build_ann(target_recall=0.97)
    assert index.ann is not None and index.nprobe >= 1
    rng = np.random.default_rng(1)
    recalls = []
    for _ in range(30):
        q = img[rng.integers(n)] + 0.1 * rng.standard_normal(d).astype(np.float32)
        queries = {"image": q, "text": q}
        exact = index.search(queries, {"image": .5, "text": .5}, k=10, method="exact")
        approx = index.search(queries, {"image": .5, "text": .5}, k=10)
        assert approx.method == "ann" and exact.method == "exact"
        recalls.append(len(set(exact.slots) & set(approx.slots)) / 10)
    assert np.mean(recalls) >= 0.9
    # a filter keeping 30% of the items: every hit is allowed, recall stays high
    allowed = rng.random(n) < 0.3
    q = {"image": img[0], "text": img[0]}
    exact = index.search(q, {"image": .5, "text": .5}, k=10, allowed=allowed, method="exact")
    approx = index.search(q, {"image": .5, "text": .5}, k=10, allowed=allowed, method="ann")
    assert allowed[approx.slots].all() and len(set(exact.slots) & set(approx.slots)) >= 8
    # incremental: remove, re-add changed, add new; the IVF part follows
    index.remove(["p0", "p1"])
    index.add(["p1", "new"], {"image": img[[0, 0]], "text": txt[[0, 0]]})
    assert len(index) == n and index.ann.ntotal == n and index.flat.ntotal == n
    q = {"image": img[0], "text": txt[0]}
    got = index.slot_ids[index.search(q, {"image": .5, "text": .5}, k=3, method="ann").slots]
    assert {"p1", "new"} <= set(got) and "p0" not in set(got)


def test_fp16_storage_ranks_like_fp32():
    x = clustered(2000, 24, 6)
    ids = [str(i) for i in range(2000)]
    a, b = VectorIndex({"image": 24}), VectorIndex({"image": 24}, storage="float16")
    a.add(ids, {"image": x})
    b.add(ids, {"image": x})
    for i in range(10):
        ha = a.search({"image": x[i]}, k=10)
        hb = b.search({"image": x[i]}, k=10)
        assert len(set(ha.slots) & set(hb.slots)) >= 9
        np.testing.assert_allclose(ha.scores[:3], hb.scores[:3], atol=2e-3)
    with pytest.raises(VectorIndexError, match="storage"):
        VectorIndex({"image": 4}, storage="int3")


def test_every_search_answers_with_one_result_type(three_modalities):
    """The index, the photo/text façade and a filtered subset search all return `Hits`: slots
    and item ids that agree, one cosine per modality (-inf where an item has none), the method."""
    index, ids, vectors, present = three_modalities
    hits = index.search({"image": vectors["image"][7], "feat": vectors["feat"][7]},
                        {"image": 0.5, "feat": 0.5}, k=6)
    assert isinstance(hits, Hits) and len(hits) == 6 and hits.method == "exact"
    assert hits.item_ids == [str(i) for i in index.slot_ids[hits.slots]]
    assert set(hits.parts) == {"image", "text", "feat"}
    assert np.isneginf(hits.text_scores).all()                  # text was not queried
    facade = ItemIndex(index, "enc", "v1")
    photo = facade.search(image=vectors["image"][7], k=4, image_weight=1.0)
    similar = facade.similar(ids[7], k=4)
    subset = rank_subset(facade, ids[:50], image=vectors["image"][7], k=3)
    for result in (photo, similar, subset):
        assert isinstance(result, Hits) and result.item_ids == \
            [str(i) for i in index.slot_ids[result.slots]]
        assert result.image_scores.dtype == np.float32 and len(result.text_scores) == len(result)
    assert photo.item_ids[0] == ids[7] and ids[7] not in similar.item_ids
    assert set(subset.item_ids) <= set(ids[:50])
    records = photo.to_records()
    assert [r["item_id"] for r in records] == photo.item_ids
    has_text = dict(zip(ids, present["text"]))
    assert all((r["text_score"] is None) == (not has_text[r["item_id"]]) for r in records)
    none = index.search({"image": vectors["image"][0]}, k=0)
    assert isinstance(none, Hits) and len(none) == 0 and none.item_ids == []


def vector_catalog(store, dataset: str, n: int, seed: int = 0) -> list[str]:
    ids = [f"sku{i:05d}" for i in range(n)]
    rng = np.random.default_rng(seed)
    items = pd.DataFrame({"dataset": dataset, "item_id": ids,
                          "gender": rng.choice(["Men", "Women"], n),
                          "base_colour": rng.choice(["Black", "Red", "Blue"], n),
                          "price": rng.uniform(5, 100, n).round(2),
                          "content_hash": [f"h{i}" for i in range(n)]})
    with store.transaction() as cur:
        store.upsert_dataset(cur, dataset, "catalog")
        cur.register("_items", items)
        cur.execute("INSERT INTO items BY NAME SELECT * FROM _items")
        cur.unregister("_items")
    return ids


# -- the memory budget ----------------------------------------------------------------------------
def test_index_storage_follows_the_budget():
    from recsys.search.memory_plan import index_build_bytes, plan_storage
    from recsys.search.vector_index import VectorIndexError

    n, width = 200_000, 512
    need32 = index_build_bytes(n, width, "float32", True)
    roomy = plan_storage(n, width, "float32", True, available=4 * need32)
    assert (roomy.storage, roomy.ann) == ("float32", True) and "fits" in roomy.reason
    half = index_build_bytes(n, width, "float16", True)
    tight = plan_storage(n, width, "float32", True, available=int(2.05 * half))
    assert (tight.storage, tight.ann) == ("float16", True)
    assert "built as float16" in tight.reason
    flat = index_build_bytes(n, width, "float16", False)
    # the IVF part is built after the load's staging copy is freed: no higher peak in float16
    assert flat == half
    assert index_build_bytes(n, width, "float32", False) <= need32
    with pytest.raises(VectorIndexError, match=r"200,000 products \(512 numbers each\) needs "
                                               r"about [\d.]+ GB"):
        plan_storage(n, width, "float32", True, available=flat)


def test_search_index_is_built_as_float16_when_float32_would_not_fit(ready_demo_db: Path,
                                                                      tmp_path: Path,
                                                                      monkeypatch):
    import shutil

    from recsys.search.item_index import ItemIndex
    from recsys.search.memory_plan import index_build_bytes
    from recsys.store import Store

    path = tmp_path / "recsys.duckdb"
    shutil.copy(ready_demo_db, path)
    store = Store(path)
    try:
        sets = store.embedding_sets("demo")
        width = int(sum(store.embedding_dims("demo", sets["encoder"].iloc[0],
                                             sets["version"].iloc[0]).values()))
        n = int(sets["n_items"].max())
        # room for a float16 build, not for a float32 one (50% of the budget may be used)
        room = (index_build_bytes(n, width, "float32", False)
                + index_build_bytes(n, width, "float16", False))
        monkeypatch.setattr(memory, "memory_budget",
                            lambda: MemoryBudget(room, "cgroup", {"cgroup": room}))
        index = ItemIndex.from_store(store, "demo", storage="float32")
        assert index.vectors.storage == "float16"
        assert "built as float16" in index.vectors.meta["memory_plan"]
        assert len(index) == n
        hits = index.vectors.search({"image": index.vectors.rows(np.array([0]))[
            0, :index.vectors.dims["image"]]}, k=3)
        assert len(hits.slots) == 3
        # no room at all: a clear refusal, not an allocation error
        monkeypatch.setattr(memory, "memory_budget",
                            lambda: MemoryBudget(1000, "RLIMIT_AS", {"RLIMIT_AS": 1000}))
        from recsys.search.index_files import index_for_dataset
        from recsys.search.vector_index import VectorIndexError

        with pytest.raises(VectorIndexError, match="Free memory"):
            index_for_dataset(store, "demo", storage="float16", persist=False)
    finally:
        store.close()


def test_matrix_copies_respect_the_budget(monkeypatch):
    from recsys.search.vector_index import VectorIndex, VectorIndexError

    index = VectorIndex({"image": 4})
    index.add(["a", "b"], {"image": np.eye(2, 4, dtype=np.float32)})
    assert index.matrix("image").shape == (2, 4)
    tiny = MemoryBudget(16, "cgroup", {"cgroup": 16})
    monkeypatch.setattr(memory, "memory_budget", lambda: tiny)
    with pytest.raises(VectorIndexError, match="needs 0.0 GB, over half the"):
        index.matrix("image")
