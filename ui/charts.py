"""Plotly figures of the dashboard (pure functions of data frames, easy to test)."""

from __future__ import annotations

from typing import Sequence

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .components import MODALITY_COLOURS, MODALITY_LABELS

PALETTE = px.colors.qualitative.Bold
FAMILY_COLOURS = {"baseline": "#94A3B8", "collaborative": "#6366F1", "content": "#F59E0B",
                  "fusion": "#EC4899"}

METRIC_LABELS = {"auc": "Accuracy (AUC)", "precision": "Precision", "recall": "Recall",
                 "f1": "F1", "ndcg": "NDCG", "hit_rate": "Hit rate", "map": "MAP", "mrr": "MRR",
                 "coverage": "Catalog coverage", "diversity": "Intra-list diversity",
                 "novelty": "Novelty", "cold_share": "Cold-item share"}


def _layout(fig: go.Figure, height: int = 360, legend: bool = True) -> go.Figure:
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10),
                      plot_bgcolor="white", paper_bgcolor="white", showlegend=legend,
                      font=dict(size=12), legend=dict(orientation="h", y=-0.2))
    fig.update_yaxes(gridcolor="#EEF2F7", zeroline=False)
    return fig


def metric_bars(frame: pd.DataFrame, metric: str, k: int | None, family: dict[str, str] | None
                = None) -> go.Figure:
    """One bar per model for a metric at K (frame: model, metric, k, value), best first."""
    sel = frame[frame["metric"] == metric]
    sel = sel[sel["k"].isna()] if k is None else sel[sel["k"] == k]
    sel = sel.sort_values("value", ascending=False)
    colours = [FAMILY_COLOURS.get((family or {}).get(m, ""), "#6366F1") for m in sel["model"]]
    title = METRIC_LABELS.get(metric, metric) + ("" if k is None else f"@{k}")
    fig = go.Figure(go.Bar(x=sel["model"], y=sel["value"], marker_color=colours,
                           text=[f"{v:.3f}" for v in sel["value"]], textposition="outside",
                           cliponaxis=False, hovertemplate="%{x}: %{y:.4f}<extra></extra>"))
    fig.update_layout(title=title)
    return _layout(fig, 340, legend=False)


def metric_at_k(frame: pd.DataFrame, metric: str) -> go.Figure:
    """Metric against K, one line per model."""
    sel = frame[(frame["metric"] == metric) & frame["k"].notna()].sort_values("k")
    fig = px.line(sel, x="k", y="value", color="model", markers=True,
                  color_discrete_sequence=PALETTE,
                  labels={"k": "K (list length)", "value": METRIC_LABELS.get(metric, metric)})
    fig.update_layout(title=f"{METRIC_LABELS.get(metric, metric)} at K")
    return _layout(fig)


def slice_bars(frame: pd.DataFrame, metric: str, k: int) -> go.Figure:
    """A metric per model and slice (all users, short histories, cold-start items)."""
    sel = frame[(frame["metric"] == metric) & (frame["k"] == k)]
    names = {"all": "all test items", "short_history": "users with short histories",
             "cold_items": "cold-start items"}
    sel = sel.assign(slice=sel["slice"].map(lambda s: names.get(s, s)))
    fig = px.bar(sel, x="model", y="value", color="slice", barmode="group",
                 color_discrete_sequence=["#6366F1", "#F59E0B", "#EC4899"],
                 labels={"value": f"{METRIC_LABELS.get(metric, metric)}@{k}", "model": ""})
    fig.update_layout(title=f"{METRIC_LABELS.get(metric, metric)}@{k} by slice")
    return _layout(fig)


def beyond_accuracy(frame: pd.DataFrame, k: int) -> go.Figure:
    """Coverage, diversity and novelty per model side by side."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=[
        f"Catalog coverage@{k}", "Intra-list diversity", "Novelty (bits)"])
    for col, metric in enumerate(("coverage", "diversity", "novelty"), 1):
        sel = frame[(frame["metric"] == metric) & (frame["slice"] == "all")]
        if metric == "coverage":
            sel = sel[sel["k"] == k]
        else:
            sel = sel.sort_values("k").groupby("model", as_index=False).last()
        fig.add_trace(go.Bar(x=sel["model"], y=sel["value"], marker_color=PALETTE[col],
                             showlegend=False, hovertemplate="%{x}: %{y:.3f}<extra></extra>"),
                      row=1, col=col)
    return _layout(fig, 340, legend=False)


def training_curves(epochs: pd.DataFrame, title: str = "Training curves") -> go.Figure:
    """Train / validation loss per epoch, validation NDCG@20 on a second axis."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    if "train_loss" in epochs and epochs["train_loss"].notna().any():
        fig.add_trace(go.Scatter(x=epochs["epoch"], y=epochs["train_loss"], name="train loss",
                                 mode="lines+markers", line=dict(color="#6366F1")))
    if "val_loss" in epochs and epochs["val_loss"].notna().any():
        fig.add_trace(go.Scatter(x=epochs["epoch"], y=epochs["val_loss"], name="validation loss",
                                 mode="lines+markers", line=dict(color="#F59E0B")))
    metric_col = next((c for c in epochs.columns if c.startswith("val_ndcg")), None)
    if metric_col and epochs[metric_col].notna().any():
        fig.add_trace(go.Scatter(x=epochs["epoch"], y=epochs[metric_col],
                                 name=metric_col.replace("val_", "validation "),
                                 mode="lines+markers", line=dict(color="#10B981", dash="dot")),
                      secondary_y=True)
        fig.update_yaxes(title_text="validation NDCG@20", secondary_y=True, showgrid=False)
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="loss", secondary_y=False)
    fig.update_layout(title=title)
    return _layout(fig, 340)


def modality_weights(rows: Sequence[dict], labels: Sequence[str]) -> go.Figure:
    """Stacked horizontal bars: how much behaviour, photo and text drove each pick."""
    fig = go.Figure()
    mods = [m for m in ("cf", "image", "text") if any(m in r for r in rows)]
    for m in mods:
        vals = []
        for r in rows:
            total = sum(max(0.0, v) for v in r.values()) or 1.0
            vals.append(max(0.0, r.get(m, 0.0)) / total)
        fig.add_trace(go.Bar(y=list(labels), x=vals, orientation="h",
                             name=MODALITY_LABELS.get(m, m),
                             marker_color=MODALITY_COLOURS.get(m, "#999"),
                             hovertemplate="%{y}: %{x:.0%}<extra>" + MODALITY_LABELS.get(m, m)
                                           + "</extra>"))
    fig.update_layout(barmode="stack", title="What drove each pick",
                      xaxis=dict(tickformat=".0%", range=[0, 1]))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, max(260, 26 * len(labels) + 110))


def category_mix(items: pd.DataFrame, column: str = "master_category") -> go.Figure:
    counts = items[column].fillna("other").value_counts().reset_index()
    counts.columns = [column, "items"]
    fig = px.pie(counts, names=column, values="items", hole=0.55,
                 color_discrete_sequence=PALETTE)
    fig.update_traces(textinfo="label+percent", textposition="outside")
    fig.update_layout(title="Catalog mix")
    return _layout(fig, 320, legend=False)


def events_over_time(weekly: pd.DataFrame) -> go.Figure:
    """Stacked area of events per week (frame: week, event, events)."""
    fig = px.area(weekly, x="week", y="events", color="event",
                  color_discrete_map={"view": "#94A3B8", "cart": "#F59E0B",
                                      "purchase": "#10B981"})
    fig.update_layout(title="Shopper activity per week")
    return _layout(fig, 320)


# -- the catalog map and the A/B test (issue-novel) ---------------------------------------------
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
            text=[f"{v:.2%}" for v in sel["rate"]], textposition="outside",
            hovertemplate="%{x}: %{y:.3%}<extra></extra>"))
    fig.update_layout(barmode="group", title="Per visit, with confidence intervals",
                      yaxis=dict(tickformat=".0%"))
    return _layout(fig, 340)


def offline_online(rows: Sequence[dict]) -> go.Figure:
    """B's relative difference to A offline (NDCG) and online (observed and true lift)."""
    frame = pd.DataFrame(rows)
    colours = ["#F59E0B", "#6366F1", "#10B981"][:len(frame)]
    fig = go.Figure(go.Bar(x=frame["what"], y=frame["lift"], marker_color=colours,
                           text=[f"{v:+.1%}" for v in frame["lift"]], textposition="outside",
                           cliponaxis=False, hovertemplate="%{x}: %{y:+.2%}<extra></extra>"))
    fig.add_hline(y=0, line_color="#111827", line_width=1)
    fig.update_layout(title="B compared with A", yaxis=dict(tickformat="+.0%"))
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
