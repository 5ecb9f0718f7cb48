"""Training on demand: runs and curves in DuckDB, atomic saves, the last good model survives."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from recsys.core.progress import Progress
from recsys.models import UnknownModel
from recsys.recommend.training import ModelNotTrained, load_model, train_model

from ..test_models_helpers import DATASET, fast_params, fill_store


def test_training_records_the_run_its_epochs_and_a_loadable_model(tiny_store):
    events: list[Progress] = []
    run = train_model(tiny_store, DATASET, "bpr", fast_params("bpr"), progress=events.append)
    row = tiny_store.run(run.run_id)
    assert row["status"] == "finished" and row["kind"] == "model" and row["model"] == "bpr"
    config = json.loads(row["config"])
    assert config["params"]["dim"] == 16 and config["protocol"] == "random"
    assert config["params"]["seed"] == 0 and config["best_epoch"] == run.model.best_epoch
    epochs = tiny_store.run_epochs(run.run_id)
    assert len(epochs) == len(run.history) > 1
    assert epochs["train_loss"].notna().all() and epochs["val_loss"].notna().all()
    assert "val_ndcg@20" in json.loads(epochs["metrics"].iloc[0])
    epoch_events = [e for e in events if e.stage == "epoch"]
    assert epoch_events and {"epoch", "train_loss", "val_loss", "val_ndcg@20"} <= \
        set(epoch_events[0].metrics)
    assert events[-1].fraction == 1.0
    loaded = load_model(tiny_store, DATASET, "bpr")
    assert loaded.run_id == run.run_id
    np.testing.assert_array_equal(loaded.model.score([0, 1]), run.model.score([0, 1]))
    assert load_model(tiny_store, DATASET, run.run_id).run_id == run.run_id


def test_training_with_a_config_from_the_database_reproduces_the_model(tiny_store):
    first = train_model(tiny_store, DATASET, "early-fusion", fast_params("early-fusion"))
    params = json.loads(tiny_store.run(first.run_id)["config"])["params"]
    second = train_model(tiny_store, DATASET, "early-fusion", params)
    np.testing.assert_allclose(first.model.score([3]), second.model.score([3]), rtol=1e-5)


def test_interrupted_training_keeps_the_last_good_model(tiny_store):
    good = train_model(tiny_store, DATASET, "bpr", fast_params("bpr"))

    def interrupt(p: Progress) -> None:
        if p.stage == "epoch" and p.metrics["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_model(tiny_store, DATASET, "bpr", {**fast_params("bpr"), "seed": 5},
                    progress=interrupt)
    runs = tiny_store.runs(DATASET, kind="model")
    assert runs.iloc[0]["status"] == "interrupted" and pd.isna(runs.iloc[0]["artifact_path"])
    assert load_model(tiny_store, DATASET, "bpr").run_id == good.run_id


def test_failed_training_is_recorded_as_failed(tiny_store, monkeypatch):
    from recsys.models.baselines import ItemKNN

    def boom(self, data):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(ItemKNN, "_fit", boom)
    with pytest.raises(RuntimeError):
        train_model(tiny_store, DATASET, "itemknn")
    row = tiny_store.runs(DATASET, kind="model").iloc[0]
    assert row["status"] == "failed" and "disk on fire" in row["message"]
    with pytest.raises(ModelNotTrained, match="train --model itemknn"):
        load_model(tiny_store, DATASET, "itemknn")


def test_loading_filters_by_split_protocol(tiny_store):
    train_model(tiny_store, DATASET, "popularity", protocol="temporal")
    assert load_model(tiny_store, DATASET, "popularity", protocol="temporal").config[
        "protocol"] == "temporal"
    with pytest.raises(ModelNotTrained, match="random split"):
        load_model(tiny_store, DATASET, "popularity", protocol="random")


def test_unknown_model_and_missing_vectors_are_clear_errors(store):
    fill_store(store, with_vectors=False)
    with pytest.raises(UnknownModel, match="Known models"):
        train_model(store, DATASET, "nope")
    with pytest.raises(UnknownModel, match="python -m recsys embed"):
        train_model(store, DATASET, "attention-fusion")


def test_fusion_reports_its_preparation_and_can_be_stopped_there(tiny_store):
    """Late fusion first fits its sub-models (on Myntra EASE alone takes a minute or two): the
    bar says so, never moves back, ends with the early stop, and a stop during the preparation
    leaves the previous model in use."""
    events: list[Progress] = []
    params = {**fast_params("late-fusion"), "epochs": 30, "patience": 1}
    good = train_model(tiny_store, DATASET, "late-fusion", params, progress=events.append)
    stages = [e.stage for e in events]
    first_epoch = stages.index("epoch")
    prepared = [e.message for e in events[:first_epoch] if e.stage == "prepare"]
    assert prepared[0] == "preparing late-fusion"
    assert [m.split()[2] for m in prepared[1:]] == ["cf", "image", "text"]   # each scorer
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions)
    assert "early-stop" in stages and "stopped early after epoch" in \
        events[stages.index("early-stop")].message

    def stop(p: Progress) -> None:
        if p.stage == "prepare" and "text scorer" in p.message:
            raise KeyboardInterrupt            # what the app's Stop button amounts to

    with pytest.raises(KeyboardInterrupt):
        train_model(tiny_store, DATASET, "late-fusion", params, progress=stop)
    runs = tiny_store.runs(DATASET, kind="model")
    assert runs.iloc[0]["status"] == "interrupted"
    assert load_model(tiny_store, DATASET, "late-fusion").run_id == good.run_id
