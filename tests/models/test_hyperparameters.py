"""Hyperparameters that are not numbers (issue 9, item 5) and spreadsheet-safe CSV exports
(item 7)."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from recsys.cli import main
from recsys.data.export import escape_cell, escape_frame, to_csv_bytes
from recsys.models.base import ModelError, TrainConfig, coerce_params


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "1e400", float("nan"),
                                   float("inf")])
def test_non_finite_hyperparameters_are_refused(value):
    with pytest.raises(ModelError, match="finite number|outside"):
        coerce_params(TrainConfig, {"lr": value})


def test_int_hyperparameter_from_an_infinite_float(tmp_path: Path):
    with pytest.raises(ModelError, match="expects int"):
        coerce_params(TrainConfig, {"epochs": float("inf")})
    assert coerce_params(TrainConfig, {"lr": "0.01", "epochs": "3"}) == {"lr": 0.01, "epochs": 3}


def test_cli_train_with_lr_nan_is_one_clear_line(demo_db: Path, capsys):
    code = main(["train", "--db", str(demo_db), "--model", "bpr", "-p", "lr=nan"])
    err = capsys.readouterr().err
    assert code == 2 and "finite number" in err and "Traceback" not in err


@pytest.mark.parametrize("cell, escaped", [
    ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"), ("+1+2", "'+1+2"), ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"), ("Red shirt", "Red shirt"),
    ("", ""), (-5, -5), (3.5, 3.5), (None, None)])
def test_escape_cell(cell, escaped):
    assert escape_cell(cell) == escaped


def test_csv_download_cannot_run_formulas():
    frame = pd.DataFrame({"item_id": ["a", "=b"], "title": ['=HYPERLINK("http://x","y")', "ok"],
                          "score": [-1.5, 2.0], "=col": [1, 2]})
    frame["title"] = frame["title"].astype("string")
    out = escape_frame(frame)
    assert out["title"].tolist() == ["'=HYPERLINK(\"http://x\",\"y\")", "ok"]
    assert out["score"].tolist() == [-1.5, 2.0] and list(out.columns)[-1] == "'=col"
    assert frame["title"].iloc[0].startswith("=")            # the original is untouched
    back = pd.read_csv(io.BytesIO(to_csv_bytes(frame)))
    assert not any(str(v).startswith(("=", "+", "@")) for v in back.to_numpy().ravel())
    assert back["score"].tolist() == [-1.5, 2.0]
