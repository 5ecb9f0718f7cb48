"""Ratings as positives: `min_rating` keeps the rows rated at least N (MovieLens: 4 and 5
stars) with their explicit rating, and reports the others."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys.cli import main
from recsys.core.errors import RecsysError
from recsys.data.interactions import load_data
from recsys.data.interactions_import import import_interactions

from ..import_helpers import MOVIELENS_MISSING, movielens_dir


def _ratings_csv(tmp_path: Path) -> Path:
    rows = ["user,item,rating,timestamp"]
    for u in range(6):
        for i in range(8):
            rows.append(f"u{u},i{i},{1 + (u + i) % 5},2020-01-{1 + i:02d} 10:00:00")
    path = tmp_path / "ratings.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_rows_below_the_minimum_are_reported_and_the_rest_keep_their_rating(store, tmp_path):
    rep = import_interactions(store, _ratings_csv(tmp_path), dataset="stars", min_rating=4)
    expected = sum((1 + (u + i) % 5) >= 4 for u in range(6) for i in range(8))
    assert rep.imported == expected and rep.rows_read == 48
    assert rep.problems == {"rating below 4 (not a positive)": 48 - expected}
    data = load_data(store, "stars", "random")
    assert data.ratings is not None and set(data.ratings.values.tolist()) <= {4.0, 5.0}
    assert data.train.nnz + data.valid.nnz + data.test.nnz == expected


def test_a_minimum_rating_without_ratings_is_a_clear_error(store, tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("user,item\nu1,i1\nu2,i2\n")
    with pytest.raises(RecsysError, match="needs a rating column"):
        import_interactions(store, path, dataset="log", min_rating=4)


def test_the_command_takes_min_rating(store, tmp_path, capsys):
    path = str(store.path)
    store.close()
    code = main(["import-interactions", "--db", path, "--dataset", "stars",
                 str(_ratings_csv(tmp_path)), "--min-rating", "4"])
    out = capsys.readouterr().out
    assert code == 0 and "rating below 4 (not a positive)" in out


@pytest.mark.skipif(movielens_dir() is None, reason=MOVIELENS_MISSING)
def test_movielens_imports_through_the_generic_importers(store):
    from recsys.data.catalog_import import import_catalog

    folder = movielens_dir()
    import_catalog(store, folder / "items.csv", dataset="movielens")
    rep = import_interactions(store, folder / "ratings.csv", dataset="movielens", min_rating=4)
    assert rep.rows_read == 100_000 and rep.imported + rep.rows_skipped == 100_000
    assert rep.imported == 55_375
    data = load_data(store, "movielens", "random")
    assert data.n_items == 1682 and data.ratings is not None
