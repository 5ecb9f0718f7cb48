"""The encoder evaluations (on drawn products): the metric functions on known vectors, the
held-out-types evaluation and its calibration chosen without the test types, and the
phone-shot evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.encoders.evaluate import EvaluationError


def test_metric_functions_on_known_vectors():
    from recsys.encoders.evaluate_phone import exact_item_metrics
    from recsys.encoders.evaluate_unseen import draw_unseen_types, unseen_type_metrics

    gallery = np.eye(4, dtype=np.float32)
    queries = np.array([[1, 0.1, 0, 0], [1, 0.9, 0, 0]], np.float32)   # 2nd: own item 2nd
    m = exact_item_metrics(queries, gallery, np.array([0, 1]), np.array(list("aabb")), k=2)
    assert m["exact_recall@1"] == 0.5 and m["exact_recall@2"] == 1.0
    assert m["same_type_precision@2"] == 1.0

    labels = ["x", "x", "y", "z"]
    images = np.eye(3, dtype=np.float32)[[0, 0, 1, 2]]
    titles = images.copy()
    cls = {"x": [1, 0, 0], "y": [0, 1, 0], "z": [0, 0, 1]}
    mm = unseen_type_metrics(images, titles, labels, ["y", "z"], ["x", "y", "z"],
                             np.array([cls["y"], cls["z"]], np.float32),
                             np.array([cls["x"], cls["y"], cls["z"]], np.float32))
    assert mm["unseen_wf1"] == 1.0 and mm["unseen_vs_all_wf1"] == 1.0 and mm["seen_wf1"] == 1.0
    assert draw_unseen_types(["a"] * 3 + ["b"] * 3 + ["c"], 1, seed=0, min_photos=3) in \
        (["a"], ["b"])
    # one eligible type: the message says what the catalog lacks, not "between 1 and 0"
    with pytest.raises(EvaluationError, match="at least 2 article types") as err:
        draw_unseen_types(["a"] * 3 + ["c"], 1, seed=0, min_photos=3)
    assert "between 1 and" not in str(err.value)


def test_held_out_types_evaluation_aligns_without_them(shapes_store):
    from recsys.encoders.evaluate_unseen import evaluate_unseen_types

    before = len(shapes_store.encoders())
    ev = evaluate_unseen_types(shapes_store, "shapes", k=1, seed=0, min_photos=5,
                               config={"epochs": 1, "max_steps": 1, "batch_size": 8},
                               baseline=None)
    assert len(ev.unseen_types) == 1 and ev.n_train < 24
    assert ev.metrics["n_unseen_items"] == 8
    for key in ("unseen_wf1", "unseen_vs_all_wf1", "t2i_recall@10_unseen"):
        assert 0.0 <= ev.metrics[key] <= 1.0
    assert ev.metrics["unseen_wf1"] == 1.0      # one unseen name: always right among itself
    assert len(shapes_store.encoders()) == before     # nothing registered
    runs = shapes_store.runs("shapes", kind="evaluation")
    assert runs.iloc[0]["status"] == "finished"


def test_phone_shot_evaluation_on_the_drawn_catalog(shapes_store, frozen):
    from recsys.encoders.evaluate_phone import evaluate_phone_shots

    ev = evaluate_phone_shots(shapes_store, "shapes", frozen, n=4, seed=0)
    m = ev.metrics
    assert ev.n_gallery == 24 and 1 <= ev.n_queries <= 4
    assert m["studio_exact_recall@1"] == 1.0        # the photo itself is in the gallery
    for key in ("phone_exact_recall@10", "phone_crop_exact_recall@10",
                "phone_same_type_precision@10"):
        assert 0.0 <= m[key] <= 1.0
    assert ev.run_id is not None


def test_held_out_types_calibration_is_chosen_without_the_test_types(shapes_store):
    """The alignment inside `--unseen-types` picks its gamma on pseudo-unseen types drawn
    among its own training types: never the held-out test type; the test type is not among
    the seen types either, so calibration can only raise it."""
    from recsys.encoders.evaluate_unseen import evaluate_unseen_types

    ev = evaluate_unseen_types(shapes_store, "shapes", k=1, seed=0, min_photos=5,
                               config={"epochs": 1, "max_steps": 1, "batch_size": 8,
                                       "calibration_types": 1, "calibration_draws": 2,
                                       "calibration_min_photos": 3},
                               baseline=None, record=False)
    calib = ev.calibration
    test_type = ev.unseen_types[0]
    assert test_type not in calib["seen_types"] and len(calib["seen_types"]) == 2
    draws = calib["validation"]["pseudo_unseen_types"]
    assert len(draws) == 2
    for d in draws:
        assert d and set(d) <= set(calib["seen_types"])
    assert calib["gamma"] == pytest.approx(calib["gamma_cosine"] * calib["score_scale"])
    for key in ("seen_accuracy", "unseen_vs_all_accuracy", "harmonic_accuracy"):
        assert 0.0 <= ev.metrics[key] <= 1.0
