"""The A/B test page (AppTest): a simulated experiment reported in words."""

from __future__ import annotations

from pathlib import Path

from ..app_helpers import app_test, html_of, problems


def test_ab_test_page_reports_in_words(app_db: Path):
    at = app_test(app_db, "app_pages/ab_test.py")
    at.selectbox(key="ab_b").select("itemknn").run()
    at.slider(key="ab_visits").set_value(5).run()
    at.button[0].click().run()
    assert not problems(at), problems(at)
    page = html_of(at)
    assert "more clicks** per visit" in page and "shoppers)" in page
    assert len(at.metric) == 3
    verdict = [e.value for e in (*at.success, *at.warning, *at.info)]
    assert any("Offline" in v for v in verdict)


def test_ab_test_page_with_four_shoppers_or_fewer_uses_them_all(app_db: Path, monkeypatch):
    """A shop with 4 simulated shoppers or fewer: no slider whose minimum equals its maximum
    (Streamlit refuses that), the page says all of them take part."""
    from ui import resources

    real = resources.users

    def few(dataset):
        return real(dataset).head(3)

    monkeypatch.setattr(resources, "users", few)
    at = app_test(app_db, "app_pages/ab_test.py")
    assert not problems(at), problems(at)
    assert "All 3 shoppers take part." in [c.value for c in at.caption]
    assert not [s for s in at.slider if s.key == "ab_shoppers"]
