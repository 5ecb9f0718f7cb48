"""Evaluate: compare models on the held-out test split, with charts, slices and the numbers."""

import pandas as pd
import streamlit as st

from recsys import usecases
from recsys.errors import RecsysError
from recsys.interactions import PROTOCOL_HELP, PROTOCOLS
from ui import charts, components, resources

HEADLINE = ("auc", "precision", "recall", "f1", "ndcg", "hit_rate")

components.page_setup("Evaluate", "Every model ranks all items for each test user (training "
                                  "items excluded); the numbers are on the held-out test split.")
dataset = components.require_dataset()
store = resources.get_store()
specs = usecases.list_models()
family = {m["name"]: m["family"] for m in specs}
requires = {m["name"]: tuple(m["requires"]) for m in specs}
runs = usecases.list_runs(store, dataset)

with st.expander("Evaluate models", expanded=runs.empty or st.session_state.get("ev_open", False)):
    trained = sorted(set(runs["model"])) if not runs.empty else []
    choose = st.multiselect("Models", sorted(family), default=trained or None, key="ev_models",
                            help="Models without a trained run on this split are trained first.")
    c1, c2 = st.columns(2)
    protocol = c1.selectbox("Split", PROTOCOLS, key="ev_protocol", help=PROTOCOL_HELP)
    ks = c2.multiselect("K", [1, 5, 10, 20, 50, 100], default=[5, 10, 20], key="ev_ks")
    if st.button("Run evaluation", type="primary", icon=":material/play_arrow:",
                 disabled=not choose or not ks):
        panel = components.ProgressPanel("Evaluating")
        try:
            usecases.evaluate(store, dataset, choose, sorted(ks), protocol, progress=panel)
            panel.done("Evaluation stored")
        except RecsysError as exc:
            components.error_box(exc, "Evaluation failed")

metrics = usecases.evaluation_results(store, dataset)
if metrics.empty:
    st.info("No evaluation yet: choose models above and run one.", icon=":material/leaderboard:")
    st.stop()

protocols = sorted(metrics["protocol"].unique())
top = st.columns([1, 1, 3])
shown_protocol = top[0].selectbox("Results of split", protocols, key="ev_show_protocol")
metrics = metrics[metrics["protocol"] == shown_protocol]
k_values = sorted(int(k) for k in metrics["k"].dropna().unique())
k = top[1].selectbox("K", k_values, index=k_values.index(20) if 20 in k_values else
                     len(k_values) - 1, key="ev_k")
models = sorted(metrics["model"].unique(), key=lambda m: (family.get(m, ""), m))
picked = top[2].multiselect("Models shown", models, default=models, key="ev_shown")
metrics = metrics[metrics["model"].isin(picked)]
overall = metrics[metrics["slice"] == "all"]

ndcg = overall[(overall["metric"] == "ndcg") & (overall["k"] == k)].set_index("model")["value"]
if len(ndcg):
    single = ndcg[[m for m in ndcg.index if len(requires.get(m, ())) == 1]]
    fusion = ndcg[[m for m in ndcg.index if family.get(m) == "fusion"]]
    cols = st.columns(3)
    cols[0].metric(f"Best NDCG@{k}", f"{ndcg.max():.4f}", border=True)
    cols[0].caption(ndcg.idxmax())
    if len(single):
        cols[1].metric(f"Best single-signal NDCG@{k}", f"{single.max():.4f}", border=True)
        cols[1].caption(f"{single.idxmax()} (one of behaviour, photo or text)")
    if len(fusion) and len(single):
        gain = fusion.max() / single.max() - 1 if single.max() > 0 else float("nan")
        cols[2].metric("Fusion gain", f"{gain:+.1%}", border=True,
                       help="best fusion model over the best single-signal model")
        cols[2].caption(f"{fusion.idxmax()} vs {single.idxmax()}")

# stateful tabs: only the open one is drawn (each plotly chart costs the browser ~100 ms)
tabs = st.tabs(["Overview", "Metric at K", "Slices", "Coverage & diversity", "Training curves",
                  "Table"], key="ev_tab", on_change="rerun")
with tabs[0]:
    if tabs[0].open:
        st.caption("Bar colours: fusion pink, content amber, collaborative indigo, baselines grey. "
                   "Accuracy (AUC) = share of held-out items ranked above a random unseen item.")
        grid = st.columns(3)
        for n, metric in enumerate(HEADLINE):
            grid[n % 3].plotly_chart(
                charts.metric_bars(overall, metric, None if metric == "auc" else k, family),
                width="stretch", key=f"ev_bar_{metric}")
with tabs[1]:
    if tabs[1].open:
        metric = st.segmented_control("Metric", ["ndcg", "recall", "precision", "f1", "hit_rate",
                                                 "map", "mrr"], default="ndcg", key="ev_curve_m",
                                      format_func=lambda m: charts.METRIC_LABELS.get(m, m))
        st.plotly_chart(charts.metric_at_k(overall, metric or "ndcg"), width="stretch")
with tabs[2]:
    if tabs[2].open:
        st.caption("Cold-start items have no training interactions, so only photo and text signals "
                   "can reach them; short histories are users with at most 5 training items.")
        c1, c2 = st.columns(2)
        c1.plotly_chart(charts.slice_bars(metrics, "recall", k), width="stretch")
        c2.plotly_chart(charts.slice_bars(metrics, "ndcg", k), width="stretch")
with tabs[3]:
    if tabs[3].open:
        st.plotly_chart(charts.beyond_accuracy(metrics, k), width="stretch")
with tabs[4]:
    if tabs[4].open:
        run_ids = sorted(metrics["run_id"].unique())
        label = dict(zip(metrics["run_id"], metrics["model"]))
        chosen = st.multiselect("Runs", run_ids, default=run_ids[:2],
                                format_func=lambda r: f"{label[r]} · run {r}", key="ev_curves")
        cols = st.columns(2)
        for n, run in enumerate(chosen):
            frame = usecases.training_curve(store, int(run))
            if frame.empty:
                cols[n % 2].caption(f"{label[run]} (run {run}) is fitted in one step: no curve.")
            else:
                figure = charts.training_curves(frame, f"{label[run]} · run {run}")
                cols[n % 2].plotly_chart(figure,
                                         width="stretch", key=f"ev_curve_{run}")
with tabs[5]:
    if tabs[5].open:
        table = metrics.assign(metric_k=[m if pd.isna(k_) else f"{m}@{int(k_)}"
                                         for m, k_ in zip(metrics["metric"], metrics["k"])])
        wide = table.pivot_table(index=["model", "slice"], columns="metric_k", values="value")
        st.dataframe(wide.style.format("{:.4f}").highlight_max(axis=0, color="#E0E7FF"))
        st.download_button("Download all metrics (CSV)", metrics.to_csv(index=False),
                           file_name=f"metrics_{dataset}_{shown_protocol}.csv", mime="text/csv")
