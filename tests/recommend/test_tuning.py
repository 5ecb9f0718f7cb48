"""Tuning on the validation split: bounded, defaults first, never reads the test split."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys.data.interactions import InteractionData
from recsys.models import get_spec
from recsys.recommend.tuning import SEARCH_SPACES, TuningError, tune_model

from ..test_models_helpers import tiny_data


@pytest.fixture(scope="module")
def data():
    return tiny_data()


def test_the_first_trial_is_the_defaults_and_the_best_is_the_best_trial(data):
    found = tune_model(data, "ease", trials=4, budget_seconds=60)
    assert 1 <= len(found.trials) <= 4
    assert found.trials[0].params == {"l2": 250.0}
    values = [t.value for t in found.trials if t.value is not None]
    assert found.best_value == max(values)
    best = next(t for t in found.trials if t.value == found.best_value)
    assert found.best_params == best.params
    record = found.record()
    assert record["metric"] == "val_ndcg@20" and len(record["trials"]) == len(found.trials)


def test_the_test_split_is_never_read(data):
    scrambled = InteractionData(data.dataset, data.protocol, data.user_ids, data.item_ids,
                                data.train, data.valid,
                                sp.csr_matrix(np.ones(data.test.shape, np.float32)),
                                vectors=data.vectors, present=data.present)
    a = tune_model(data, "itemknn", trials=3, budget_seconds=60)
    b = tune_model(scrambled, "itemknn", trials=3, budget_seconds=60)
    assert [t.value for t in a.trials] == [t.value for t in b.trials]
    assert a.best_params == b.best_params


def test_the_budget_and_stop_end_the_search_keeping_the_best_so_far(data):
    quick = tune_model(data, "als", trials=10, budget_seconds=1e-9)
    assert len(quick.trials) == 1 and quick.stopped_by == "budget"
    assert quick.best_params["factors"] == 128            # the defaults came first
    stopped = tune_model(data, "ease", trials=10, budget_seconds=60,
                         should_stop=lambda: True)
    assert len(stopped.trials) == 1 and stopped.stopped_by == "stopped"


def test_fixed_settings_are_kept_and_progress_is_reported(data):
    events = []
    found = tune_model(data, "ease", {"l2": 30.0}, trials=3, budget_seconds=60,
                       progress=events.append)
    assert found.best_params == {"l2": 30.0} and found.stopped_by == "no search space"
    assert [e.stage for e in events] == ["tune", "tune"]
    assert events[-1].metrics["best"] == found.best_value


@pytest.mark.parametrize("bad", [{"trials": 0}, {"budget_seconds": 0},
                                 {"budget_seconds": float("nan")}])
def test_bad_bounds_are_clear_errors(data, bad):
    with pytest.raises(TuningError):
        tune_model(data, "ease", **{"trials": 2, "budget_seconds": 5, **bad})


def test_every_search_space_names_real_settings_within_their_ranges():
    for model, space in SEARCH_SPACES.items():
        params = {p["name"]: p for p in get_spec(model).describe()["params"]}
        for name, spec in space.items():
            assert name in params, (model, name)
            p = params[name]
            values = spec[1] if spec[0] == "cat" else spec[1:3]
            if p["choices"]:
                assert set(values) <= set(p["choices"]), (model, name)
            else:
                assert all(p["low"] <= v <= p["high"] for v in values), (model, name)
