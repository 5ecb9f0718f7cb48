"""A run is only used on the data it was trained on, and its files belong to its database. Stale
or foreign models used to give silently wrong numbers (a re-imported dataset scored by a model
that had seen its test items; two databases in one folder overwriting each other's model
files)."""

from __future__ import annotations

import numpy as np
import pytest

from recsys import usecases
from recsys.data.interactions import load_data
from recsys.recommend.training import (
    StaleModel,
    data_fingerprint,
    load_model,
    train_model,
)
from recsys.store import Store


def _log(path, rows):
    path.write_text("user,item,event\n" + "".join(f"{u},{i},view\n" for u, i in rows))
    return path


def _rows(seed=0, users=40, items=25, per_user=8):
    rng = np.random.default_rng(seed)
    return [(f"u{u:03d}", f"i{i:03d}") for u in range(users)
            for i in rng.choice(items, per_user, replace=False)]


def _metric(frame, metric="ndcg", k=10):
    sel = frame[(frame.slice == "all") & (frame.metric == metric) & (frame.k == k)]
    return float(sel["value"].iloc[0])


def test_fingerprint_changes_with_the_data_and_split(tmp_path):
    store = Store(tmp_path / "f.duckdb")
    rows = _rows()
    usecases.import_interactions(store, _log(tmp_path / "a.csv", rows), dataset="shop")
    a = data_fingerprint(load_data(store, "shop", "random", 0))
    assert a == data_fingerprint(load_data(store, "shop", "random", 0))       # deterministic
    assert a != data_fingerprint(load_data(store, "shop", "random", 1))       # other split
    usecases.import_interactions(store, _log(tmp_path / "b.csv", rows[:-1]), dataset="shop",
                                 replace=True)
    assert a != data_fingerprint(load_data(store, "shop", "random", 0))       # one row less
    store.close()


def test_evaluate_never_reuses_a_model_trained_on_other_data(tmp_path):
    store = Store(tmp_path / "e.duckdb")
    rows = _rows()
    usecases.import_interactions(store, _log(tmp_path / "a.csv", rows), dataset="shop")
    first = usecases.evaluate(store, "shop", ["ease"], ks=[10], protocol="random")
    again = usecases.evaluate(store, "shop", ["ease"], ks=[10], protocol="random")
    assert again["run_id"].iloc[0] == first["run_id"].iloc[0]     # same data: reused

    # re-import with one row dropped: the split changes, the old model saw new test items
    usecases.import_interactions(store, _log(tmp_path / "b.csv", rows[1:]), dataset="shop",
                                 replace=True)
    after = usecases.evaluate(store, "shop", ["ease"], ks=[10], protocol="random")
    fresh = usecases.evaluate(store, "shop", ["ease"], ks=[10], protocol="random",
                              retrain=True)
    assert after["run_id"].iloc[0] != first["run_id"].iloc[0]     # retrained, not reused
    assert _metric(after) == pytest.approx(_metric(fresh))         # same numbers as a retrain
    store.close()


def test_a_run_id_trained_on_other_data_is_refused_and_a_name_retrains(tmp_path):
    store = Store(tmp_path / "r.duckdb")
    rows = _rows()
    usecases.import_interactions(store, _log(tmp_path / "a.csv", rows), dataset="shop")
    run = usecases.train(store, "shop", "ease").run
    picks = usecases.recommend_for(store, "shop", "u001", str(run.run_id), k=5)
    assert picks.run_id == run.run_id
    usecases.import_interactions(store, _log(tmp_path / "b.csv", rows + [("u001", "i024")]),
                                 dataset="shop", replace=True)
    with pytest.raises(StaleModel, match="trained on different data"):
        usecases.recommend_for(store, "shop", "u001", str(run.run_id), k=5)
    with pytest.raises(StaleModel):
        usecases.recommend_for(store, "shop", "u001", "ease", k=5, train_if_missing=False)
    picks = usecases.recommend_for(store, "shop", "u001", "ease", k=5)
    assert picks.run_id != run.run_id                                 # retrained on the new data
    store.close()


def test_two_databases_in_one_folder_keep_their_own_model_files(tmp_path):
    rows_a, rows_b = _rows(0), _rows(1, users=30, items=20)
    stores = {name: Store(tmp_path / f"{name}.duckdb") for name in ("a", "b")}
    runs = {}
    for name, rows in (("a", rows_a), ("b", rows_b)):
        usecases.import_interactions(stores[name], _log(tmp_path / f"{name}.csv", rows),
                                     dataset="shop")
        runs[name] = train_model(stores[name], "shop", "ease", protocol="random")
    # both databases have run 1 of ease on dataset "shop": the files must still differ
    assert runs["a"].run_id == runs["b"].run_id == 1
    assert runs["a"].artifact_path != runs["b"].artifact_path
    for name in ("a", "b"):
        loaded = load_model(stores[name], "shop", "ease")
        assert len(loaded.model.item_ids) == len({i for _, i in (rows_a if name == "a"
                                                                 else rows_b)})
        stores[name].close()
