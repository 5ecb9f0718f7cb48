"""Modalities as data: any subset of vector modalities for content and fusion models, a catalog
without photos from import to evaluation, imported features (MMRec layout, tables), the CF
fallback of fusion models, and explicit ratings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys import usecases
from recsys.data.datasets import DataImportError
from recsys.data.interactions import load_data
from recsys.models import UnknownModel, create_model, get_spec
from recsys.models.base import Recommender
from recsys.store import Store
from recsys.vectors.modalities import (
    FEATURES_ENCODER,
    load_modality_matrices,
    modality_sources,
)

from ..test_models_helpers import COLD_A, COLD_B, GROUP, N_USERS, fast_params, tiny_data

CATS = ("shirt", "shoe", "bag", "watch")
COLOURS = ("red", "blue", "black", "green")


# -- a catalog without photos ---------------------------------------------------------------------
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


# -- any subset of modalities -------------------------------------------------------------------
def tiny_with(extra: dict[str, np.ndarray], keep: tuple[str, ...] = ("image", "text")):
    data = tiny_data()
    vectors = {m: v for m, v in data.vectors.items() if m in keep}
    vectors.update(extra)
    data.vectors = vectors
    data.present = {m: np.abs(v).sum(axis=1) > 0 for m, v in vectors.items()}
    return data


@pytest.mark.parametrize("name", ["content", "content-knn", "content-lr", "early-fusion",
                                  "late-fusion", "attention-fusion"])
def test_content_and_fusion_models_take_any_modalities_by_name(name):
    base = tiny_data()
    style = base.content("image")[:, ::-1].copy()           # a third modality, named freely
    data = tiny_with({"style": style}, keep=("text",))
    model = create_model(name, **fast_params(name)).fit(data)
    assert model.config.modalities == ("text", "style")
    assert model.requires - {"cf"} == {"text", "style"}
    weights = model.modality_weights(3, np.array([1, 5, COLD_A]))
    assert set(weights) <= model.requires and "style" in weights
    path_scores = model.score(np.arange(N_USERS))
    assert np.isfinite(path_scores).all()
    one = create_model(name, **fast_params(name), modalities="style").fit(data)
    assert one.requires - {"cf"} == {"style"}


def test_attention_weights_have_one_column_per_modality():
    data = tiny_with({"style": tiny_data().content("image")}, keep=("text",))
    model = create_model("attention-fusion", **fast_params("attention-fusion")).fit(data)
    scores, alpha = model.attention(np.array([0, 15]))
    assert alpha.shape[-1] == 3 and model.signal_names == ("cf", "text", "style")
    np.testing.assert_allclose(alpha.sum(-1), 1.0, atol=1e-5)


def test_models_saved_before_modalities_were_a_setting_load_with_image_and_text(tmp_path):
    data = tiny_data()
    model = create_model("late-fusion", **fast_params("late-fusion")).fit(data)
    path = tmp_path / "old.npz"
    model.save(path)
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(arrays["__meta__"].tobytes().decode())
    del meta["config"]["modalities"]                        # as written by the old code
    arrays["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **arrays)
    loaded = Recommender.load(path)
    assert loaded.config.modalities == ("image", "text")
    np.testing.assert_array_equal(loaded.score(np.arange(N_USERS)),
                                  model.score(np.arange(N_USERS)))


def test_content_models_refuse_data_without_vectors_with_what_to_do():
    bare = tiny_data(with_vectors=False)
    with pytest.raises(Exception, match="has no item vectors.*python -m recsys embed"):
        create_model("late-fusion").fit(bare)
    with pytest.raises(Exception, match="no style vectors.*import-features"):
        create_model("content-knn", modalities="style").fit(tiny_data())


# -- never worse than the CF part --------------------------------------------------------------
def noise_data(seed: int = 0, n_users: int = 300, n_items: int = 120, dim: int = 16):
    """Strong co-occurrence structure (users buy within one of 6 item clusters), content
    vectors that are pure noise."""
    import scipy.sparse as sp

    from recsys.data.interactions import InteractionData

    rng = np.random.default_rng(seed)
    clusters = rng.integers(0, 6, n_items)
    mats = [[], [], []]
    for u in range(n_users):
        mine = np.flatnonzero(clusters == u % 6)
        picks = rng.choice(mine, min(len(mine), 10), replace=False)
        for n, i in enumerate(picks):
            mats[0 if n < 8 else (1 if n == 8 else 2)].append((u, i))
    shape = (n_users, n_items)
    split = [sp.csr_matrix((np.ones(len(p), np.float32), tuple(zip(*p))), shape=shape)
             for p in mats]
    noise = rng.normal(size=(n_items, dim)).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    return InteractionData("noise", "stored", np.array([f"u{u}" for u in range(n_users)],
                                                       dtype=object),
                           np.array([f"i{i}" for i in range(n_items)], dtype=object), *split,
                           vectors={"text": noise})


@pytest.mark.parametrize("name", ["late-fusion", "attention-fusion"])
def test_fusion_over_noise_content_does_not_lose_to_its_cf_part(name):
    from recsys.evaluation.ranking import evaluate_model

    data = noise_data()
    params = {"epochs": 12, "patience": 3} if name == "attention-fusion" else {}
    model = create_model(name, **params).fit(data)
    cf = model.scorers["cf"]

    def ndcg(m) -> float:
        frame = evaluate_model(m, data, (10,))
        return float(frame[(frame.slice == "all") & (frame.metric == "ndcg")]["value"].iloc[0])

    assert ndcg(model) >= ndcg(cf) - 0.01
    if model.cf_fallback:
        # the fallback ranks exactly as the CF part; content only breaks its ties
        np.testing.assert_array_equal(np.argsort(-model.score([0]))[0][:10],
                                      np.argsort(-cf.score([0]))[0][:10])
        assert model.modality_weights(0, np.array([1]))["cf"][0] == 1.0


def test_fallback_is_saved_with_the_model(tmp_path):
    data = noise_data()
    model = create_model("late-fusion").fit(data)
    model.exported["cf_only"][:] = 1
    model.save(tmp_path / "m.npz")
    assert Recommender.load(tmp_path / "m.npz").cf_fallback


# -- imported features --------------------------------------------------------------------------
def write_mmrec_folder(folder: Path, n_users: int = 90, n_items: int = 40, seed: int = 0,
                       image_dim: int = 32, text_dim: int = 12) -> Path:
    """Amazon Baby's layout, small: train/val/test.json ({user index: [item indices]}),
    i_id_mapping.csv (asin, itemID), item2id.json, image_feat.npy and text_feat.npy (rows =
    itemID), with features that follow the 4 item groups users buy from."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    groups = np.arange(n_items) % 4
    splits = {"train": {}, "val": {}, "test": {}}
    for u in range(n_users):
        mine = rng.permutation(np.flatnonzero(groups == u % 4))[:7]
        splits["train"][str(u)] = [int(i) for i in mine[:5]]
        splits["val"][str(u)] = [int(mine[5])]
        splits["test"][str(u)] = [int(mine[6])]
    for name, data in splits.items():
        (folder / f"{name}.json").write_text(json.dumps(data))
    asins = [f"B{i:09d}" for i in range(n_items)]
    pd.DataFrame({"asin": asins, "itemID": range(n_items)}).to_csv(
        folder / "i_id_mapping.csv", sep="\t", index=False)
    (folder / "item2id.json").write_text(json.dumps({a: i for i, a in enumerate(asins)}))
    for name, dim in (("image_feat", image_dim), ("text_feat", text_dim)):
        centres = rng.normal(size=(4, dim))
        feats = centres[groups] + 0.3 * rng.normal(size=(n_items, dim))
        np.save(folder / f"{name}.npy", feats.astype(np.float32))
    return folder


def test_amazon_layout_with_features_works_end_to_end(store, tmp_path):
    folder = write_mmrec_folder(tmp_path / "baby")
    rep = usecases.import_interactions(store, folder, fmt="json", dataset="baby")
    assert not rep.refused
    for modality in ("image", "text"):
        rep = usecases.import_features(store, folder / f"{modality}_feat.npy", modality, "baby")
        assert not rep.refused and rep.imported == 40 and not rep.problems
        assert rep.details["items without a vector"] == 0
    mods = {m["modality"]: m for m in usecases.list_modalities(store, "baby")}
    assert mods["image"]["dim"] == 32 and mods["text"]["dim"] == 12
    assert mods["image"]["encoder"] == FEATURES_ENCODER and mods["image"]["imported"]
    # row r of the .npy is MMRec's itemID r, which the split JSON's item ids are
    data = load_data(store, "baby")
    feats = np.load(folder / "image_feat.npy")
    row = int(np.flatnonzero(data.item_ids == "7")[0])
    np.testing.assert_allclose(data.content("image")[row], feats[7] / np.linalg.norm(feats[7]),
                               rtol=1e-5)
    assert usecases.default_model(store, "baby") == usecases.DEFAULT_MODEL
    frame = usecases.evaluate(store, "baby", ["ease", "content-knn", "late-fusion"], ks=(10,))
    ndcg = frame[(frame.slice == "all") & (frame.metric == "ndcg")].set_index("model")["value"]
    assert ndcg["content-knn"] > 0.15 and ndcg["late-fusion"] > 0.15
    recs = usecases.recommend_for(store, "baby", "3", "late-fusion", k=3)
    assert set(recs.items[0].weights) == {"cf", "image", "text"}


def test_features_keyed_by_original_ids_use_the_other_mapping_column(store, tmp_path):
    """A catalog keyed by ASIN: the mapping's asin column names the rows."""
    folder = write_mmrec_folder(tmp_path / "baby")
    asins = pd.read_csv(folder / "i_id_mapping.csv", sep="\t")["asin"]
    pd.DataFrame({"item_id": asins, "title": [f"Product {a}" for a in asins]}).to_csv(
        tmp_path / "catalog.csv", index=False)
    usecases.import_catalog(store, tmp_path / "catalog.csv", dataset="shop")
    rep = usecases.import_features(store, folder / "text_feat.npy", "text", "shop")
    assert rep.imported == 40 and not rep.problems


def test_feature_tables_are_validated_and_problems_reported(store, tmp_path):
    catalog = pd.DataFrame({"item_id": [f"p{i}" for i in range(10)],
                            "title": [f"Product {i}" for i in range(10)]})
    catalog.to_csv(tmp_path / "catalog.csv", index=False)
    usecases.import_catalog(store, tmp_path / "catalog.csv", dataset="shop")
    rows = [("p0", "[1, 0, 0]"), ("p1", "0 1 0"), ("p2", "0;0;1"), ("p3", "1, 2"),
            ("p4", "1, nan, 0"), ("p5", "0, 0, 0"), ("ghost", "1, 1, 1"), ("p0", "1, 1, 0"),
            ("p6", "red, green, blue"), ("", "1, 1, 1"), ("p7", "")]
    pd.DataFrame(rows, columns=["sku", "embedding"]).to_csv(tmp_path / "f.csv", index=False)
    rep = usecases.import_features(store, tmp_path / "f.csv", "style", "shop",
                                   columns={"item_id": "sku"})
    assert rep.imported == 3 and rep.rows_read == 11
    assert rep.problems == {"row without an item id": 1, "row without a vector": 1,
                            "vector is not a list of numbers": 1,
                            "vector does not have 3 dimensions (the first row's)": 1,
                            "NaN or infinite value": 1, "all-zero vector (no direction)": 1,
                            "item not in the dataset": 1,
                            "duplicate item id (the first row is kept)": 1}
    assert rep.examples["item not in the dataset"] == ["item ghost"]
    assert rep.lines["item not in the dataset"] == [8]          # the CSV's line number
    assert rep.details["items without a vector"] == 7
    assert rep.details["e.g. items without a vector"].startswith("p3, p4, p5")
    mats = load_modality_matrices(store, "shop")
    assert mats.present["style"].sum() == 3 and mats.vectors["style"].shape == (10, 3)
    # refuse: nothing changes (the 3 vectors stay)
    rep = usecases.import_features(store, tmp_path / "f.csv", "style", "shop",
                                   columns={"item_id": "sku"}, on_error="refuse")
    assert rep.refused and rep.imported == 0
    assert load_modality_matrices(store, "shop").present["style"].sum() == 3


def test_parquet_list_and_wide_columns_and_replacement(store, tmp_path):
    catalog = pd.DataFrame({"item_id": [f"p{i}" for i in range(6)],
                            "title": [f"Product {i}" for i in range(6)]})
    catalog.to_csv(tmp_path / "catalog.csv", index=False)
    usecases.import_catalog(store, tmp_path / "catalog.csv", dataset="shop")
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(6, 5))
    pd.DataFrame({"item_id": catalog["item_id"], "vector": list(vecs)}).to_parquet(
        tmp_path / "f.parquet")
    rep = usecases.import_features(store, tmp_path / "f.parquet", "style", "shop")
    assert rep.imported == 6 and not rep.problems and rep.details["dimensions"] == 5
    wide = pd.DataFrame(vecs[:4, :2], columns=["d0", "d1"]).assign(id=catalog["item_id"][:4])
    wide.to_csv(tmp_path / "wide.csv", index=False)
    rep = usecases.import_features(store, tmp_path / "wide.csv", "style", "shop")
    assert rep.imported == 4 and rep.details["dimensions"] == 2
    sources = modality_sources(store, "shop")
    assert sources["style"].encoder == FEATURES_ENCODER
    sets = store.embedding_sets("shop")
    assert len(sets[sets.modality == "style"]) == 1              # the re-import replaced it
    assert store.embedding_dim("shop", FEATURES_ENCODER, sources["style"].version,
                               "style") == 2


def test_a_failed_write_keeps_the_previous_features(store, tmp_path, monkeypatch):
    import recsys.vectors.features as features

    catalog = pd.DataFrame({"item_id": [f"p{i}" for i in range(9)],
                            "title": [f"Product {i}" for i in range(9)]})
    catalog.to_csv(tmp_path / "catalog.csv", index=False)
    usecases.import_catalog(store, tmp_path / "catalog.csv", dataset="shop")
    np.save(tmp_path / "a.npy", np.ones((9, 4), np.float32))
    (tmp_path / "ids.txt").write_text("\n".join(catalog["item_id"]) + "\n")
    usecases.import_features(store, tmp_path / "a.npy", "style", "shop", ids=tmp_path / "ids.txt")
    np.save(tmp_path / "b.npy", np.full((9, 4), 2.0, np.float32))
    monkeypatch.setattr(features, "CHUNK_ROWS", 4)
    real = Store.insert_frame.__func__
    calls = {"n": 0}

    def failing(cls, cur, table, frame, mode="append"):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk trouble")
        return real(cls, cur, table, frame, mode)

    monkeypatch.setattr(Store, "insert_frame", classmethod(failing))
    with pytest.raises(OSError):
        usecases.import_features(store, tmp_path / "b.npy", "style", "shop",
                                 ids=tmp_path / "ids.txt")
    monkeypatch.undo()
    mats = load_modality_matrices(store, "shop")
    assert mats.present["style"].sum() == 9
    assert store.embedding_sets("shop")["n_items"].tolist() == [9]


@pytest.mark.parametrize("content, message", [
    (b"not a numpy file", "not a readable .npy"),
    (None, "2-D matrix"),
])
def test_unreadable_feature_files_are_clear_errors(store, tmp_path, content, message):
    catalog = pd.DataFrame({"item_id": ["p0"], "title": ["Product"]})
    catalog.to_csv(tmp_path / "catalog.csv", index=False)
    usecases.import_catalog(store, tmp_path / "catalog.csv", dataset="shop")
    path = tmp_path / "f.npy"
    if content is None:
        np.save(path, np.ones(3, np.float32))
    else:
        path.write_bytes(content)
    with pytest.raises(DataImportError, match=message):
        usecases.import_features(store, path, "style", "shop")
    with pytest.raises(DataImportError, match="cannot name a modality"):
        usecases.import_features(store, path, "CF", "shop")


def test_import_features_command_and_modalities_listing(tmp_path):
    from recsys.cli import main

    folder = write_mmrec_folder(tmp_path / "baby")
    db = str(tmp_path / "cli.duckdb")
    assert main(["import-interactions", str(folder), "--format", "json", "--dataset", "baby",
                 "--db", db]) == 0
    assert main(["import-features", str(folder / "image_feat.npy"), "--modality", "image",
                 "--dataset", "baby", "--db", db]) == 0
    assert main(["import-features", str(folder / "image_feat.npy"), "--modality", "cf",
                 "--dataset", "baby", "--db", db]) == 2
    assert main(["modalities", "--dataset", "baby", "--db", db, "--json"]) == 0


def test_search_ignores_imported_features(store, tmp_path):
    """Imported vectors cannot encode a query: search keeps the encoder's own vectors."""
    from recsys.vectors.modalities import searchable_encoder

    folder = write_mmrec_folder(tmp_path / "baby")
    usecases.import_interactions(store, folder, fmt="json", dataset="baby")
    usecases.import_features(store, folder / "image_feat.npy", "image", "baby")
    assert searchable_encoder(store, "baby") is None
    with pytest.raises(usecases.NoVectors):
        usecases.search_similar(store, "baby", text="a bag")


# -- explicit ratings ---------------------------------------------------------------------------
def test_the_csv_importer_keeps_the_rating_column(store, tmp_path):
    pd.DataFrame({"user": ["a", "a", "b", "b"], "item": ["x", "y", "x", "z"],
                  "stars": ["5", "3", "oops", "4"]}).to_csv(tmp_path / "r.csv", index=False)
    rep = usecases.import_interactions(store, tmp_path / "r.csv", dataset="r")
    assert rep.imported == 3 and rep.problems == {"rating is not a finite number": 1}
    rated = store.rated_pairs("r")
    assert rated["rating"].tolist() == [5.0, 3.0, 4.0]
    assert store.interactions("r")["weight"].tolist() == [1.0, 1.0, 1.0]  # no weight given


def test_rating_model_reports_mae_and_rmse_beside_the_ranking(text_store):
    frame = usecases.evaluate(text_store, "shop", ["rating-mf", "ease"], ks=(10,))
    rated = frame[frame.metric.isin(["mae", "rmse"])]
    assert set(rated["model"]) == {"rating-mf"} and len(rated) == 2
    assert (rated["value"] > 0).all() and (rated["value"] < 3).all()
    assert rated["users"].iloc[0] > 0
    stored = usecases.evaluation_results(text_store, "shop")
    assert {"mae", "rmse"} <= set(stored[stored.model == "rating-mf"]["metric"])


def test_rating_model_predicts_known_ratings_better_than_the_mean():
    """On ratings that follow the item groups, biased MF beats predicting the global mean."""
    from recsys.models.ratings import rating_metrics

    data = tiny_data()
    model = create_model("rating-mf", epochs=60, patience=60, missing_weight=0.0).fit(data)
    users, items, values = data.ratings.part(2)
    mean = data.ratings.part(0)[2].mean()
    baseline = float(np.sqrt(np.mean((values - mean) ** 2)))
    found = rating_metrics(model, data)
    assert found["ratings"] == len(values) and found["rmse"] < baseline


def test_rating_model_needs_ratings():
    with pytest.raises(Exception, match="needs.*ratings"):
        create_model("rating-mf").fit(tiny_data(with_ratings=False))
    spec = get_spec("rating-mf")
    with pytest.raises(UnknownModel, match="rating column"):
        spec.check_signals(frozenset({"cf"}), "shop")


def test_cold_items_keep_their_content_place_after_a_fallback():
    data = tiny_data()
    model = create_model("attention-fusion", **fast_params("attention-fusion")).fit(data)
    model.exported["cf_only"] = np.ones(1, np.float32)
    scores = model.score(np.arange(N_USERS))
    right = np.r_[scores[:GROUP, COLD_A] > scores[:GROUP, COLD_B],
                  scores[GROUP:, COLD_B] > scores[GROUP:, COLD_A]]
    assert right.mean() >= 0.75
    assert model.modality_weights(0, np.array([COLD_A]))["cf"][0] == 0.0


def test_a_re_split_copy_splits_its_ratings_alike():
    """Cross-validation folds are copies of the data with other matrices
    (`dataclasses.replace`): their ratings must follow the new split, not the original."""
    import dataclasses

    data = tiny_data()
    swapped = dataclasses.replace(data, train=data.test, test=data.train)
    assert len(swapped.ratings.part(0)[2]) == len(data.ratings.part(2)[2])
    assert len(swapped.ratings.part(2)[2]) == len(data.ratings.part(0)[2])
    assert swapped.modalities == data.modalities and swapped.image is data.image


@pytest.mark.parametrize("name", ["early-fusion", "late-fusion", "attention-fusion"])
def test_fold_in_over_any_modalities_reproduces_a_trained_user(name):
    """A new shopper's picks (`score_history`) work with imported modalities by name, and a
    trained user's own history gives their scores, fallen back to CF or not."""
    data = tiny_with({"style": tiny_data().content("image")[:, ::-1].copy()}, keep=("text",))
    model = create_model(name, **fast_params(name)).fit(data)
    for fallback in (0.0, 1.0):
        model.exported["cf_only"] = np.full(1, fallback, np.float32)
        row = data.train[2]
        np.testing.assert_allclose(model.score_history(row.indices, row.data),
                                   model.score([2])[0], rtol=1e-4, atol=1e-4)


def test_rating_model_folds_in_a_new_shopper_on_the_star_scale():
    data = tiny_data()
    model = create_model("rating-mf", **fast_params("rating-mf")).fit(data)
    stars = model.score_history([1, 2, 3])
    low, high = data.ratings.values.min(), data.ratings.values.max()
    assert np.isfinite(stars).all() and low - 1 < np.median(stars) < high + 1


def test_pick_sentences_name_other_modalities():
    """A pick driven by a video or an imported modality is said by that name, not as
    behaviour."""
    from recsys.explain.sentences import Cited, pick_sentence, plain

    bag = Cited("Red Leather Bag", "purchase", {"cf": 0.1, "style": 0.9, "video": 0.2})
    assert plain(pick_sentence({"style": 0.8, "cf": 0.2}, [bag])).startswith(
        "Close in style to the Red Leather Bag you bought")
    assert "in its video" in plain(pick_sentence({"video": 1.0}, [bag]))
