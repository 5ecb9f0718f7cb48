"""Building a large index within memory (issue 23, item 5): a float16 index is staged as
float16 (half the copy), its vectors are streamed from DuckDB without a sort that would hold a
whole modality in DuckDB's memory, and the storage plan lets a 1M x 1280-d index with its IVF
part be built on a 24 GB box while staying resident in under 4 GB. Small synthetic stores."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.search.index_files import index_for_dataset
from recsys.search.memory_plan import (
    RESIDENT_TARGET_BYTES,
    index_build_bytes,
    plan_storage,
    resident_bytes,
)
from recsys.store import Store

from .test_vector_index import clustered, vector_catalog


def _shop(store: Store, n: int = 300):
    ids = vector_catalog(store, "shop", n)
    img = clustered(n, 8, 7)
    txt = clustered(n, 6, 11)
    store.upsert_embeddings("shop", "enc", "v1", "image", ids, img, [f"h{i}" for i in range(n)])
    store.upsert_embeddings("shop", "enc", "v1", "text", ids, txt, [f"t{i}" for i in range(n)])
    return ids, img, txt


def test_unordered_batches_stream_every_vector_once(store: Store):
    ids, img, _ = _shop(store)
    got = {}
    for batch_ids, vecs in store.embedding_batches("shop", "enc", "v1", "image",
                                                   batch_rows=64, ordered=False):
        for i, v in zip(batch_ids, vecs):
            assert i not in got
            got[i] = v
    assert sorted(got) == sorted(ids)
    position = {i: n for n, i in enumerate(ids)}
    for i, v in got.items():
        np.testing.assert_allclose(v, img[position[i]], rtol=1e-6)


@pytest.mark.parametrize("storage", ["float32", "float16"])
def test_a_built_index_holds_each_items_vectors(store: Store, storage):
    ids, img, txt = _shop(store)
    index = index_for_dataset(store, "shop", storage=storage, persist=False, plan=False)
    assert index.storage == storage
    tol = 1e-6 if storage == "float32" else 2e-3
    for m, mat in (("image", img), ("text", txt)):
        unit = mat / np.linalg.norm(mat, axis=1, keepdims=True)
        for n in (0, 17, 299):
            np.testing.assert_allclose(index.vector(ids[n], m), unit[n], atol=tol)


def test_a_million_items_of_1280_numbers_with_ivf_can_be_built_on_a_24_gb_box():
    """Half the free memory of a 24 GB box (20 GB free) is the index's budget: the plan keeps
    the IVF part (float16 rows, 8-bit codes) instead of refusing, and what stays resident is
    under 4 GB."""
    n, width = 1_000_000, 1280
    plan = plan_storage(n, width, "float32", True, available=20 * 10**9)
    assert (plan.storage, plan.ann) == ("float16", True)
    assert plan.needed_bytes <= plan.budget_bytes
    assert plan.resident_bytes <= RESIDENT_TARGET_BYTES
    # the load phase (a float16 staging copy + faiss's rows) and the IVF phase (rows + codes)
    # do not overlap: the estimate is the larger of the two, not their sum
    assert index_build_bytes(n, width, "float16", True) < \
        index_build_bytes(n, width, "float16", False) + 2.5 * n * width
    assert resident_bytes(n, width, "float16", True) <= 4 * 10**9
