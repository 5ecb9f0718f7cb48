""""No close match" from the neighbours, not one score: the per-catalog logistic decision."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recsys.encoders import match_decision as md
from recsys.encoders.match_threshold import calibrate_match_threshold, match_score


def _unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _catalog(seed=0, per=60, d=32):
    """Four families of two related kinds each (flats and sandals), two families tight (photos
    nearly alike), two loose. The kind the shop does not sell is a third kind of a tight family:
    its photos' best scores are higher than a loose kind's own products get, so one cut-off on
    the scores cannot tell them apart; how far the query sits from the nearest kind's centre
    compared with that kind's own products can."""
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
    cent = md.TypeCentroids.of(photos, labels)
    s, r = md.top_k(queries, photos, None)
    close, _ = model.decide(s, labels[r], cent.sims(queries), cent.spread)
    return close, s


def test_decision_keeps_its_false_alarm_rate_and_catches_a_kind_the_shop_lacks():
    rng, centres, spread, photos, labels = _catalog()
    model = md.calibrate_match_model(photos, labels, false_alarm=0.05)
    assert model is not None and model.in_fire_rate == pytest.approx(0.05, abs=0.01)
    assert model.off_fire_rate > 0.3 and len(model.coef) == len(md.FEATURES)
    new_q, _ = _queries(rng, centres, spread, n=200)
    close_new, _ = _decide(model, photos, labels, new_q)
    assert (~close_new).mean() <= 0.1                    # fresh products of sold kinds
    other = _unit(rng.normal(size=(1, centres.shape[1])))    # a kind unlike any sold one
    off_q = _unit(other + 0.04 * rng.normal(size=(50, centres.shape[1])))
    close_off, _ = _decide(model, photos, labels, off_q)
    assert (~close_off).mean() >= 0.9


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


def test_centroids_leave_the_query_out_and_remove_missing_types_and_top_k_excludes():
    _, _, _, photos, labels = _catalog(seed=3)
    cent = md.TypeCentroids.of(photos, labels)
    assert cent.spread[cent.types.index("kind0")] > cent.spread[cent.types.index("kind9")]
    q = photos[:3]
    own = [labels[i] for i in range(3)]
    full, out = cent.sims(q), cent.sims(q, leave_out=own)
    j = cent.types.index(own[0])
    rest = photos[(labels == own[0]) & (np.arange(len(photos)) != 0)].sum(axis=0)
    assert out[0, j] == pytest.approx(float(q[0] @ rest / np.linalg.norm(rest)))
    assert out[0, j] < full[0, j]                                   # itself no longer helps
    assert np.isneginf(cent.sims(q, remove=own)[0, j])
    s, r = md.top_k(photos[:5], photos, lambda a, b: np.eye(5, len(photos), dtype=bool)[a:b])
    assert (np.diff(s, axis=1) <= 1e-9).all() and not (r == np.arange(5)[:, None]).any()
