"""Modalities as data, on a catalog without photos from import to evaluation: a text modality and
the text models that apply, fusion with the defaults, modalities given on the command line,
explanations per modality, and the rating model's MAE and RMSE beside the ranking."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys import usecases
from recsys.models import UnknownModel
from recsys.store import Store

CATS = ("shirt", "shoe", "bag", "watch")
COLOURS = ("red", "blue", "black", "green")


def write_text_catalog(folder: Path, n_items: int = 48, n_users: int = 60, seed: int = 0
                       ) -> tuple[Path, Path]:
    """A catalog of titles and categories (no photo column) and purchases that follow the
    category: each shopper buys within one category."""
    rng = np.random.default_rng(seed)
    items = [{"item_id": f"p{i}", "title": f"{COLOURS[(i // 4) % 4]} {CATS[i % 4]} no {i}",
              "category": CATS[i % 4]} for i in range(n_items)]
    pd.DataFrame(items).to_csv(folder / "catalog.csv", index=False)
    events = []
    for u in range(n_users):
        mine = [r["item_id"] for r in items if r["category"] == CATS[u % 4]]
        for n, item in enumerate(rng.choice(mine, 7, replace=False)):
            events.append({"user_id": f"u{u}", "item_id": item, "event": "purchase",
                           "timestamp": 1_700_000_000 + 3600 * n + u,
                           "rating": int(rng.integers(3, 6))})
    pd.DataFrame(events).to_csv(folder / "events.csv", index=False)
    return folder / "catalog.csv", folder / "events.csv"


@pytest.fixture(scope="module")
def text_db(tmp_path_factory, frozen) -> Path:
    """A text-only catalog imported, with shoppers, embedded with the defaults (built once;
    the encoder `embed` asks for is the session's already loaded `frozen` one)."""
    import recsys.vectors.embed as embedding

    folder = tmp_path_factory.mktemp("textonly")
    catalog, events = write_text_catalog(folder)
    path = folder / "text.duckdb"
    store = Store(path)
    asked = []

    def get_encoder(spec, *args):
        asked.append(spec)
        return frozen

    try:
        assert not usecases.import_catalog(store, catalog, dataset="shop").refused
        assert not usecases.import_interactions(store, events, dataset="shop").refused
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(embedding, "get_encoder", get_encoder)
            rep = usecases.embed(store, "shop")
        assert asked == ["frozen"]                 # no photos: the pretrained text tower
        assert rep.embedded == {"image": 0, "text": 48}
        assert rep.spec.startswith("frozen@")
    finally:
        store.close()
    return path


@pytest.fixture
def text_store(text_db: Path, tmp_path: Path):
    path = tmp_path / "text.duckdb"
    shutil.copy(text_db, path)
    store = Store(path)
    yield store
    store.close()


def test_text_only_catalog_has_a_text_modality_and_the_text_models_apply(text_store):
    mods = usecases.list_modalities(text_store, "shop")
    assert [m["modality"] for m in mods] == ["text"] and mods[0]["items"] == 48
    applies = {m["name"]: m["applies"] for m in usecases.list_models(text_store, "shop")}
    assert applies["content-text"] and applies["late-fusion"] and applies["content-knn"]
    assert not applies["content-image"]
    assert applies["rating-mf"]                      # the log carried a rating column
    assert usecases.default_model(text_store, "shop") == usecases.DEFAULT_MODEL


def test_text_only_catalog_trains_and_evaluates_fusion_with_the_defaults(text_store):
    frame = usecases.evaluate(text_store, "shop", ["ease", "content-text", "late-fusion",
                                                   "attention-fusion"], ks=(10,))
    ndcg = frame[(frame.slice == "all") & (frame.metric == "ndcg")].set_index("model")["value"]
    assert set(ndcg.index) == {"ease", "content-text", "late-fusion", "attention-fusion"}
    assert (ndcg > 0.05).all()
    runs = usecases.list_runs(text_store, "shop")
    config = json.loads(runs[runs.model == "late-fusion"]["config"].iloc[0])
    assert config["params"]["modalities"] == ["text"]     # resolved, recorded as fitted
    assert config["sources"]["text"].startswith("frozen@")


def test_modalities_given_on_the_command_line_decide_what_a_model_needs(text_store):
    # the signal check reads the given settings: content-knn on text works on this catalog
    run = usecases.train(text_store, "shop", "content-knn", {"modalities": "text"}).run
    assert run.model.config.modalities == ("text",)
    assert run.model.requires == frozenset({"text"})
    with pytest.raises(UnknownModel) as err:
        usecases.train(text_store, "shop", "content-knn", {"modalities": "image"})
    message = str(err.value)
    assert "image vectors" in message and "the dataset has text" in message
    # the models it lists are those the dataset can feed, not called "collaborative"
    assert "collaborative" not in message and "content-text" in message


def test_recommendations_explain_each_modality_by_name(text_store):
    recs = usecases.recommend_for(text_store, "shop", "u1", "late-fusion", k=5)
    for e in recs.items:
        assert set(e.weights) == {"cf", "text"}
        assert abs(sum(e.weights.values()) - 1) < 1e-5
        for s in e.similar:
            assert set(s.similarities) == {"cf", "text"}


def test_rating_model_reports_mae_and_rmse_beside_the_ranking(text_store):
    frame = usecases.evaluate(text_store, "shop", ["rating-mf", "ease"], ks=(10,))
    rated = frame[frame.metric.isin(["mae", "rmse"])]
    assert set(rated["model"]) == {"rating-mf"} and len(rated) == 2
    assert (rated["value"] > 0).all() and (rated["value"] < 3).all()
    assert rated["users"].iloc[0] > 0
    stored = usecases.evaluation_results(text_store, "shop")
    assert {"mae", "rmse"} <= set(stored[stored.model == "rating-mf"]["metric"])
