"""The ItemIndex façade with its facet masks, and item vectors streamed into the requested
order."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.search.facets import FacetMasks, filter_items, rank_subset
from recsys.search.item_index import ItemIndex
from recsys.vectors.loading import ItemVectors

from .test_vector_index import clustered, vector_catalog


def test_item_index_facade_and_facet_masks(store):
    ids = vector_catalog(store, "shop", 120)
    img, txt = clustered(120, 8, 10), clustered(120, 8, 11)
    store.upsert_embeddings("shop", "enc", "v1", "image", ids, img, ids)
    store.upsert_embeddings("shop", "enc", "v1", "text", ids[:100], txt[:100], ids[:100])
    index = ItemIndex.from_store(store, "shop")
    assert index.spec == "enc@v1" and index.dim == 8 and len(index) == 120
    assert index.has_text.sum() == 100 and index.image.shape == (120, 8)
    # the façade keeps the old scores: mean of the query cosines, weighted per modality
    q1, q2 = img[0], txt[5]
    res = index.search(image=q1, text=q2, k=5, image_weight=0.3)
    pos = index.position(res.item_ids[0])
    mean = (q1 / np.linalg.norm(q1) + q2 / np.linalg.norm(q2)) / 2
    s_img = float(index.image[pos] @ mean)
    assert res.image_scores[0] == pytest.approx(s_img, abs=1e-5)
    sim = index.similar(ids[110], k=4, image_weight=0.5)   # no text: photo similarity only
    assert ids[110] not in sim.item_ids and np.isneginf(sim.text_scores).all()
    with pytest.raises(KeyError):
        index.similar("nope")
    # facet masks equal the pandas filter, and the filtered search keeps to them
    items = store.items("shop")
    facets = FacetMasks(items, index.item_ids)
    chosen = {"gender": ["Women"], "base_colour": ["Red", "Blue"]}
    mask = facets.mask(chosen, price=(10, 60))
    expect = filter_items(items, chosen, price=(10, 60))
    assert set(np.array(index.item_ids)[mask]) == set(expect["item_id"])
    by_mask = rank_subset(index, mask, image=q1, k=10)
    by_ids = rank_subset(index, expect["item_id"], image=q1, k=10)
    assert by_mask.item_ids == by_ids.item_ids and set(by_mask.item_ids) <= set(expect.item_id)
    # the old constructor from loaded matrices still works
    vecs = ItemVectors(ids, img, None, "enc", "v1", np.ones(120, bool), np.zeros(120, bool))
    assert ItemIndex(vecs).search(image=q1, k=1).item_ids == [ids[0]]


def test_load_item_vectors_streams_into_the_requested_order(store):
    from recsys.vectors.loading import load_item_vectors

    ids = vector_catalog(store, "shop", 30)
    img = clustered(30, 6, 13) * 3.0                      # stored unnormalised
    store.upsert_embeddings("shop", "enc", "v1", "image", ids[5:], img[5:], ids[5:])
    wanted = ["ghost"] + ids[::-1]                        # an unknown id, reversed order
    vec = load_item_vectors(store, "shop", item_ids=wanted)
    assert vec.encoder == "enc" and vec.text is None and vec.image.shape == (31, 6)
    assert not vec.has_image[0] and not vec.image[0].any()
    for row, item in enumerate(wanted[1:], start=1):
        k = ids.index(item)
        assert vec.has_image[row] == (k >= 5)
        if k >= 5:
            np.testing.assert_allclose(vec.image[row], img[k] / np.linalg.norm(img[k]),
                                       atol=1e-6)
