"""The Home page (AppTest): the dataset's sizes and its photos."""

from __future__ import annotations

from pathlib import Path

from ..app_helpers import app_test, html_of


def test_home_shows_sizes_and_photos(app_db: Path):
    at = app_test(app_db)
    values = {m.label: m.value for m in at.metric}
    # the default model, plus bestsellers, EASE and a content model of the first evaluation
    assert values["Products"] == "64" and values["Trained models"] == "4"
    assert html_of(at).count('class="rs-card"') == 12
    assert len(at.get("plotly_chart")) == 2          # catalog mix, weekly activity
