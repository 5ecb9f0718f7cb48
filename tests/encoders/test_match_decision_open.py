"""Open-vocabulary evidence for "no close match" (issue 22): a photo that looks more like a
product type the catalog lacks than like any type it sells. A kind that is a near twin of a
sold kind in the photos is told apart by the names, where the neighbours cannot."""

from __future__ import annotations

import numpy as np

from recsys.encoders import match_decision as md
from recsys.encoders.product_types import catalog_equivalent, normalise_type


KINDS = ["Belts", "Caps", "Socks", "Ties", "Watches", "Wallets", "Track Pants"]


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _world(seed=0):
    rng = np.random.default_rng(seed)
    names = _unit(rng.normal(size=(7, 32)))
    kinds = np.repeat(np.arange(6), 40)                     # kinds 0-5 sold, 40 photos each
    photos = _unit(names[kinds] + 0.45 * _unit(rng.normal(size=(240, 32))))
    # kind 6, not sold: a near twin of kind 0 in the photos, its own name in the text space
    twin = _unit(0.9 * names[0] + 0.44 * names[6] + 0.45 * _unit(rng.normal(size=(60, 32))))
    labels = np.asarray([KINDS[k] for k in kinds], dtype=object)
    return rng, names, photos, labels, twin


def _texts(names, open_vocabulary=True):
    opn = ["belt", "cap", "sock", "tie", "watch", "wallet", "track-pants"] \
        if open_vocabulary else []                          # loosely the same names
    return md.TypeTexts(KINDS[:6], names[:6], open_names=opn,
                        open_vectors=names if open_vocabulary else None)


def test_open_gap_is_high_for_a_kind_the_catalog_lacks():
    _, names, photos, labels, twin = _world()
    texts = _texts(names)
    assert texts.feature_names == md.TEXT_FEATURES + md.OPEN_FEATURES
    sold = texts.open_features(photos[:40])                  # kind 0: its open name is sold
    lacking = texts.open_features(twin)
    assert lacking[:, 0].mean() > sold[:, 0].mean() + 0.1
    assert lacking[:, 1].mean() > 10 * sold[:, 1].mean()
    # kind 0 removed from the catalog: its own open name now counts as one the catalog lacks
    removed = texts.open_features(photos[:40], remove=["Belts"] * 40)
    assert removed[:, 0].mean() > 0 > sold[:, 0].mean()
    assert texts.features(photos[:3], ["Belts"] * 3).shape == (3, 6)
    assert texts.without_open().features(photos[:3], ["Belts"] * 3).shape == (3, 4)


def test_the_decision_with_open_names_catches_the_near_twin():
    rng, names, photos, labels, twin = _world(1)
    caught = {}
    for use_open in (False, True):
        texts = _texts(names, use_open)
        model = md.calibrate_match_model(photos, labels, texts=texts, sample=240)
        assert model.uses_open == use_open
        s, r = md.top_k(twin, photos, None)
        lab = np.where(r >= 0, labels[np.maximum(r, 0)], "")
        cent = md.TypeCentroids.of(photos, labels)
        close, _ = model.decide(s, lab, cent.sims(twin), cent.spread,
                                texts.features(twin, lab[:, 0]))
        caught[use_open] = float((~close).mean())
        new = _unit(names[rng.integers(0, 6, 60)] + 0.45 * _unit(rng.normal(size=(60, 32))))
        s, r = md.top_k(new, photos, None)
        lab = np.where(r >= 0, labels[np.maximum(r, 0)], "")
        close, _ = model.decide(s, lab, cent.sims(new), cent.spread,
                                texts.features(new, lab[:, 0]))
        assert (~close).mean() <= 0.15                      # sold kinds: rarely a false alarm
    assert caught[True] >= caught[False] + 0.1 and caught[True] >= 0.95


def test_saved_decision_of_the_old_feature_sets_still_reads():
    _, names, photos, labels, _ = _world(2)
    for texts in (None, _texts(names, False), _texts(names)):
        model = md.calibrate_match_model(photos, labels, texts=texts, sample=240)
        back = md.MatchModel.from_dict(model.to_dict())
        assert back.features == model.features and back.uses_open == model.uses_open


def test_type_names_compare_loosely():
    assert normalise_type("T-Shirts") == normalise_type("tshirt")
    assert normalise_type("Waist Pouch") == normalise_type("waist pouches")
    assert catalog_equivalent(["Track pants", "Shorts", "Laptop bags"],
                              ["Track Pants", "Lounge Shorts", "Laptop Bag"]) == \
        [True, False, True]
