"""The Evaluate sentence compares fusion with the best single-signal model, peers included,
and says when that baseline was tuned on validation."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys import usecases
from recsys.evaluation.summary import summarize

from ..test_models_helpers import DATASET, fill_store


def _frame() -> pd.DataFrame:
    rows = []
    for model, value, base in (("popularity", 0.05, "als"), ("ease", 0.18, None),
                               ("als", 0.20, None), ("late-fusion", 0.23, "als")):
        stats_ = dict(gain=0.15, gain_low=0.05, gain_high=0.25, p_value=0.001) \
            if model == "late-fusion" else dict(gain=np.nan, gain_low=np.nan,
                                                gain_high=np.nan, p_value=np.nan)
        for metric in ("recall", "ndcg"):
            rows.append(dict(model=model, run_id=1, protocol="random", slice="all",
                             metric=metric, k=20, value=value, users=500, baseline=base,
                             **stats_))
    return pd.DataFrame(rows)


def test_a_tuned_peer_baseline_is_named_as_such():
    s = summarize(_frame(), "demo", tuned={"als", "late-fusion"})
    assert s.baseline == "als" and s.baseline_tuned
    assert ("than Behaviour: ALS (implicit), the best single-signal model (tuned on "
            "validation) (95% CI +5% to +25%)") in s.sentence


def test_an_untuned_baseline_is_not_called_tuned():
    s = summarize(_frame(), "demo")
    assert not s.baseline_tuned and "tuned" not in s.sentence


def test_the_use_case_finds_which_evaluated_runs_were_tuned(store):
    fill_store(store)
    usecases.tune(store, DATASET, "als", {"factors": 8}, trials=2, budget_seconds=60)
    usecases.train(store, DATASET, "itemknn")
    frame = usecases.evaluate(store, DATASET, ["als", "itemknn"], ks=(20,), diversity=())
    assert usecases.tuned_models(store, DATASET, frame) == {"als"}
    summary = usecases.evaluation_summary(store, DATASET)
    assert summary is not None and summary.baseline in ("als", "itemknn")
    assert summary.baseline_tuned == (summary.baseline == "als")
