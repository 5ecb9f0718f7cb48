"""The catalog map use cases: a cached, named map with a shopper on it, and cluster purity of
photo, text and fused vectors."""

from __future__ import annotations

import numpy as np

from recsys import usecases
from recsys.store import Store


def test_catalog_map_is_cached_named_and_overlays_a_shopper(ready_store: Store):
    user = ready_store.users("demo")["user_id"].iloc[3]
    first = usecases.catalog_map(ready_store, "demo", method="tsne", clusters=5, user_id=user, k=5)
    assert len(first.points) == 64 and set(first.points["cluster"]) == set(range(5))
    assert {"x", "y", "cluster_name", "image_path"} <= set(first.points.columns)
    assert len(first.clusters) == 5 and first.clusters["name"].str.len().min() > 0
    assert 0 < first.purity <= 1 and not first.cached
    assert len(first.overlay["picks"]) == 5 and first.overlay["history"]
    again = usecases.catalog_map(ready_store, "demo", method="tsne", clusters=5)
    assert again.cached and again.seconds == 0.0
    np.testing.assert_array_equal(again.points[["x", "y"]], first.points[["x", "y"]])


def test_cluster_purity_compares_photo_text_and_fused_vectors(ready_store: Store):
    frame = usecases.cluster_purity(ready_store, "demo", clusters=[4, 8])
    assert set(frame["vectors"]) == {"fused", "image", "text"} and set(frame["k"]) == {4, 8}
    assert frame["purity"].between(0, 1).all() and frame["nmi"].between(0, 1).all()
