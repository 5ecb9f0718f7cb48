"""`eval-encoder --no-match`: "no close match" scored on held-out photos it was not calibrated on."""

from __future__ import annotations

import json
from pathlib import Path

from recsys.cli import main
from recsys.store import Store


def test_eval_encoder_no_match_prints_both_decisions_and_records_a_run(app_db: Path, capsys):
    code = main(["eval-encoder", "--db", str(app_db), "--dataset", "demo", "--no-match"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "off-catalog (type removed): should fire" in out and "shipped" in out
    assert "neighbours" in out and "confidence in the photo's type" in out
    assert "names only" in out and "product type the catalog lacks" in out
    assert "shipped minus names only, off-catalog" in out and "(paired, 95%)" in out
    code = main(["eval-encoder", "--db", str(app_db), "--dataset", "demo", "--no-match",
                 "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    m = data["metrics"]
    for decision in ("model", "neighbours", "threshold"):
        for key in ("off_catalog", "catalog_new_product", "catalog_photo"):
            assert 0.0 <= m[f"{decision}:{key}"] <= 1.0
    assert m["model:catalog_photo"] == 0.0            # its own photo is always a close match
    assert m["model:uses_open_vocabulary"] == 1.0 and 0.0 <= m["names:off_catalog"] <= 1.0
    lo, diff, hi = (m[f"model_vs_names:off_catalog{end}"] for end in ("_lo", "", "_hi"))
    assert lo <= diff <= hi
    assert data["n_queries"] > 0 and data["n_calibration"] + data["n_queries"] == data["n_items"]
    store = Store(app_db)
    runs = store.runs("demo") if hasattr(store, "runs") else None
    store.close()
    assert data["run_id"] is not None and (runs is None or len(runs) > 0)


def test_eval_encoder_no_match_refuses_a_silly_false_alarm_rate(app_db: Path, capsys):
    code = main(["eval-encoder", "--db", str(app_db), "--dataset", "demo", "--no-match",
                 "--false-alarm", "2"])
    err = capsys.readouterr()
    assert code != 0
    assert "between 0.01 and 0.5" in err.out + err.err and "Traceback" not in err.err
