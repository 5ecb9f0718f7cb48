"""The evaluation's summary sentence: a significant gain stated with its interval, a difference
within the noise hedged."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.evaluation.summary import summarize


def _frame(gain: float, p: float, low: float, high: float) -> pd.DataFrame:
    rows = []
    for model, recall, base in (("popularity", 0.05, "ease"), ("ease", 0.20, None),
                                ("late-fusion", 0.20 * (1 + gain), "ease")):
        stats_ = dict(gain=gain, gain_low=low, gain_high=high, p_value=p) \
            if model == "late-fusion" else dict(gain=np.nan, gain_low=np.nan,
                                                gain_high=np.nan, p_value=np.nan)
        for metric in ("recall", "ndcg"):
            rows.append(dict(model=model, run_id=1, protocol="random", slice="all",
                             metric=metric, k=20, value=recall, users=500, baseline=base,
                             **stats_))
    return pd.DataFrame(rows)


def test_the_sentence_states_a_significant_gain_with_its_interval():
    s = summarize(_frame(0.13, 0.001, 0.05, 0.21), "demo")
    assert s.best == "late-fusion" and s.baseline == "ease" and s.significant
    assert s.sentence.startswith("Combined: weighted blend finds 13% more of what shoppers")
    assert "Behaviour: EASE, the best single-signal model (95% CI +5% to +21%)" in s.sentence
    assert s.sentence.endswith(", and 4.5× as much as Bestsellers.")       # 0.226 / 0.05


def test_the_sentence_hedges_a_difference_within_the_noise():
    s = summarize(_frame(0.03, 0.4, -0.04, 0.10), "demo")
    assert not s.significant
    assert s.sentence.startswith("Combined: weighted blend and Behaviour: EASE (the best single-signal "
                                 "model) find about as much of what shoppers went on to choose "
                                 "in their top 20: the +3% difference is within the noise")
    assert "(95% CI −4% to +10%, p = 0.40)" in s.sentence
    assert s.sentence.endswith("Combined: weighted blend finds 4.1× as much as Bestsellers.")
