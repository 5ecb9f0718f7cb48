"""Narrow reads for pages that show a glance of a big catalog (Home): a seeded sample of items
with photos and items per value of a column, counted by the database; the Home page reads no
whole catalog."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from recsys.store import Store

from ..app_helpers import app_test, problems, watch_whole_catalog_reads


def test_sample_items_is_seeded_narrow_and_has_photos(demo_store: Store):
    every = demo_store.items("demo")
    first = demo_store.sample_items("demo", 12)
    again = demo_store.sample_items("demo", 12)
    assert len(first) == 12 and list(first["item_id"]) == list(again["item_id"])
    assert first["image_path"].notna().all()
    assert set(first["item_id"]) <= set(every["item_id"])
    assert list(first.columns) == list(every.columns)
    other = demo_store.sample_items("demo", 12, seed=8)
    assert list(other["item_id"]) != list(first["item_id"])
    assert len(demo_store.sample_items("demo", 10_000)) == every["image_path"].notna().sum()


def test_item_value_counts_match_the_catalog(demo_store: Store):
    every = demo_store.items("demo")
    counts = demo_store.item_value_counts("demo", "master_category")
    expected = every["master_category"].value_counts(dropna=False)
    assert counts.sum() == len(every)
    assert {k: int(v) for k, v in counts.items()} == \
        {(None if pd.isna(k) else k): int(v) for k, v in expected.items()}
    with pytest.raises(ValueError):
        demo_store.item_value_counts("demo", "no_such_column; DROP TABLE items")


def test_home_reads_no_whole_catalog(app_db: Path, monkeypatch):
    whole = watch_whole_catalog_reads(monkeypatch)
    at = app_test(app_db)                       # Home is the default page
    assert not problems(at) and not at.error
    assert "From the catalog" in [h.value for h in at.subheader]
    assert whole == []
    assert len(at.get("plotly_chart")) >= 1      # the catalog mix, counted by the database
