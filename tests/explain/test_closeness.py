""""Looks like" / "described like" only between items that are close (issue 24): a threshold
measured on the catalog, below which the sentence gives another reason."""

from __future__ import annotations

import numpy as np

from recsys.explain.closeness import close_thresholds
from recsys.explain.sentences import Cited, pick_sentence


def _clustered(n_types=12, per=30, dim=32, spread=0.35, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_types, dim))
    vecs = np.repeat(centres, per, axis=0) + spread * rng.normal(size=(n_types * per, dim))
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    types = np.repeat([f"type{i}" for i in range(n_types)], per)
    return vecs.astype(np.float32), types


def test_threshold_separates_same_type_pairs_from_other_pairs():
    vecs, types = _clustered()
    t = close_thresholds({"image": vecs}, types)["image"]
    same = vecs[types == "type0"] @ vecs[types == "type0"].T
    other = vecs[types == "type0"] @ vecs[types == "type1"].T
    assert np.median(other) < t < np.median(same[np.triu_indices(len(same), 1)])
    # without types: the quantile of random pairs
    q = close_thresholds({"image": vecs}, None)["image"]
    assert np.quantile(vecs @ vecs.T, 0.5) < q


def test_a_far_item_is_not_said_to_look_like_the_pick():
    thresholds = {"image": 0.8, "text": 0.7}
    far = [Cited("Grey Sneakers", "view", {"image": 0.4, "text": 0.3, "cf": 0.0})]
    s = pick_sentence({"image": 0.6, "text": 0.3, "cf": 0.1}, far,
                      attributes=[("colour", "Black")], thresholds=thresholds)
    assert "looks like" not in s and "described like" not in s
    assert "Black (colour)" in s
    s = pick_sentence({"image": 0.6, "cf": 0.4}, far, thresholds=thresholds)
    assert "looks like" not in s and "Grey Sneakers" not in s
    near = [Cited("Black Sunglasses", "purchase", {"image": 0.9, "text": 0.75, "cf": 0.0})]
    s = pick_sentence({"image": 0.6, "text": 0.4}, near, thresholds=thresholds)
    assert s.startswith("Looks like the *Black Sunglasses* you bought")
    assert s.endswith("it is described alike.")
    # the text is close, the photo is not: the text reason leads
    mixed = [Cited("Red Dress", "view", {"image": 0.2, "text": 0.9})]
    s = pick_sentence({"image": 0.6, "text": 0.4}, mixed, thresholds=thresholds)
    assert s.startswith("Described like the *Red Dress*") and "looks like" not in s
