"""The model commands end to end on a tiny store: models, train, evaluate, recommend, bench."""

from __future__ import annotations

import json

import pytest

from recsys.cli import main

from ..test_models_helpers import DATASET, fill_store


@pytest.fixture
def db(store):
    fill_store(store)
    path = str(store.path)
    store.close()
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_models_lists_every_model_with_its_hyperparameters(db, capsys):
    code, out, _ = run(capsys, "models", "--db", db, "--json")
    models = {m["name"]: m for m in json.loads(out)}
    assert code == 0 and {"attention-fusion", "ease", "content-image"} <= set(models)
    assert any(p["name"] == "dim" for p in models["bpr"]["params"])
    code, out, _ = run(capsys, "models", "--db", db)
    # fusion takes every vector modality of the dataset: "cf+vectors" (any modality)
    assert "attention-fusion" in out and "cf+vectors" in out and "content-image" in out


def test_train_prints_the_curve_and_json_has_the_run(db, capsys):
    code, out, _ = run(capsys, "train", "--db", db, "--model", "bpr", "--epochs", "3",
                       "-p", "dim=8", "-p", "batch_size=32")
    assert code == 0 and "Trained bpr on 'tiny'" in out and "val NDCG@20" in out
    code, out, _ = run(capsys, "train", "--db", db, "--model", "itemknn", "--json",
                       "--protocol", "temporal")
    data = json.loads(out)
    assert data["status"] == "finished" and data["config"]["protocol"] == "temporal"


def test_evaluate_prints_a_table_and_stores_metrics(db, capsys):
    code, out, _ = run(capsys, "evaluate", "--db", db, "--models", "popularity", "content",
                       "--k", "5", "10")
    assert code == 0
    assert "recall@10" in out and "ndcg@10" in out and "cold recall" in out
    assert "popularity" in out and "content" in out
    code, out, _ = run(capsys, "evaluate", "--db", db, "--models", "content", "--k", "5",
                       "--json")
    rows = json.loads(out)
    assert {"model", "run_id", "protocol", "slice", "metric", "k", "value"} <= set(rows[0])


def test_recommend_explains_each_item(db, capsys):
    code, out, _ = run(capsys, "recommend", "--db", db, "--user", "u03", "--model", "content",
                       "--k", "3", "--json")
    data = json.loads(out)
    assert code == 0 and len(data["items"]) == 3
    item = data["items"][0]
    assert set(item["weights"]) == {"image", "text"} and item["title"].startswith("Product")
    assert len(item["similar"]) == 3
    code, out, _ = run(capsys, "recommend", "--db", db, "--user", "u03", "--model", "content")
    assert "weights: image" in out and "like:" in out


def test_unknown_user_and_model_are_clear_errors(db, capsys):
    code, _, err = run(capsys, "recommend", "--db", db, "--user", "ghost", "--model", "content")
    assert code == 2 and "Unknown user 'ghost'" in err and "u00" in err
    code, _, err = run(capsys, "train", "--db", db, "--model", "gpt")
    assert code == 2 and "Known models: popularity" in err
    code, _, err = run(capsys, "train", "--db", db, "--model", "bpr", "-p", "depth=3")
    assert code == 2 and "Unknown hyperparameter" in err


def test_bench_prints_timings_and_saves_json(db, capsys, tmp_path):
    out_file = tmp_path / "bench.json"
    code, out, _ = run(capsys, "bench", "--db", db, "--models", "popularity", "content",
                       "--users", "5", "--out", str(out_file))
    assert code == 0 and "rec ms p50" in out
    saved = json.loads(out_file.read_text())
    assert saved["dataset"] == DATASET
    assert {r["model"] for r in saved["results"]} == {"popularity", "content"}
    assert all(r["recommend_ms_median"] > 0 for r in saved["results"])
