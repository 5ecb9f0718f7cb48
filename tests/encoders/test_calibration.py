"""Calibrated stacking for unseen product types, and pseudo-unseen types drawn from the training
types only."""

from __future__ import annotations

import numpy as np


def test_calibrated_stacking_names_an_unseen_type_the_seen_bias_took():
    """Seen types A, B were aligned on, C was not: a photo of C scores A a little higher
    (the seen bias). The gamma chosen on the validation scores flips it to C and keeps the
    seen photos right; without the calibration it stays A."""
    from recsys.encoders.calibration import (
        TypeCalibration,
        ValidationScores,
        choose_gamma,
        name_types,
    )

    classes = ["A", "B", "C"]
    seen = np.array([True, True, False])
    # validation photos: two seen (A, B: own score 0.9, C 0.3), two pseudo-unseen C photos
    # that the seen bias pushes toward A (0.6 vs 0.5)
    val = ValidationScores(np.array([[0.9, 0.2, 0.3], [0.2, 0.9, 0.3],
                                     [0.6, 0.1, 0.5], [0.55, 0.1, 0.5]]),
                           np.array([0, 1, 2, 2]), seen, np.array([False, False, True, True]))
    gamma, table = choose_gamma([val])
    assert table[0]["gamma"] == 0.0 and table[0]["unseen_accuracy"] == 0.0
    assert 0.1 < gamma < 0.6          # the smallest gamma that flips both C photos, no more
    assert next(r for r in table if r["gamma"] == gamma)["harmonic_mean"] == 1.0

    calib = TypeCalibration(seen_types=["A", "B"], gamma=gamma)
    vecs = np.eye(3, dtype=np.float32)
    photo = np.array([[0.6, 0.1, 0.5], [0.9, 0.2, 0.3]], np.float32)    # a C photo, an A photo
    assert list(name_types(photo, classes, vecs)) == ["A", "A"]
    assert list(name_types(photo, classes, vecs, calib)) == ["C", "A"]
    # every type seen (the in-distribution case): the same constant everywhere, no change
    everything = TypeCalibration(seen_types=classes, gamma=gamma)
    assert list(name_types(photo, classes, vecs, everything)) == ["A", "A"]
    # names match case- and space-insensitively; unknown types count as unseen
    assert list(calib.seen_mask(["a", " B ", "Z"])) == [True, True, False]


def test_pseudo_unseen_types_come_from_the_training_types_only():
    from recsys.encoders.calibration import draw_pseudo_unseen

    labels = ["a"] * 5 + ["b"] * 5 + ["c"] * 5 + ["d"] * 5 + ["tiny"] * 2
    draws = draw_pseudo_unseen(labels, 2, draws=3, seed=0, min_photos=5)
    assert len(draws) == 3
    for d in draws:
        assert len(d) == 2 and set(d) <= {"a", "b", "c", "d"}
    assert draws == draw_pseudo_unseen(labels, 2, draws=3, seed=0, min_photos=5)
    assert len(draw_pseudo_unseen(labels, 10, 1, 0, 5)[0]) == 2      # at most half held out
    assert draw_pseudo_unseen(["a"] * 5, 1, 1, 0, 5) == []             # nothing to hold out
    kept = draw_pseudo_unseen(labels, 2, draws=5, seed=1, min_photos=5, exclude=["A", "b"])
    assert len(kept) == 5
    assert all(len(d) == 1 and set(d) <= {"c", "d"} for d in kept)   # excluded: never drawn
