"""Plain words (issue 24): the glossary and the A/B headline that reports clicks and
purchases, each with its significance."""

from __future__ import annotations

from types import SimpleNamespace as NS

from ui.words import GLOSSARY, ab_headline, label, plural, tooltip


def _comp(a, b, lift, p, significant, needed=None):
    return NS(a=NS(rate=a), b=NS(rate=b), lift=lift, p_value=p, significant=significant,
              needed_per_arm=needed)


def _result(clicks, buys):
    return NS(comparisons={"click": clicks, "purchase": buys}, alpha=0.05, population=600,
              shoppers={"A": 600, "B": 600})


def test_headline_reports_purchases_and_their_significance_too():
    text = ab_headline(_result(_comp(0.02, 0.0385, 0.926, 0.0001, True),
                               _comp(0.01, 0.0067, -0.33, 0.52, False, 4200)),
                       "Bestsellers", "Combined model")
    assert "**Combined model** got **92.6% more clicks**" in text
    assert "statistically significant" in text
    assert "**Bestsellers** got" in text and "more purchases" in text
    assert "**not significant** (p = 0.520" in text
    assert "whether it sells more is not" in text


def test_headline_without_any_significant_difference_says_so():
    text = ab_headline(_result(_comp(0.02, 0.021, 0.05, 0.4, False, 9000),
                               _comp(0.01, 0.01, None, 1.0, False)), "A model", "B model")
    assert "cannot tell the models apart" in text and "9,000 shoppers per arm" in text
    assert "No purchases in one of the arms" in text


def test_glossary_labels_and_tooltips():
    assert label("ndcg") == "ranking quality (NDCG)" and label("NMI").endswith("(NMI)")
    from ui.words import heading
    assert heading("nmi") == "Agreement with categories (NMI)"
    assert all(tooltip(t) and "\n" not in tooltip(t) for t in GLOSSARY)
    assert label("unknown-term") == "unknown-term" and tooltip("unknown-term") is None
    assert plural(1, "cart") == "1 cart" and plural(2, "cart") == "2 carts"


def test_partial_weeks_at_both_ends_are_found():
    import pandas as pd

    from ui.charts import events_over_time, partial_weeks, training_curves

    weekly = pd.DataFrame({"week": pd.to_datetime(["2024-12-30", "2025-01-06", "2025-01-13"]),
                           "event": "view", "events": [5, 40, 9],
                           "first_ts": pd.Timestamp("2025-01-01 10:00"),
                           "last_ts": pd.Timestamp("2025-01-15 08:00")})
    assert partial_weeks(weekly) == [(pd.Timestamp("2024-12-30"), 5),
                                     (pd.Timestamp("2025-01-13"), 3)]
    fig = events_over_time(weekly)
    assert sum("partial week" in (a.text or "") for a in fig.layout.annotations) == 2
    assert partial_weeks(weekly.drop(columns=["last_ts"])) == []
    curves = training_curves(pd.DataFrame({"epoch": [1, 2], "train_loss": [0.9, 0.5],
                                           "val_loss": [1.0, 0.7], "val_ndcg@20": [0.1, 0.2]}))
    axes = {t.yaxis for t in curves.data}
    assert axes == {"y", "y2"} and len(curves.data) == 3
    assert not any(getattr(curves.layout, "yaxis2").overlaying or "" for _ in [0])


def test_slices_caption_names_cold_start_items_only_with_their_panel():
    import pandas as pd

    from ui.charts import slice_bars

    rows = [{"model": m, "slice": s, "metric": "recall", "k": 20, "value": v, "users": 50}
            for m, v in (("ease", 0.2), ("popularity", 0.1)) for s in ("all", "short_history")]
    fig = slice_bars(pd.DataFrame(rows), "recall", 20)
    assert "cold-start" not in str(fig.layout.title.subtitle.text)
    rows += [{**rows[0], "slice": "cold_items"}]
    assert "cold-start" in str(slice_bars(pd.DataFrame(rows), "recall", 20).layout.title.subtitle.text)


def test_stop_wording_on_a_first_run_and_later():
    from ui.words import stop_words

    first = stop_words("Combined model", "running", 7, None)
    assert "being stopped" in first and "had not started" not in first
    assert "no earlier Combined model" in first and "stays in use" not in first
    assert "No run of it had been recorded yet" in stop_words("EASE", None, None, None)
    assert "No run of it" in stop_words("EASE", "finished", 3, 3)
    later = stop_words("EASE", "interrupted", 9, 4)
    assert "Run 9 is marked interrupted" in later and "earlier EASE (run 4) stays in use" in later
