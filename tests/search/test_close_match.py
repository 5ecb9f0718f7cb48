"""'No close match': the catalog's threshold kept beside its index, and one query's check."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from recsys.encoders.match_threshold import DEFAULT_FALSE_ALARM
from recsys.search import close_match
from recsys.search.close_match import catalog_threshold, check_close_match, product_kinds
from recsys.search.item_index import ItemIndex
from recsys.search.vector_index import VectorIndex


def _unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


@pytest.fixture
def catalog():
    """Six kinds of product, 40 photos each, tight clusters around unrelated centres."""
    rng = np.random.default_rng(0)
    centres = _unit(rng.normal(size=(7, 32)))           # the 7th kind is not sold
    labels = np.repeat([f"kind{i}" for i in range(6)], 40)
    photos = _unit(centres[np.repeat(np.arange(6), 40)] + 0.12 * rng.normal(size=(240, 32)))
    ids = [f"it{i:03d}" for i in range(240)]
    index = VectorIndex({"image": 32})
    index.add(ids, {"image": photos}, {"image": np.ones(240, bool)})
    return ItemIndex(index, "enc", "v1"), ids, list(labels), centres, rng


def test_threshold_is_calibrated_once_and_kept_beside_the_index(catalog, tmp_path, monkeypatch):
    index, ids, labels, _, _ = catalog
    found = catalog_threshold(index, labels, tmp_path, "vectors-1")
    assert found is not None
    assert found.off_fire_rate > 0.8 and found.in_fire_rate <= 0.06
    saved = json.loads((tmp_path / close_match.FILE).read_text())
    assert saved["token"] == f"vectors-1:fa{DEFAULT_FALSE_ALARM:g}"        # the rate is in it
    assert saved["threshold"]["cutoff"] == found.threshold

    def must_not_calibrate(*a, **k):
        raise AssertionError("calibrated again although the vectors did not change")

    monkeypatch.setattr("recsys.encoders.match_decision.calibrate_match_model",
                        must_not_calibrate)
    again = catalog_threshold(index, labels, tmp_path, "vectors-1")
    assert again.threshold == found.threshold
    with pytest.raises(AssertionError):                 # new vectors: calibrated again
        catalog_threshold(index, labels, tmp_path, "vectors-2")


def test_catalog_without_kinds_or_too_small_has_no_threshold(catalog, tmp_path):
    index, ids, labels, _, _ = catalog
    assert catalog_threshold(index, None, tmp_path, "t") is None
    assert catalog_threshold(index, ["one kind"] * len(ids), tmp_path, "t") is None
    kinds = product_kinds(pd.DataFrame({"item_id": ids[::-1], "article_type": labels[::-1],
                                        "master_category": "Apparel"}), ids)
    assert kinds == labels                               # aligned with the index's items
    assert product_kinds(pd.DataFrame({"item_id": ids, "master_category": "Apparel"}),
                         ids) is None
    assert check_close_match(index, index.image[0], None) is None


def test_off_catalog_photo_is_no_close_match_and_catalog_photos_are(catalog, tmp_path):
    index, ids, labels, centres, rng = catalog
    threshold = catalog_threshold(index, labels, tmp_path, "t")
    own = check_close_match(index, index.image[3], threshold)        # a catalog photo
    assert own.close and own.score > threshold.threshold
    new = [check_close_match(index, _unit(centres[i % 6] + 0.12 * rng.normal(size=32)),
                             threshold).close for i in range(30)]      # new products, sold kinds
    off = [check_close_match(index, _unit(centres[6] + 0.12 * rng.normal(size=32)),
                             threshold) for _ in range(30)]           # a kind the shop lacks
    assert np.mean(new) >= 0.85
    assert np.mean([not o.close for o in off]) >= 0.9
    assert all(o.score < o.threshold for o in off if not o.close)
    # the search's own hits are reused when they came from an unfiltered photo-only search
    hits = index.search(image=index.image[3], k=10, image_weight=1.0)
    assert check_close_match(index, index.image[3], threshold, hits) == own
