"""The model commands end to end on a tiny store: models, train (and pruning old model files),
evaluate (intervals, folds, diversity), recommend (flags, a damaged run noted), bench; bad
hyperparameters and unknown names are one clear line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from recsys import usecases
from recsys.cli import main
from recsys.recommend.training import train_model
from recsys.store import Store

from ..cli_helpers import cli
from ..damaged_files import damage_file
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


def test_cli_evaluate_prints_intervals_folds_and_diversity(store, capsys):
    fill_store(store)
    db = str(store.path)
    store.close()
    code = main(["evaluate", "--db", db, "--models", "popularity", "itemknn", "content",
                 "--k", "5", "--diversity", "0", "0.5"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Uncertainty at K=5" in out and "[" in out and "p=" in out
    assert "Diversity re-ranking (MMR) at K=5" in out and "0.5" in out
    assert "the best single-signal model" in out and "as much as Bestsellers" in out
    code = main(["evaluate", "--db", db, "--models", "popularity", "itemknn", "--k", "5",
                 "--folds", "2", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert code == 0 and {r["protocol"] for r in rows} == {"2-fold"}
    ndcg = [r for r in rows if r["metric"] == "ndcg" and r["slice"] == "all"]
    assert len(ndcg) == 2                                      # one row per model
    assert all(r["std"] is not None for r in ndcg)
    code = main(["evaluate", "--db", db, "--models", "itemknn", "--folds", "1", "--k", "5"])
    assert code == 2 and "between 2 and 20" in capsys.readouterr().err


def test_cli_recommend_flags(app_db: Path):
    store = Store(app_db)
    user = store.users("demo")["user_id"].iloc[1]
    history = set(store.user_item_events("demo", user)["item_id"])
    store.close()
    code, out, err = cli("recommend", "--db", str(app_db), "--user", user, "--json")
    assert code == 0, err
    assert not {i["item_id"] for i in out["items"]} & history
    assert out["items"]
    assert all(i["sentence"] for i in out["items"]) and out["include_seen"] is False
    code, out, err = cli("recommend", "--db", str(app_db), "--user", user, "--include-seen",
                         "--diversity", "0", "--json")
    assert code == 0, err
    assert out["include_seen"] is True and out["diversity"] == 0
    assert {i["item_id"] for i in out["items"] if i["seen"]} <= history
    code, text, err = cli("recommend", "--db", str(app_db), "--user", user, "--k", "3")
    assert code == 0 and "driven by:" in text and "Combined: weighted blend" in text
    code, _, err = cli("recommend", "--db", str(app_db), "--user", user, "--diversity", "2")
    assert code == 2 and "between 0" in err


def test_cli_train_keeps_models_and_prune_models_deletes_the_rest(store: Store):
    fill_store(store)
    db = str(store.path)
    store.close()
    runs = []
    for _ in range(3):
        code, data, err = cli("train", "--db", db, "--model", "popularity", "--keep-models",
                              "0", "--json")
        assert code == 0, err
        runs.append(data["run_id"])
    code, data, err = cli("prune-models", "--db", db, "--keep", "1", "--dry-run", "--json")
    assert code == 0, err
    assert [d["run_id"] for d in data["deleted"]] == runs[:2][::-1] and data["dry_run"]
    assert all(Path(d["path"]).is_file() for d in data["deleted"])          # nothing deleted
    code, text, err = cli("prune-models", "--db", db, "--keep", "1")
    assert code == 0 and "Deleted 2 model files" in text, err
    code, data, err = cli("runs", "--db", db, "--json")
    assert [r["run_id"] for r in data] == [runs[2]]                  # the rest lost their file
    code, data, err = cli("train", "--db", db, "--model", "popularity", "--keep-models", "1",
                          "--json")
    assert code == 0 and [d["run_id"] for d in data["pruned"]] == [runs[2]], err
    code, _, err = cli("train", "--db", db, "--model", "popularity", "--keep-models", "-1")
    assert code == 2 and "keep_models must be 0" in err
    code, _, err = cli("prune-models", "--db", db, "--model", "no-such-model")
    assert code == 2 and "no-such-model" in err
    code, text, err = cli("status", "--db", db)
    assert code == 0 and "Disk use:" in text and "models" in text and "prune-models" in text
    code, data, err = cli("status", "--db", db, "--json")
    assert data["disk"]["model_files"] == 1 and data["disk"]["total"] >= data["disk"]["database"]
    with pytest.raises(Exception, match="keep_models must be 0"):
        reopened = Store(db)
        try:
            usecases.train(reopened, DATASET, "popularity", keep_models=-2)
        finally:
            reopened.close()


def test_cli_recommend_notes_the_damaged_run(interactions_shop: Store, capsys):
    older = train_model(interactions_shop, "shop", "itemknn", keep_models=0)
    newer = train_model(interactions_shop, "shop", "itemknn", keep_models=0)
    damage_file(newer.artifact_path, "bad index pointer")
    path = str(interactions_shop.path)
    interactions_shop.close()
    code = main(["recommend", "--db", path, "--dataset", "shop", "--user", "u001",
                 "--model", "itemknn", "--k", "5"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"run {older.run_id}" in out and "Top 5 for user u001" in out
    assert f"note: Run {newer.run_id} (itemknn) was skipped" in err and "Traceback" not in err
    code = main(["recommend", "--db", path, "--dataset", "shop", "--user", "u001",
                 "--model", str(newer.run_id)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: Run") and "damaged" in err


def test_cli_train_with_lr_nan_is_one_clear_line(demo_db: Path, tmp_path: Path, capsys):
    db = tmp_path / "demo.duckdb"              # a copy: the shared demo is never opened
    shutil.copy(demo_db, db)
    code = main(["train", "--db", str(db), "--model", "bpr", "-p", "lr=nan"])
    err = capsys.readouterr().err
    assert code == 2 and "finite number" in err and "Traceback" not in err
