"""Hyperparameters that are not finite numbers are refused; an int hyperparameter given as an
infinite float too."""

from __future__ import annotations

from pathlib import Path

import pytest

from recsys.models.config import TrainConfig, coerce_params
from recsys.models.errors import ModelError


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "1e400", float("nan"),
                                   float("inf")])
def test_non_finite_hyperparameters_are_refused(value):
    with pytest.raises(ModelError, match="finite number|outside"):
        coerce_params(TrainConfig, {"lr": value})


def test_int_hyperparameter_from_an_infinite_float(tmp_path: Path):
    with pytest.raises(ModelError, match="expects int"):
        coerce_params(TrainConfig, {"epochs": float("inf")})
    assert coerce_params(TrainConfig, {"lr": "0.01", "epochs": "3"}) == {"lr": 0.01, "epochs": 3}
