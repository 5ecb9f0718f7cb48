"""Plotly figures of the dashboard (pure functions of data frames, easy to test).

Honest by construction: bar and curve axes start at zero, so a 1% difference looks like 1%;
each model keeps one colour on every chart (`model_colour`) and is named for people
(`recsys.models.display_name`); a metric's definition sits on its chart; uncertainty is drawn
as error bars (95% intervals, or ± std over folds), and a model not significantly different
from the baseline is hatched and marked "n.s.".
"""

from __future__ import annotations

import textwrap
import zlib
from typing import Sequence

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from recsys.evaluation.stats import is_significant
from recsys.evaluation.tables import METRIC_LABELS
from recsys.models import display_name

from .components import MODALITY_LABELS, modality_colour

PALETTE = px.colors.qualitative.Bold
MODEL_COLOURS = {
    # baseline: grey
    "popularity": "#94A3B8",
    # behaviour (collaborative): blues and indigos
    "itemknn": "#818CF8", "userknn": "#A5B4FC", "bpr": "#4F46E5", "ease": "#3730A3",
    "lightgcn": "#0EA5E9",
    # content: ambers and oranges
    "content-image": "#FBBF24", "content-text": "#F59E0B", "content": "#D97706",
    "content-knn": "#F97316", "content-lr": "#B45309",
    # fusion: pinks
    "early-fusion": "#F9A8D4", "late-fusion": "#EC4899", "attention-fusion": "#9D174D",
}
"""One colour per model on every tab: the family's hue, a shade per model."""

AXIS_FORMAT = ".2f"

METRIC_HELP = {
    "auc": "chance that a product the shopper chose is ranked above one they did not, over "
           "the whole catalog, not only the top K (0.5 = random order)",
    "precision": "share of the K picks the shopper went on to choose",
    "recall": "share of what the shopper went on to choose that is among the K picks",
    "f1": "harmonic mean of precision and recall",
    "ndcg": "like recall, but a hit near the top counts more (1 = perfect order)",
    "hit_rate": "share of shoppers with at least one chosen product among the K picks",
    "map": "mean average precision: precision at each hit, averaged",
    "mrr": "1 / rank of the first hit, averaged over shoppers",
    "coverage": "share of the catalog that appears in anyone's K picks",
    "diversity": "how different a shopper's K picks look from each other (1 − mean cosine of "
                 "their photo+text vectors)",
    "novelty": "how far from the bestsellers the picks are (mean −log2 popularity, bits)",
    "cold_share": "share of the picks that nobody has interacted with yet",
}
SLICE_LABELS = {"all": "All test shoppers", "short_history": "Short histories (≤ 5 items)",
                "cold_items": "Cold-start items only"}


def model_colour(name: str) -> str:
    """The model's colour on every chart (a stable palette colour for unknown names)."""
    return MODEL_COLOURS.get(name) or PALETTE[zlib.crc32(str(name).encode()) % len(PALETTE)]


def _layout(fig: go.Figure, height: int = 360, legend: bool = True, top: int = 80
            ) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=10, r=20, t=top, b=10),
                      plot_bgcolor="white", paper_bgcolor="white", showlegend=legend,
                      font=dict(size=12), legend=dict(orientation="h", y=-0.18),
                      hoverlabel=dict(namelength=-1))
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True, gridcolor="#EEF2F7", zeroline=False)
    return fig


def _title(metric: str, k: int | None, note: str = "") -> dict:
    """A chart title with the metric's definition underneath, on the chart itself."""
    name = METRIC_LABELS.get(metric, metric) + ("" if k is None else f" @{k}")
    return dict(text=f"<b>{name}</b>",
                subtitle=dict(text=_wrap(METRIC_HELP.get(metric, ""), note),
                              font=dict(size=11, color="#64748B")))


def _wrap(*parts: str, width: int = 78) -> str:
    """Subtitle lines short enough for a half-width chart (plotly does not wrap)."""
    lines = [line for part in parts if part for line in textwrap.wrap(part, width)]
    return "<br>".join(lines)


def _top(title: dict, extra: int = 0) -> int:
    """Top margin that fits a title and its subtitle lines (plus subplot titles)."""
    lines = title.get("subtitle", {}).get("text", "").count("<br>") + 1
    return 64 + 20 * lines + extra


def _pick(frame: pd.DataFrame, metric: str, k: int | None, slice_: str = "all"
          ) -> pd.DataFrame:
    sel = frame[(frame["metric"] == metric)]
    if "slice" in sel:
        sel = sel[sel["slice"] == slice_]
    return sel[sel["k"].isna()] if k is None else sel[sel["k"] == k]


def _errors(sel: pd.DataFrame) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    """Error bar lengths (plus, minus) from ± std over folds or the 95% interval."""
    value = sel["value"].to_numpy(dtype=float)
    if "std" in sel and sel["std"].notna().any():
        std = sel["std"].fillna(0).to_numpy(dtype=float)
        return std, std, "± std over folds"
    if "ci_low" in sel and sel["ci_low"].notna().any():
        high = np.clip(sel["ci_high"].to_numpy(dtype=float) - value, 0, None)
        low = np.clip(value - sel["ci_low"].to_numpy(dtype=float), 0, None)
        return np.nan_to_num(high), np.nan_to_num(low), "error bars: 95% interval"
    return None, None, ""


def not_significant(sel: pd.DataFrame) -> np.ndarray:
    """Rows compared with a baseline whose difference is not significant (a p-value, not
    below `stats.ALPHA`); rows without a test are not marked."""
    if "p_value" not in sel:
        return np.zeros(len(sel), dtype=bool)
    p = sel["p_value"].to_numpy(dtype=float)
    return np.isfinite(p) & ~is_significant(p)


def metric_bars(frame: pd.DataFrame, metric: str, k: int | None) -> go.Figure:
    """One horizontal bar per model for a metric at K (best on top), from zero, with error
    bars; hatched + "n.s." where the difference from the baseline is not significant.

    `frame`: model, metric, k, value (+ slice, ci_low, ci_high, std, baseline, p_value).
    """
    sel = _pick(frame, metric, k).sort_values("value", ascending=True)
    plus, minus, error_note = _errors(sel)
    weak = not_significant(sel)
    baseline = sel["baseline"].dropna() if "baseline" in sel else pd.Series(dtype=object)
    base = baseline.iloc[0] if len(baseline) else None
    labels = [display_name(m) for m in sel["model"]]
    text = []
    for m, v, w in zip(sel["model"], sel["value"], weak):
        tag = " · baseline" if m == base else (" · n.s." if w else "")
        text.append(f"{v:.3f}{tag}")
    bar = go.Bar(y=labels, x=sel["value"], orientation="h",
                 marker=dict(color=[model_colour(m) for m in sel["model"]],
                             pattern=dict(shape=["/" if w else "" for w in weak],
                                          fgcolor="white", solidity=0.4)),
                 customdata=np.column_stack([sel["model"].astype(str)]),
                 hovertemplate="%{y} (%{customdata[0]}): %{x:.4f}<extra></extra>")
    if plus is not None:
        bar.error_x = dict(type="data", symmetric=False, array=plus, arrayminus=minus,
                           color="#334155", thickness=1.2, width=3)
    ends = sel["value"].to_numpy(dtype=float) + (0 if plus is None else plus)
    fig = go.Figure([bar, go.Scatter(   # the value just past the error bar, never on it
        y=labels, x=ends, mode="text", text=text, textposition="middle right",
        textfont=dict(size=11, color="#334155"), hoverinfo="skip", showlegend=False,
        cliponaxis=False)])
    notes = [n for n in (error_note, f"hatched, n.s.: not significantly different from "
                                     f"{display_name(base)}" if weak.any() and base else "")
             if n]
    top = float(np.nanmax(ends)) if len(sel) else 1.0
    title = _title(metric, k, "; ".join(notes))
    fig.update_layout(title=title)
    fig.update_xaxes(rangemode="tozero", range=[0, top * 1.35 if top > 0 else 1],
                     tickformat=AXIS_FORMAT, showgrid=True, gridcolor="#EEF2F7")
    _layout(fig, max(260, 30 * len(sel) + 140), legend=False, top=_top(title))
    return fig


def metric_at_k(frame: pd.DataFrame, metric: str) -> go.Figure:
    """Metric against K, one line per model (its colour), from zero, with error bars."""
    sel = frame[(frame["metric"] == metric) & frame["k"].notna()]
    if "slice" in sel:
        sel = sel[sel["slice"] == "all"]
    sel = sel.sort_values("k")
    fig = go.Figure()
    for model, rows in sel.groupby("model", sort=False):
        plus, minus, _ = _errors(rows)
        fig.add_trace(go.Scatter(
            x=rows["k"], y=rows["value"], name=display_name(model), mode="lines+markers",
            line=dict(color=model_colour(model), width=2),
            error_y=None if plus is None else dict(type="data", symmetric=False, array=plus,
                                                   arrayminus=minus, thickness=1, width=3),
            hovertemplate=f"{display_name(model)}: %{{y:.4f}} at K=%{{x}}<extra></extra>"))
    title = _title(metric, None, "error bars: 95% interval over shoppers")
    fig.update_layout(title=title)
    fig.update_xaxes(title_text="K (list length)", tickvals=sorted(sel["k"].unique()))
    fig.update_yaxes(rangemode="tozero", tickformat=AXIS_FORMAT)
    return _layout(fig, 440, top=_top(title))


def slice_bars(frame: pd.DataFrame, metric: str, k: int) -> go.Figure:
    """A metric per model in each slice (all shoppers, short histories, cold-start items):
    one panel per slice, the models in their colours, from zero, with error bars."""
    slices = [s for s in ("all", "short_history", "cold_items") if s in set(frame["slice"])]
    order = _pick(frame, metric, k).sort_values("value")["model"].tolist()
    def heading(slice_: str) -> str:
        users = _pick(frame, metric, k, slice_)["users"] if "users" in frame else []
        count = f" ({int(users.max()):,} shoppers)" if len(users) and users.notna().any() \
            else ""
        return SLICE_LABELS.get(slice_, slice_) + count

    fig = make_subplots(rows=1, cols=len(slices), shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=[heading(s) for s in slices])
    top = 0.0
    for col, slice_ in enumerate(slices, 1):
        sel = _pick(frame, metric, k, slice_).set_index("model").reindex(order).dropna(
            subset=["value"]).reset_index()
        plus, minus, _ = _errors(sel)
        fig.add_trace(go.Bar(
            y=[display_name(m) for m in sel["model"]], x=sel["value"], orientation="h",
            marker_color=[model_colour(m) for m in sel["model"]], showlegend=False,
            error_x=None if plus is None else dict(type="data", symmetric=False, array=plus,
                                                   arrayminus=minus, thickness=1, width=2),
            hovertemplate="%{y}: %{x:.4f}<extra>" + SLICE_LABELS.get(slice_, slice_)
                          + "</extra>"), row=1, col=col)
        if len(sel):
            top = max(top, float(np.nanmax(sel["value"] + (0 if plus is None else plus))))
    fig.update_xaxes(rangemode="tozero", range=[0, top * 1.1 if top > 0 else 1],
                     tickformat=AXIS_FORMAT)
    title = _title(metric, k, "cold-start items have no training interactions: only photo "
                              "and text reach them" if "cold_items" in slices else "")
    fig.update_layout(title=title)
    return _layout(fig, max(320, 28 * len(order) + 190), legend=False, top=_top(title, 45))


def beyond_accuracy(frame: pd.DataFrame, k: int) -> go.Figure:
    """Coverage, diversity and novelty at K per model side by side (model colours, from 0)."""
    metrics = [m for m in ("coverage", "diversity", "novelty") if len(_pick(frame, m, k))]
    order = _pick(frame, metrics[0], k).sort_values("value")["model"].tolist() if metrics \
        else []
    titles = {"coverage": f"Catalog coverage@{k}", "diversity": f"Intra-list diversity@{k}",
              "novelty": f"Novelty@{k} (bits)"}
    fig = make_subplots(rows=1, cols=max(1, len(metrics)), shared_yaxes=True,
                        horizontal_spacing=0.05, subplot_titles=[titles[m] for m in metrics])
    for col, metric in enumerate(metrics, 1):
        sel = _pick(frame, metric, k).set_index("model").reindex(order).dropna(
            subset=["value"]).reset_index()
        fig.add_trace(go.Bar(y=[display_name(m) for m in sel["model"]], x=sel["value"],
                             orientation="h", showlegend=False,
                             marker_color=[model_colour(m) for m in sel["model"]],
                             hovertemplate="%{y}: %{x:.3f}<extra>" + titles[metric]
                                           + "</extra>"), row=1, col=col)
        fig.update_xaxes(rangemode="tozero", tickformat=".2f" if metric != "novelty" else
                         ".1f", row=1, col=col)
    title = dict(text="<b>Beyond accuracy</b>",
                 subtitle=dict(text=_wrap("coverage: " + METRIC_HELP["coverage"],
                                          "diversity: " + METRIC_HELP["diversity"],
                                          "novelty: " + METRIC_HELP["novelty"], width=120),
                               font=dict(size=11, color="#64748B")))
    fig.update_layout(title=title)
    return _layout(fig, max(320, 28 * len(order) + 200), legend=False, top=_top(title, 45))


def diversity_tradeoff(effect: pd.DataFrame, k: int) -> go.Figure:
    """What MMR re-ranking does: each model's NDCG@k (y) against its intra-list diversity@k
    (x), one point per diversity level joined by a line, both axes from zero."""
    fig = go.Figure()
    sel = effect[effect["k"] == k]
    for model, rows in sel.groupby("model", sort=False):
        wide = rows.pivot_table(index="diversity", columns="metric", values="value")
        if not {"ndcg", "diversity"} <= set(wide.columns):
            continue
        wide = wide.sort_index()
        name = display_name(model)
        fig.add_trace(go.Scatter(
            x=wide["diversity"], y=wide["ndcg"], name=name, mode="lines+markers+text",
            text=[f"{d:g}" for d in wide.index], textposition="top center",
            line=dict(color=model_colour(model), width=2), marker=dict(size=9),
            hovertemplate=f"{name}, level %{{text}}: ranking quality %{{y:.4f}}, diversity "
                          "%{x:.3f}<extra></extra>"))
    title = dict(text=f"<b>Relevance vs variety</b> (ranking quality, NDCG@{k}, against "
                      f"intra-list diversity@{k})",
                 subtitle=dict(text="each point is a re-ranking level (0 = the model's own "
                                    "order, 1 = most varied); left to right = more varied lists",
                               font=dict(size=11, color="#64748B")))
    fig.update_layout(title=title)
    fig.update_xaxes(title_text=f"intra-list diversity@{k}", rangemode="tozero",
                     tickformat=AXIS_FORMAT)
    fig.update_yaxes(title_text=f"ranking quality (NDCG@{k})", rangemode="tozero",
                     tickformat=AXIS_FORMAT)
    return _layout(fig, 440)


def training_curves(epochs: pd.DataFrame, title: str = "Training curves") -> go.Figure:
    """Two panels side by side: train / validation loss per epoch (left) and validation
    ranking quality (NDCG@20, right), each on its own axis from zero (never two scales
    overlaid on one plot)."""
    metric_col = next((c for c in epochs.columns if c.startswith("val_ndcg")), None)
    has_metric = bool(metric_col and epochs[metric_col].notna().any())
    fig = make_subplots(rows=1, cols=2 if has_metric else 1, horizontal_spacing=0.12,
                        subplot_titles=("Loss (lower is better)",
                                        "Validation quality (higher is better)")
                        [:2 if has_metric else 1])
    mode = "lines+markers" if len(epochs) > 1 else "markers"
    if "train_loss" in epochs and epochs["train_loss"].notna().any():
        fig.add_trace(go.Scatter(x=epochs["epoch"], y=epochs["train_loss"], name="train loss",
                                 mode=mode, line=dict(color="#6366F1")), row=1, col=1)
    if "val_loss" in epochs and epochs["val_loss"].notna().any():
        fig.add_trace(go.Scatter(x=epochs["epoch"], y=epochs["val_loss"], name="validation loss",
                                 mode=mode, line=dict(color="#F59E0B")), row=1, col=1)
    if has_metric:
        fig.add_trace(go.Scatter(x=epochs["epoch"], y=epochs[metric_col],
                                 name=metric_col.replace("val_", "validation "),
                                 mode=mode, line=dict(color="#10B981")), row=1, col=2)
        fig.update_yaxes(title_text="ranking quality (NDCG@20)", rangemode="tozero",
                         tickformat=".2~f", row=1, col=2)
    fig.update_xaxes(title_text="epoch", rangemode="tozero", dtick=None if len(epochs) > 10
                     else 1)
    fig.update_yaxes(title_text="loss", rangemode="tozero", tickformat=".2~f", row=1, col=1)
    fig.update_annotations(font_size=12)
    fig.update_layout(title=title)
    _layout(fig, 360)
    fig.update_layout(legend=dict(orientation="h", y=-0.32))
    return fig


def modality_weights(rows: Sequence[dict], labels: Sequence[str]) -> go.Figure:
    """Stacked horizontal bars: how much behaviour, photo and text drove each pick."""
    fig = go.Figure()
    named = list(dict.fromkeys(m for r in rows for m in r))       # any modality, by name
    mods = [m for m in ("cf", "image", "text") if m in named] + \
        [m for m in named if m not in ("cf", "image", "text")]
    for m in mods:
        vals = []
        for r in rows:
            total = sum(max(0.0, v) for v in r.values()) or 1.0
            vals.append(max(0.0, r.get(m, 0.0)) / total)
        fig.add_trace(go.Bar(y=list(labels), x=vals, orientation="h",
                             name=MODALITY_LABELS.get(m, m),
                             marker_color=modality_colour(m),
                             hovertemplate="%{y}: %{x:.0%}<extra>" + MODALITY_LABELS.get(m, m)
                                           + "</extra>"))
    fig.update_layout(barmode="stack", title="What drove each pick",
                      xaxis=dict(tickformat=".0%", range=[0, 1]))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, max(260, 26 * len(labels) + 110))


def category_mix(items: pd.DataFrame, column: str = "master_category", top: int = 6
                 ) -> go.Figure:
    """Donut of the catalog's categories: the `top` largest, the rest as "Other"; labels
    outside with room reserved for them (no clipping)."""
    return category_mix_counts(items[column].fillna("Other").value_counts(), column, top)


def category_mix_counts(counts: pd.Series, column: str = "master_category", top: int = 6
                        ) -> go.Figure:
    """`category_mix` from items per category (e.g. counted by the database)."""
    counts = counts.rename(index=lambda v: "Other" if v is None or v != v else v)
    counts = counts.groupby(level=0, sort=False).sum().sort_values(ascending=False,
                                                                     kind="stable")
    if len(counts) > top:
        counts = pd.concat([counts.iloc[:top],
                            pd.Series({"Other": counts.iloc[top:].sum()})])
    counts = counts.reset_index()
    counts.columns = [column, "items"]
    fig = px.pie(counts, names=column, values="items", hole=0.55,
                 color_discrete_sequence=PALETTE)
    fig.update_traces(textinfo="label+percent", textposition="outside", automargin=True,
                      sort=False, hovertemplate="%{label}: %{value:,} items<extra></extra>")
    fig.update_layout(title="Catalog mix")
    _layout(fig, 340, legend=False)
    fig.update_layout(margin=dict(l=40, r=40, t=60, b=30))
    return fig


def events_over_time(weekly: pd.DataFrame) -> go.Figure:
    """Stacked area of events per week (frame: week, event, events)."""
    fig = px.area(weekly, x="week", y="events", color="event",
                  color_discrete_map={"view": "#94A3B8", "cart": "#F59E0B",
                                      "purchase": "#10B981"})
    fig.update_layout(title="Shopper activity per week", legend_title_text="")
    fig.update_xaxes(title_text=None)
    fig.update_yaxes(rangemode="tozero")
    for week, days in partial_weeks(weekly):
        fig.add_vrect(x0=week - pd.Timedelta(days=3.5), x1=week + pd.Timedelta(days=3.5),
                      fillcolor="#E5E7EB", opacity=0.6, line_width=0, layer="below",
                      annotation_text=f"partial week ({days} d)", annotation_position="top",
                      annotation_font_size=10)
    return _layout(fig, 320)


def partial_weeks(weekly: pd.DataFrame) -> list[tuple[pd.Timestamp, int]]:
    """The first and last weeks that the data covers only in part: (week start, days with
    data), from the frame's first_ts / last_ts columns (none without them)."""
    if weekly.empty or "last_ts" not in weekly or "first_ts" not in weekly:
        return []
    weeks = pd.to_datetime(weekly["week"])
    first, last = weeks.min(), weeks.max()
    first_ts, last_ts = pd.Timestamp(weekly["first_ts"].iloc[0]), \
        pd.Timestamp(weekly["last_ts"].iloc[0])
    out = []
    covered = (first + pd.Timedelta(days=7) - first_ts.normalize()).days
    if covered < 7:
        out.append((first, covered))
    covered = (last_ts.normalize() - last).days + 1
    if covered < 7 and last != first:
        out.append((last, covered))
    return out


# -- the catalog map and the A/B test -----------------------------------------------------------
MAP_OTHER = "other"
MAP_MAX_GROUPS = 20


def catalog_map(points: pd.DataFrame, colour: str, clusters: pd.DataFrame | None = None,
                overlay: dict | None = None, images: Sequence[dict] = (),
                title: str = "") -> go.Figure:
    """The products as a scatter map coloured by `colour` (a column of `points`: x, y,
    item_id, title...; the 20 most common values, the rest "other"), cluster names at their
    centres, a shopper's history (stars) and picks (diamonds) on top, and `images`
    (plotly layout images: small photos placed at their products' positions)."""
    frame = points.copy()
    values = frame[colour].fillna(MAP_OTHER).astype(str)
    if colour == "cluster_name" and "cluster" in frame:
        values = (frame["cluster"] + 1).astype(str) + " · " + values
    common = values.value_counts().index[:MAP_MAX_GROUPS]
    frame["_group"] = values.where(values.isin(common), MAP_OTHER)
    hover = ("<b>%{customdata[1]}</b><br>%{customdata[2]}<br>cluster: %{customdata[3]}"
             "<extra></extra>")
    fig = go.Figure()
    palette = px.colors.qualitative.Dark24 + px.colors.qualitative.Light24
    order = list(frame["_group"].value_counts().index)
    for n, group in enumerate(order):
        sel = frame[frame["_group"] == group]
        fig.add_trace(go.Scattergl(
            x=sel["x"], y=sel["y"], mode="markers", name=str(group)[:40],
            marker=dict(size=5, opacity=0.75,
                        color="#CBD5E1" if group == MAP_OTHER else palette[n % len(palette)]),
            customdata=_map_customdata(sel), hovertemplate=hover))
    if clusters is not None and len(clusters):
        for r in clusters.to_dict("records"):
            fig.add_annotation(x=r["x"], y=r["y"], text=f"{int(r['cluster']) + 1} · {r['name']}",
                               showarrow=False, yshift=30, font=dict(size=10, color="#111827"),
                               bgcolor="rgba(255,255,255,0.85)", borderpad=2)
    overlay = overlay or {}
    by_id = frame.set_index("item_id")
    for key, symbol, colour_, label in (("history", "star", "#111827", "history"),
                                        ("picks", "diamond", "#DC2626", "picks")):
        ids = [i for i in overlay.get(key, []) if i in by_id.index]
        if ids:
            sel = by_id.loc[ids].reset_index()
            fig.add_trace(go.Scatter(
                x=sel["x"], y=sel["y"], mode="markers", name=f"{label} ({len(ids)})",
                marker=dict(symbol=symbol, size=13, color=colour_,
                            line=dict(width=1.5, color="white")),
                customdata=_map_customdata(sel), hovertemplate=hover))
    if images:
        fig.update_layout(images=list(images))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x", scaleratio=1)
    fig.update_layout(title=title, height=720, margin=dict(l=10, r=10, t=40, b=10),
                      plot_bgcolor="white", paper_bgcolor="white", dragmode="lasso",
                      legend=dict(font=dict(size=10), itemsizing="constant"))
    return fig


def _map_customdata(frame: pd.DataFrame) -> list[list]:
    def col(name: str) -> list:
        return list(frame[name].fillna("").astype(str)) if name in frame else [""] * len(frame)

    kind = [" · ".join(x for x in parts if x) for parts in
            zip(col("article_type"), col("base_colour"), col("gender"))]
    return [list(r) for r in zip(col("item_id"), col("title"), kind, col("cluster_name"))]


def purity_bars(frame: pd.DataFrame) -> go.Figure:
    """Cluster purity of photo, text and fused vectors at each k (frame: vectors, k, purity)."""
    fig = px.bar(frame.assign(k=frame["k"].astype(str) + " clusters"), x="k", y="purity",
                 color="vectors", barmode="group", text_auto=".3f",
                 color_discrete_map={"fused": "#6366F1", "image": "#F59E0B",
                                     "text": "#10B981"},
                 labels={"k": "", "purity": "purity against article type"})
    fig.update_layout(title="Which vectors group products by type best")
    return _layout(fig, 320)


def ab_rates(rows: Sequence[dict]) -> go.Figure:
    """Per metric and arm: the rate with its confidence interval (rows: metric, arm, rate,
    low, high)."""
    frame = pd.DataFrame(rows)
    fig = go.Figure()
    for arm, colour in (("A", "#94A3B8"), ("B", "#6366F1")):
        sel = frame[frame["arm"] == arm]
        fig.add_trace(go.Bar(
            x=sel["metric"], y=sel["rate"], name=sel["label"].iloc[0] if len(sel) else arm,
            marker_color=colour,
            error_y=dict(type="data", symmetric=False, array=sel["high"] - sel["rate"],
                         arrayminus=sel["rate"] - sel["low"]),
            text=[f"{v:.2%}" for v in sel["rate"]], textposition="inside",
            insidetextanchor="start", hovertemplate="%{x}: %{y:.3%}<extra></extra>"))
    fig.update_layout(barmode="group", title="Per visit, with confidence intervals",
                      yaxis=dict(tickformat=".0%"))
    return _layout(fig, 340)


def offline_online(rows: Sequence[dict], title: str = "B compared with A") -> go.Figure:
    """B's relative difference to A (rows: what, lift); one chart per kind of evidence (the
    A/B page draws offline and online apart)."""
    frame = pd.DataFrame(rows)
    colours = ["#F59E0B", "#6366F1", "#10B981"][:len(frame)]
    fig = go.Figure(go.Bar(x=frame["what"], y=frame["lift"], marker_color=colours,
                           text=[f"{v:+.1%}" for v in frame["lift"]], textposition="outside",
                           cliponaxis=False, hovertemplate="%{x}: %{y:+.2%}<extra></extra>"))
    fig.add_hline(y=0, line_color="#111827", line_width=1)
    fig.update_layout(title=title, yaxis=dict(tickformat="+.0%"))
    return _layout(fig, 320, legend=False)


def cold_start(frame: pd.DataFrame, metric: str = "ndcg") -> go.Figure:
    """A metric against the number of liked products, one line per model (frame: model,
    history, metric, k, value)."""
    sel = frame[frame["metric"] == metric].sort_values("history")
    k = int(sel["k"].iloc[0]) if len(sel) else 20
    fig = px.line(sel, x="history", y="value", color="model", markers=True,
                  color_discrete_sequence=PALETTE,
                  labels={"history": "liked products", "value": f"{metric.upper()}@{k}"})
    fig.update_xaxes(dtick=1)
    fig.update_layout(title=f"New shoppers: {metric.upper()}@{k} by the number of likes "
                            f"({int(sel['users'].iloc[0]) if len(sel) else 0} shoppers)")
    return _layout(fig, 320)
