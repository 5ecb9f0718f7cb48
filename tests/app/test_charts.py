"""The Evaluate page's charts (`ui/charts.py`): axes from zero, one colour and one friendly name
per model, definitions on the charts, error bars, non-significant differences marked, donuts
that group small categories."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ui import charts


def _results() -> pd.DataFrame:
    rows = []
    spec = {"popularity": (0.05, None, np.nan), "ease": (0.30, None, np.nan),
            "content-image": (0.10, "ease", 1e-9), "late-fusion": (0.31, "ease", 0.4)}
    for model, (value, base, p) in spec.items():
        for metric, k in (("ndcg", 20), ("recall", 20), ("ndcg", 10), ("auc", None),
                          ("coverage", 20), ("diversity", 20), ("novelty", 20)):
            for slice_ in ("all", "short_history", "cold_items"):
                rows.append(dict(model=model, run_id=1, protocol="random", slice=slice_,
                                 metric=metric, k=k, value=value, users=100,
                                 ci_low=value * 0.9, ci_high=value * 1.1, std=np.nan,
                                 baseline=base, gain=np.nan, gain_low=np.nan,
                                 gain_high=np.nan, p_value=p))
    return pd.DataFrame(rows)


def test_bars_start_at_zero_with_friendly_names_error_bars_and_ns_marks():
    fig = charts.metric_bars(_results(), "ndcg", 20)
    bar = fig.data[0]
    assert fig.layout.xaxis.range[0] == 0 and fig.layout.xaxis.rangemode == "tozero"
    assert list(bar.y) == ["Bestsellers", "Content: photo", "Behaviour: EASE", "Combined: weighted blend"]
    assert bar.error_x.array is not None and len(bar.error_x.array) == 4
    shapes = dict(zip(bar.y, bar.marker.pattern.shape))
    assert shapes["Combined: weighted blend"] == "/" and shapes["Content: photo"] == ""   # p 0.4 vs 1e-9
    labels = dict(zip(fig.data[1].y, fig.data[1].text))
    assert "n.s." in labels["Combined: weighted blend"] and "baseline" in labels["Behaviour: EASE"]
    assert "a hit near the top counts more" in fig.layout.title.subtitle.text
    assert "Behaviour: EASE" in fig.layout.title.subtitle.text


def test_auc_chart_carries_its_definition():
    fig = charts.metric_bars(_results(), "auc", None)
    assert fig.layout.title.text == "<b>Accuracy (AUC)</b>"
    assert "ranked above one they did not" in fig.layout.title.subtitle.text


def test_every_chart_gives_a_model_the_same_colour():
    frame = _results()
    figures = [charts.metric_bars(frame, "recall", 20), charts.slice_bars(frame, "ndcg", 20),
               charts.beyond_accuracy(frame, 20), charts.metric_at_k(frame, "ndcg")]
    seen: dict[str, set] = {}
    for fig in figures:
        for trace in fig.data:
            if trace.type == "bar":
                for name, colour in zip(trace.y, trace.marker.color):
                    seen.setdefault(name, set()).add(colour)
            elif trace.type == "scatter" and trace.mode != "text":
                seen.setdefault(trace.name, set()).add(trace.line.color)
    assert set(seen) == {"Bestsellers", "Behaviour: EASE", "Content: photo", "Combined: weighted blend"}
    assert all(len(colours) == 1 for colours in seen.values()), seen
    assert len({c for cs in seen.values() for c in cs}) == 4


def test_slice_panels_keep_full_names_and_say_how_many_shoppers():
    fig = charts.slice_bars(_results(), "recall", 20)
    assert {a.text for a in fig.layout.annotations} >= {
        "All test shoppers (100 shoppers)", "Cold-start items only (100 shoppers)"}
    assert "Content: photo" in fig.data[0].y
    assert fig.layout.xaxis.range[0] == 0


def test_training_curve_axes_start_at_zero():
    epochs = pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [0.6932, 0.6930, 0.6925],
                           "val_loss": [0.6922, 0.6921, 0.6920],
                           "val_ndcg@20": [0.00096, 0.00101, 0.00103]})
    fig = charts.training_curves(epochs)
    assert fig.layout.yaxis.rangemode == "tozero" and fig.layout.yaxis2.rangemode == "tozero"


def test_donut_groups_small_categories_and_reserves_room_for_labels():
    items = pd.DataFrame({"master_category": list("AAAAABBBBCCCDDEFGHIJ")})
    fig = charts.category_mix(items)
    assert len(fig.data[0].labels) == 7 and "Other" in list(fig.data[0].labels)
    assert fig.data[0].automargin is True
