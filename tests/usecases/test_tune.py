"""The tune use case and command: the chosen settings are stored with the run, and the
default model becomes the tuned model with the best validation score."""

from __future__ import annotations

import json

import pytest

from recsys import usecases
from recsys.cli import main

from ..test_models_helpers import DATASET, fill_store


@pytest.fixture
def filled(store):
    fill_store(store)
    return store


def test_tuning_stores_the_search_with_the_run(filled):
    result = usecases.tune(filled, DATASET, "ease", trials=3, budget_seconds=60)
    config = result.run.config
    assert config["tuning"]["best_params"] == result.tuning.best_params
    assert config["params"]["l2"] == result.tuning.best_params["l2"]
    assert len(config["tuning"]["trials"]) == len(result.tuning.trials) <= 3
    stored = usecases.list_runs(filled, DATASET)
    row = stored[stored["run_id"] == result.run.run_id].iloc[0]
    saved = row["config"] if isinstance(row["config"], dict) else json.loads(row["config"])
    assert saved["tuning"]["best_value"] == pytest.approx(result.tuning.best_value)


def test_the_default_model_is_the_best_tuned_one_on_validation(filled):
    before = usecases.default_model(filled, DATASET)
    assert usecases.tuned_choice(filled, DATASET) is None
    a = usecases.tune(filled, DATASET, "popularity", trials=1, budget_seconds=60)
    b = usecases.tune(filled, DATASET, "itemknn", trials=2, budget_seconds=60)
    runs = usecases.tuned_runs(filled, DATASET)
    assert [r["model"] for r in runs] == sorted(
        ["popularity", "itemknn"],
        key=lambda m: -(a if m == "popularity" else b).tuning.best_value)
    best = runs[0]["model"]
    assert usecases.default_model(filled, DATASET) == best
    assert before in ("late-fusion", "ease")


def test_the_tune_command_prints_every_trial(filled, capsys):
    path = str(filled.path)
    filled.close()
    code = main(["tune", "--db", path, "--model", "itemknn", "--trials", "2",
                 "--budget", "60"])
    out = capsys.readouterr().out
    assert code == 0 and "Tuned itemknn on" in out and "val NDCG@20" in out
    assert "neighbors" in out and "Best:" in out
