"""The tables of an evaluation, as data: what the Evaluate page and the command line show.

Pure functions of the results frames (`evaluation_results`, `evaluate`, `diversity_effect`),
no store and no Streamlit, so each table can be checked on a hand-made frame:

* `metric_row` - one model's metric at K (the lookup every table is made of);
* `baseline_of` - the single-signal model the shown results were tested against;
* `value_text` - a value with its spread: ± std over folds, else its 95% interval;
* `headline_tiles` - the three numbers under the page's sentence (best NDCG, the baseline's,
  the best fusion model's gain over it with its interval and verdict);
* `results_table` - one row per model: every metric at K with its interval, and the NDCG gain
  against the baseline;
* `diversity_table` - per model and re-ranking level: NDCG, recall, diversity and coverage,
  with the change against the model's own list.

Significance is `stats.is_significant` everywhere ("n.s." otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import pandas as pd

from recsys.evaluation.stats import is_significant

METRIC_LABELS = {"auc": "Accuracy (AUC)", "precision": "Precision", "recall": "Recall",
                 "f1": "Balance (F1)", "ndcg": "Ranking quality (NDCG)", "hit_rate": "Hit rate",
                 "map": "Average precision (MAP)", "mrr": "First hit's rank (MRR)",
                 "coverage": "Catalog coverage", "diversity": "Intra-list diversity",
                 "novelty": "Novelty", "cold_share": "Cold-item share"}
"""Metric names for people, on tables and charts."""

RESULT_COLUMNS = (("ndcg", True), ("recall", True), ("precision", True), ("f1", True),
                  ("hit_rate", True), ("map", True), ("mrr", True), ("auc", False),
                  ("coverage", True), ("diversity", True), ("novelty", True))
"""The metrics of `results_table`, in order, and whether each is measured at K."""

FAMILY_LABELS = {"baseline": "baseline", "collaborative": "behaviour", "content": "content",
                 "fusion": "combined", "rating": "star ratings"}
"""Model families in plain words (a "fusion" model combines behaviour, photos and texts)."""

MISSING = "–"


def _family(model: str) -> str:
    from recsys.models import UnknownModel, get_spec

    try:
        return get_spec(model).family
    except UnknownModel:               # stored results of a model this version does not have
        return ""


def metric_row(frame: pd.DataFrame, model: str, metric: str, k: int | None,
               slice_: str = "all") -> pd.Series | None:
    """The row of `frame` holding `model`'s `metric` at `k` (None: a metric without a cut-off,
    such as AUC) on `slice_` (frames without a slice column: any); None when there is none."""
    sel = frame[(frame["model"] == model) & (frame["metric"] == metric)]
    if "slice" in sel:
        sel = sel[sel["slice"] == slice_]
    sel = sel[sel["k"].isna()] if k is None else sel[sel["k"] == k]
    return sel.iloc[0] if len(sel) else None


def baseline_of(frame: pd.DataFrame) -> str | None:
    """The model the results in `frame` were tested against (the most common one named)."""
    named = frame["baseline"].dropna() if "baseline" in frame else pd.Series(dtype=object)
    return named.mode().iloc[0] if len(named) else None


def value_text(row: Any, interval: str = "({:.4f}–{:.4f})") -> str:
    """A value with its spread: "0.1234 ± 0.0050" (± std over folds), the value followed by
    `interval` filled with the 95% interval, or the value alone."""
    if pd.notna(row.get("std")):
        return f"{row['value']:.4f} ± {row['std']:.4f}"
    if pd.notna(row.get("ci_low")):
        return f"{row['value']:.4f} " + interval.format(row["ci_low"], row["ci_high"])
    return f"{row['value']:.4f}"


def verdict(p_value: Any) -> str:
    return "significant" if is_significant(p_value) else "not significant"


@dataclass(frozen=True)
class Tile:
    """One number of the page's lead: a label, the number, what it is (and a tooltip)."""

    label: str
    value: str
    caption: str
    help: str | None = None


def headline_tiles(overall: pd.DataFrame, k: int, baseline: str | None
                   ) -> list[Tile | None]:
    """The three numbers under the sentence, from the results on all test users (`overall`):
    the best NDCG@k with its spread, the baseline's NDCG@k, and the best fusion model's gain
    in NDCG@k over the baseline with its interval and verdict. A slot is None when it has
    nothing to show; the list is empty without any NDCG@k."""
    from recsys.models import display_name

    ndcg = overall[(overall["metric"] == "ndcg") & (overall["k"] == k)].set_index("model")
    if not len(ndcg):
        return []
    tiles: list[Tile | None] = [None, None, None]
    best = ndcg["value"].idxmax()
    top = ndcg.loc[best]
    spread = (f" · ± {top['std']:.3f} over folds" if pd.notna(top["std"]) else
              f" · 95% CI {top['ci_low']:.3f}–{top['ci_high']:.3f}"
              if pd.notna(top["ci_low"]) else "")
    tiles[0] = Tile(f"Best ranking quality (NDCG@{k})", f"{top['value']:.3f}",
                    display_name(best) + spread)
    if baseline in ndcg.index:
        tiles[1] = Tile(f"Baseline's quality (NDCG@{k})",
                        f"{ndcg.loc[baseline, 'value']:.3f}",
                        f"{display_name(baseline)}: the baseline every model is tested "
                        "against")
    fusion = [m for m in ndcg.index if _family(m) == "fusion"]
    if fusion and baseline in ndcg.index:
        best_fusion = max(fusion, key=lambda m: ndcg.loc[m, "value"])
        row = ndcg.loc[best_fusion]
        if pd.notna(row["gain"]):
            tiles[2] = Tile("Gain in ranking quality", f"{row['gain']:+.1%}",
                            f"{display_name(best_fusion)} · 95% CI {row['gain_low']:+.1%} to "
                            f"{row['gain_high']:+.1%} · {verdict(row['p_value'])} (p = "
                            f"{row['p_value']:.2g})",
                            help=f"In ranking quality (NDCG@{k}): the best combined model "
                                 "(behaviour + photos + texts) over the best single-signal "
                                 "model, on the same shoppers.")
    return tiles


def results_table(overall: pd.DataFrame, models: Sequence[str], k: int,
                  baseline: str | None) -> pd.DataFrame:
    """One row per model of `models` (in that order) from the results on all test users:
    its name and family, each of `RESULT_COLUMNS` at K with its spread ("–" when it was not
    measured), and its NDCG@k gain against `baseline` with interval, verdict and p-value."""
    from recsys.models import display_name

    table = []
    for model in models:
        row = {"Model": display_name(model),
               "Family": FAMILY_LABELS.get(_family(model), _family(model))}
        for metric, at_k in RESULT_COLUMNS:
            head = METRIC_LABELS.get(metric, metric) + (f" @{k}" if at_k else "")
            found = metric_row(overall, model, metric, k if at_k else None)
            row[head] = MISSING if found is None else value_text(found)
        ndcg = metric_row(overall, model, "ndcg", k)
        if ndcg is None or pd.isna(ndcg.get("gain")):
            row[f"Ranking quality @{k} vs baseline"] = "baseline" if model == baseline else MISSING
        else:
            row[f"Ranking quality @{k} vs baseline"] = (
                f"{ndcg['gain']:+.1%} ({ndcg['gain_low']:+.1%} to {ndcg['gain_high']:+.1%}), "
                + ("significant" if is_significant(ndcg["p_value"]) else "n.s.")
                + f", p = {ndcg['p_value']:.2g}")
        table.append(row)
    return pd.DataFrame(table)


def diversity_table(effect: pd.DataFrame, k: int, models: Sequence[str]) -> pd.DataFrame:
    """Per model (in the order of `models`, others last) and re-ranking level (0 = the model's
    own list): NDCG, recall, diversity and coverage at K; a re-ranked level's cells carry the
    change against the model's own list, marked n.s. when not significant. `effect` is
    `diversity_effect`'s frame."""
    from recsys.models import display_name

    at_k = effect[effect["k"] == k]
    groups = sorted(at_k.groupby(["model", "diversity"]),
                    key=lambda g: (models.index(g[0][0]) if g[0][0] in models else 99, g[0][1]))
    rows = []
    for (model, level), part in groups:
        cells = part.set_index("metric")

        def cell(metric: str) -> str:
            if metric not in cells.index:
                return MISSING
            r = cells.loc[metric]
            text = f"{r['value']:.3f}"
            if level > 0 and pd.notna(r["gain"]):
                text += f" ({r['gain']:+.1%}" + (
                    "" if is_significant(r["p_value"]) else ", n.s.") + ")"
            return text

        rows.append({"Model": display_name(model), "Level": f"{level:g}",
                     f"Ranking quality (NDCG) @{k}": cell("ndcg"), f"Recall@{k}": cell("recall"),
                     f"Diversity@{k}": cell("diversity"), f"Coverage@{k}": cell("coverage")})
    return pd.DataFrame(rows)
