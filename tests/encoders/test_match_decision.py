""""No close match" from the neighbours, not one score: the per-catalog logistic decision."""

from __future__ import annotations

import json

import numpy as np

from recsys.encoders import match_decision as md
from recsys.encoders.match_threshold import calibrate_match_threshold, match_score


def _unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _catalog(seed=0, per=60, d=32):
    """Four families of two related kinds each (flats and sandals), two families tight (photos
    nearly alike), two loose. The kind the shop does not sell is a third kind of a tight family:
    its photos' best scores are higher than a loose kind's own products get, so one cut-off on
    the scores cannot tell them apart; how far the query sits from its neighbours compared with
    how close they sit to each other can."""
    rng = np.random.default_rng(seed)
    family = _unit(rng.normal(size=(4, d)))
    centres = _unit(family[np.arange(12) // 3] + 0.6 * _unit(rng.normal(size=(12, d))))
    spread = np.where(np.arange(12) // 3 < 2, 0.04, 0.45)
    sold = np.array([k for k in range(12) if k % 3 != 2])   # the third of each family: not sold
    kinds = np.repeat(sold, per)
    photos = _unit(centres[kinds] + spread[kinds, None] * rng.normal(size=(len(kinds), d)))
    labels = np.array([f"kind{k}" for k in kinds], dtype=object)
    return rng, centres, spread, photos, labels


def _queries(rng, centres, spread, n=80):
    d = centres.shape[1]
    sold = np.array([k for k in range(12) if k % 3 != 2])
    new = rng.choice(sold, n)                            # new products of kinds the shop sells
    new_q = _unit(centres[new] + spread[new, None] * rng.normal(size=(n, d)))
    off = rng.choice([2, 5], n)                          # off-catalog, of a tight family
    off_q = _unit(centres[off] + spread[off, None] * rng.normal(size=(n, d)))
    return new_q, off_q


def _decide(model, photos, labels, queries):
    density = md.type_density(photos, labels)
    s, r = md.top_k(queries, photos, None)
    close, _ = model.decide(s, labels[r], density[r])
    return close, s


def test_neighbours_catch_off_catalog_queries_one_score_misses():
    rng, centres, spread, photos, labels = _catalog()
    model = md.calibrate_match_model(photos, labels, false_alarm=0.05)
    single = calibrate_match_threshold(photos, labels, false_alarm=0.05)
    assert model is not None and model.in_fire_rate <= 0.06
    new_q, off_q = _queries(rng, centres, spread)
    close_new, _ = _decide(model, photos, labels, new_q)
    close_off, s_off = _decide(model, photos, labels, off_q)
    old_off = np.array([match_score(row) < single.threshold for row in s_off])
    assert old_off.mean() <= 0.1                        # the single cut-off misses them
    assert (~close_off).mean() >= 0.4                   # the model catches many
    assert (~close_new).mean() <= 0.1                   # and rarely blames a sold kind


def test_catalog_photo_itself_always_matches_and_small_catalogs_are_not_calibrated():
    _, _, _, photos, labels = _catalog(seed=1)
    model = md.calibrate_match_model(photos, labels)
    close, _ = _decide(model, photos, labels, photos[:20])
    assert close.all()
    assert md.calibrate_match_model(photos[:10], labels[:10]) is None
    assert md.calibrate_match_model(photos, ["one kind"] * len(photos)) is None


def test_model_round_trips_through_json_and_rejects_other_kinds():
    _, _, _, photos, labels = _catalog(seed=2)
    model = md.calibrate_match_model(photos, labels)
    again = md.MatchModel.from_dict(json.loads(json.dumps(model.to_dict())))
    assert again == model
    assert md.MatchModel.from_dict({"threshold": 0.5}) is None      # a plain threshold's file
    assert md.MatchModel.from_dict(None) is None


def test_type_density_ignores_other_types_and_top_k_sorts_and_excludes():
    _, _, _, photos, labels = _catalog(seed=3)
    full = md.type_density(photos, labels)
    keep = labels != "kind0"
    assert np.allclose(md.type_density(photos[keep], labels[keep]), full[keep])
    assert full[labels == "kind0"].mean() > full[labels == "kind9"].mean()   # tight vs loose
    s, r = md.top_k(photos[:5], photos, lambda a, b: np.eye(5, len(photos), dtype=bool)[a:b])
    assert (np.diff(s, axis=1) <= 1e-9).all() and not (r == np.arange(5)[:, None]).any()
