""""No close match" with the encoder's confidence in the photo's type (the catalog's type names
through the text tower) and a cut-off taken on photos the encoder never trained on."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recsys.encoders import match_decision as md
from recsys.encoders.evaluate_nomatch import nomatch_rates


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _near(rng, centres, kinds, spread):
    noise = _unit(rng.normal(size=(len(kinds), centres.shape[1])))
    return _unit(centres[kinds] + spread * noise).astype(np.float32)


def _shop(seed=0, d=32, sold=8, per_train=50, per_val=10):
    """`sold` kinds with their names' text vectors; the photos the encoder trained on sit tight
    around their kind's name (it is over-confident on them), its validation photos (and new
    products) looser; kind `sold` is not in the catalog."""
    rng = np.random.default_rng(seed)
    names = _unit(rng.normal(size=(sold + 1, d)))
    train_k = np.repeat(np.arange(sold), per_train)
    val_k = np.repeat(np.arange(sold), per_val)
    photos = np.vstack([_near(rng, names, train_k, 0.3), _near(rng, names, val_k, 1.0)])
    labels = np.array([f"kind{k}" for k in np.r_[train_k, val_k]], dtype=object)
    validation = np.r_[np.zeros(len(train_k), bool), np.ones(len(val_k), bool)]
    texts = md.TypeTexts([f"kind{k}" for k in range(sold)], names[:sold])
    return rng, names, photos, labels, validation, texts


def _fire(model, photos, labels, texts, queries):
    cent = md.TypeCentroids.of(photos, labels)
    s, r = md.top_k(queries, photos, None)
    text = texts.features(queries, labels[r[:, 0]]) if model.uses_text else None
    close, _ = model.decide(s, labels[r], cent.sims(queries), cent.spread, text)
    return (~close).mean()


def test_type_confidence_is_a_softmax_over_the_catalogs_types_without_the_removed_one():
    texts = md.TypeTexts(["a", "b", "c"], np.eye(3, 4), scale=1.0)
    q = np.array([[1.0, 0.0, 0.0, 0.0]])
    p = np.exp([1.0, 0.0, 0.0]) / np.exp([1.0, 0.0, 0.0]).sum()
    assert texts.features(q, ["a"])[0] == pytest.approx([p[0], p[0] - p[1], 1.0, 1.0])
    assert texts.features(q, ["b"])[0, 2] == 0.0           # named "a", its best photo is a "b"
    # "a" not in the catalog: b or c, unsure, and the best type-name cosine is 0
    unsure = texts.features(q, ["b"], remove=["a"])[0]
    assert unsure[[0, 1, 3]] == pytest.approx([0.5, 0.0, 0.0])
    with pytest.raises(ValueError):
        md.TypeTexts(["a"], np.eye(2, 4))


def test_cutoff_on_validation_photos_keeps_the_promise_on_new_products():
    rng, names, photos, labels, validation, texts = _shop()
    on_train = md.calibrate_match_model(photos, labels, texts=texts)
    on_val = md.calibrate_match_model(photos, labels, texts=texts, validation=validation)
    assert on_train.uses_text and len(on_val.coef) == len(md.FEATURES + md.TEXT_FEATURES)
    assert on_train.cutoff_on == "calibration" and on_val.cutoff_on == "validation"
    assert on_val.n_cutoff == validation.sum()
    new = _near(rng, names, rng.integers(0, 8, 400), 1.0)        # new products of sold kinds
    off = _near(rng, names, np.full(200, 8), 1.0)                # a kind the shop lacks
    # trained photos flatter the encoder: the cut-off taken on them flags many new products
    assert _fire(on_train, photos, labels, texts, new) > 0.2
    assert _fire(on_val, photos, labels, texts, new) <= 0.12
    assert _fire(on_val, photos, labels, texts, off) >= 0.8
    # too few validation photos: the cut-off falls back to the calibration queries
    few = validation & (np.cumsum(validation) <= md.MIN_VALIDATION - 1)
    assert md.calibrate_match_model(photos, labels, texts=texts,
                                    validation=few).cutoff_on == "calibration"


def test_text_model_round_trips_and_refuses_to_decide_without_type_names():
    _, _, photos, labels, validation, texts = _shop(seed=1)
    model = md.calibrate_match_model(photos, labels, texts=texts, validation=validation)
    again = md.MatchModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert again == model and again.uses_text
    s, r = md.top_k(photos[:2], photos, None)
    cent = md.TypeCentroids.of(photos, labels)
    with pytest.raises(ValueError, match="type-name"):
        model.decide(s, labels[r], cent.sims(photos[:2]), cent.spread)


def test_evaluation_reports_the_text_decision_beside_the_neighbours_one():
    rng, names, photos, labels, validation, texts = _shop(seed=2)
    heldout = np.zeros(len(photos), bool)
    heldout[rng.choice(len(photos), 60, replace=False)] = True
    metrics, _ = nomatch_rates(photos, labels, heldout, texts=texts,
                               validation=validation & ~heldout)
    assert metrics["model:uses_type_names"] == 1.0
    assert metrics["model:cutoff_on_validation"] == 1.0
    for key in ("off_catalog", "catalog_new_product", "catalog_photo"):
        assert 0.0 <= metrics[f"neighbours:{key}"] <= 1.0
    assert metrics["model:catalog_photo"] == 0.0
