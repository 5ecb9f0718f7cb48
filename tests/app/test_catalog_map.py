"""The Catalog map page (AppTest): clusters, their purity and a shopper drawn on the map."""

from __future__ import annotations

from pathlib import Path

from ..app_helpers import app_test, html_of, problems


def test_catalog_map_draws_clusters_purity_and_a_shopper(app_db: Path):
    at = app_test(app_db, "app_pages/catalog_map.py")
    assert not problems(at), problems(at)
    labels = {m.label: m.value for m in at.metric}
    assert labels["Products"] == "64" and "Group purity" in labels
    assert "Agreement with categories (NMI)" in labels
    assert len(at.get("plotly_chart")) >= 1
    user = at.selectbox(key="map_user").options[1]
    at.selectbox(key="map_user").select(user).run()
    assert not problems(at), problems(at)
    assert "their top" in "".join(c.value for c in at.caption)
    at.button[0].click().run()                      # compare photo, text and fused
    assert not problems(at), problems(at)
    assert "group products by type best" in html_of(at)
