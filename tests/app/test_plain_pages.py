"""Plain words on the pages (issue 24): no encoder version on Home outside its details,
filters that say "Any" instead of a cut-off "Choose options"."""

from __future__ import annotations

from pathlib import Path

from ..app_helpers import app_test, problems


def test_home_keeps_the_encoder_version_in_details(app_db: Path):
    at = app_test(app_db, "app_pages/home.py")
    assert not problems(at), problems(at)
    assert not any("encoder:" in c.value for c in at.caption)
    details = [e for e in at.expander if e.label == "Technical details"]
    assert details and any("encoder" in c.value for c in details[0].caption)


def test_catalog_filters_say_any(app_db: Path):
    at = app_test(app_db, "app_pages/catalog.py")
    assert not problems(at), problems(at)
    assert at.multiselect(key="cat_f_gender").placeholder == "Any"


def test_datasets_table_shows_the_myntra_sample_right_after_the_one_click_load(
        app_db: Path, tmp_path: Path, monkeypatch):
    from ..usecases.test_data import fake_myntra

    fake_myntra(tmp_path / "shared" / "myntra_fashion")
    monkeypatch.setenv("RECSYS_SHARED_DATASETS", str(tmp_path / "shared"))
    at = app_test(app_db, "app_pages/data.py")
    at.button(key="myntra_one_click").click().run()
    assert not problems(at) and not at.error
    assert any("Loaded 'myntra'" in s.value for s in at.success)
    table = at.dataframe[0].value
    assert "myntra" in set(table["name"]), table
