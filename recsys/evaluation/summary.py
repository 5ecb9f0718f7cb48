"""The outcome of an evaluation in one plain sentence, and the numbers behind it.

`summarize(frame, dataset)` reads a results frame (the evaluate use case's, or the stored
results: model, protocol, slice, metric, k, value, users, baseline, gain, gain_low, gain_high,
p_value) and says, at the reference cut-off (`reference_k`: 20 when it was measured), how much
more of what shoppers went on to choose the best fusion model finds than the best
single-signal model, with the 95% interval of the gain, and against bestsellers. A difference
that is not significant (`stats.is_significant`) is said to be within the noise.

Pure: no store, no Streamlit; the Evaluate page leads with the sentence and `evaluate` on the
command line ends with it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Collection, Sequence

import pandas as pd

from recsys.evaluation.stats import is_significant

REFERENCE_K = 20
"""The cut-off that picks the best single-signal model and leads the summary (NDCG@20 and
recall@20, as in the literature); the largest K asked for when 20 is not."""

BESTSELLERS = "popularity"
"""The model every summary compares with last: the same bestsellers for everyone."""


def reference_k(ks: Sequence[int]) -> int:
    ks = [int(k) for k in ks]
    return REFERENCE_K if REFERENCE_K in ks else max(ks)


@dataclass
class EvaluationSummary:
    """The outcome in one sentence, and the numbers behind it (recall and NDCG at `k`, all
    test users): the best fusion model by NDCG (or the best model when no fusion was
    evaluated), the single-signal baseline it was tested against, bestsellers. The sentence
    speaks of recall ("finds X% more of what shoppers went on to choose")."""

    dataset: str
    protocol: str
    k: int
    sentence: str
    best: str | None = None
    baseline: str | None = None
    bestsellers: str | None = None
    recall: dict[str, float] | None = None
    ndcg: dict[str, float] | None = None
    gain: float | None = None             # recall gain of `best` over `baseline`
    gain_low: float | None = None
    gain_high: float | None = None
    p_value: float | None = None
    ndcg_gain: float | None = None
    ndcg_gain_low: float | None = None
    ndcg_gain_high: float | None = None
    ndcg_p_value: float | None = None
    users: int | None = None
    baseline_tuned: bool = False
    """The baseline's evaluated run had its settings tuned on the validation split."""

    @property
    def significant(self) -> bool | None:
        return None if self.p_value is None else is_significant(self.p_value)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "significant": self.significant}


def _number(value: Any) -> float | None:
    """A frame cell as a float, None when it is missing."""
    return None if value is None or pd.isna(value) else float(value)


def _how_much_more(ratio_minus_one: float) -> str:
    """+0.13 -> "13% more"; +2.5 -> "3.5× as much"; -0.2 -> "20% less"."""
    if ratio_minus_one >= 1.0:
        return f"{ratio_minus_one + 1:.1f}× as much"
    if ratio_minus_one >= 0:
        return f"{ratio_minus_one:.0%} more"
    return f"{-ratio_minus_one:.0%} less"


def _signed_percent(value: float) -> str:
    """+0.05 -> "+5%"; -0.04 -> "−4%" (a true minus sign)."""
    return f"{value:+.0%}".replace("-", "−")


def summarize(frame: pd.DataFrame, dataset: str, protocol: str | None = None,
              k: int | None = None, tuned: Collection[str] = ()) -> EvaluationSummary | None:
    """The summary of a results frame (`evaluation_results` or `evaluate`); None when it holds
    no recall on all test users. `tuned` names the models whose evaluated run was tuned on the
    validation split: a tuned baseline is said to be one ("the best single-signal model,
    tuned on validation"), the comparison the peers and our baselines deserve."""
    from recsys.models import PROTOCOL_BASELINES, display_name, get_spec, model_names

    if frame.empty:
        return None
    if protocol is None:
        protocols = list(frame["protocol"].unique())
        protocol = "random" if "random" in protocols else protocols[0]
    frame = frame[(frame["protocol"] == protocol) & (frame["slice"] == "all")]
    ks = sorted(int(x) for x in frame["k"].dropna().unique())
    if not ks:
        return None
    k = k if k in ks else reference_k(ks)
    known = set(model_names())

    def at(metric: str) -> pd.DataFrame:
        sel = frame[(frame["metric"] == metric) & (frame["k"] == k)]
        return sel[sel["model"].isin(known)].set_index("model")

    recall, ndcg = at("recall"), at("ndcg")
    if recall.empty:
        return None
    baselines = [m for m in PROTOCOL_BASELINES if m in set(frame["model"])]
    if baselines:                      # the new-items protocol's baselines (no registry entry)
        recall, ndcg = (pd.concat([t, frame[(frame["metric"] == metric) & (frame["k"] == k)
                                         & frame["model"].isin(baselines)].set_index("model")])
                        for t, metric in ((recall, "recall"), (ndcg, "ndcg")))
    fusion = [m for m in recall.index if m in known and get_spec(m).family == "fusion"]
    pool = fusion or [m for m in recall.index if m not in baselines] or list(recall.index)
    # the best by NDCG, the metric that picks the baseline and leads the page's numbers
    best = max(pool, key=lambda m: (ndcg.loc[m, "value"] if m in ndcg.index else -1,
                                    recall.loc[m, "value"]))
    row = recall.loc[best]
    base = row["baseline"] if isinstance(row.get("baseline"), str) else None
    if base is None or base not in recall.index:
        single = [m for m in recall.index if m != best
                  and (m in baselines or get_spec(m).single_signal)]
        base = max(single, key=lambda m: ndcg.loc[m, "value"] if m in ndcg.index else -1) \
            if single else None
    sellers = BESTSELLERS if BESTSELLERS in recall.index and best != BESTSELLERS else None
    out = EvaluationSummary(dataset, protocol, k, "", best, base, sellers,
                            recall=recall["value"].astype(float).to_dict(),
                            ndcg=ndcg["value"].astype(float).to_dict(),
                            users=int(row["users"]) if not pd.isna(row.get("users")) else None)
    who = display_name(best)
    out.baseline_tuned = base is not None and base in set(tuned)
    best_single = "the best single-signal model" + \
        (" (tuned on validation)" if out.baseline_tuned else "")
    if base in baselines:
        best_single = "ranking new items by their categories alone"
    what = f"of what shoppers went on to choose in its top {k}"
    if base is not None and base != best and row.get("baseline") == base:
        out.gain, out.gain_low, out.gain_high, out.p_value = (
            _number(row.get(c)) for c in ("gain", "gain_low", "gain_high", "p_value"))
        if best in ndcg.index:
            nrow = ndcg.loc[best]
            out.ndcg_gain, out.ndcg_gain_low, out.ndcg_gain_high, out.ndcg_p_value = (
                _number(nrow.get(c)) for c in ("gain", "gain_low", "gain_high", "p_value"))
    elif base is not None and base != best and recall.loc[base, "value"] > 0:
        out.gain = float(row["value"] / recall.loc[base, "value"] - 1)
    sellers_ratio = None
    if sellers is not None and recall.loc[sellers, "value"] > 0:
        sellers_ratio = float(row["value"] / recall.loc[sellers, "value"])

    def vs_sellers() -> str:
        return (f"{sellers_ratio:.1f}× as much as" if sellers_ratio >= 1.5 else
                f"{_how_much_more(sellers_ratio - 1)} than") + f" {display_name(sellers)}"

    ci = "" if out.gain_low is None else \
        f"95% CI {_signed_percent(out.gain_low)} to {_signed_percent(out.gain_high)}"
    if base is not None and base != best and out.gain is not None and \
            (out.p_value is None or is_significant(out.p_value)):
        sentence = (f"{who} finds {_how_much_more(out.gain)} {what} than {display_name(base)}, "
                    f"{best_single}" + (f" ({ci})" if ci else ""))
        if sellers_ratio is not None:
            sentence += f", and {vs_sellers()}"
        sentence += "."
    elif base is not None and base != best and out.gain is not None:
        sentence = (f"{who} and {display_name(base)} ({best_single}) find about "
                    f"as much {what.replace('its top', 'their top')}: the "
                    f"{_signed_percent(out.gain)} difference is within the noise of these "
                    f"{out.users or 'few'} test shoppers ({ci}, p = {out.p_value:.2f}).")
        if sellers_ratio is not None:
            sentence += f" {who} finds {vs_sellers()}."
    else:
        sentence = f"{who} finds {row['value']:.0%} {what}"
        sentence += f", {vs_sellers()}." if sellers_ratio is not None else "."
    out.sentence = sentence
    return out
