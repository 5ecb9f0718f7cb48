"""Plotly figures of the dashboard (pure functions of data frames, easy to test)."""

from __future__ import annotations

from typing import Sequence

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .components import MODALITY_LABELS, modality_colour

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
