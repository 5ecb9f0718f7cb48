"""The Evaluate page (AppTest): ready at first start, led by a sentence, every tab renders, an
empty evaluation offers the first one."""

from __future__ import annotations

from pathlib import Path

from recsys.store import Store

from ..app_helpers import app_test, html_of, problems


def test_the_page_leads_with_a_sentence_and_every_tab_renders(app_db: Path):
    at = app_test(app_db, "app_pages/evaluate.py")
    assert not problems(at)
    html = html_of(at)
    assert "No evaluation" not in html and "the best single-signal model" in html
    assert ("Combined: weighted blend finds" in html
            or "Combined: weighted blend and Behaviour: EASE" in html)
    assert {m.label for m in at.metric} >= {
        "Best ranking quality (NDCG@20)", "Baseline's quality (NDCG@20)"}
    assert all(m.help for m in at.metric)           # each tile says what the number means
    assert len(at.get("plotly_chart")) == 6
    for tab in ("Metric at K", "Slices", "Diversity", "Training curves", "Table"):
        at.session_state["ev_tab"] = tab
        at.run()
        assert not problems(at), tab
    table = at.dataframe[0].value
    assert "Behaviour: EASE" in set(table["Model"]) and "ease" not in set(table["Model"])
    assert not table.isna().any().any()
    assert not table.astype(str).isin(["None", "nan", "NaN"]).any().any()


def test_an_empty_evaluation_offers_the_first_one(app_db: Path):
    store = Store(app_db)
    try:
        with store.transaction() as cur:     # as on a database evaluated before this feature
            cur.execute("DELETE FROM metrics")
            cur.execute("DELETE FROM rerank_metrics")
    finally:
        store.close()
    at = app_test(app_db, "app_pages/evaluate.py")
    assert any("No evaluation of this dataset yet" in i.value for i in at.info)
    at.button(key="ev_first").click().run()
    assert not problems(at) and not at.error
    assert len(at.get("plotly_chart")) == 6


def test_evaluate_page_shows_charts(app_db: Path):
    at = app_test(app_db, "app_pages/evaluate.py")
    at.multiselect(key="ev_models").set_value(["popularity", "itemknn"]).run()
    next(b for b in at.button if b.label == "Run evaluation").click().run()
    assert not problems(at) and not at.error
    assert len(at.get("plotly_chart")) >= 6
    assert any(t.label == "Table" for t in at.tabs)
