"""Evaluate: how well each model finds what shoppers went on to choose, led by one plain
sentence; every number with its 95% interval and tested against the best single-signal model;
slices, diversity re-ranking, training curves and the table (ids only in its details)."""

import pandas as pd
import streamlit as st

from recsys import usecases
from recsys.core.errors import RecsysError
from recsys.data.export import to_csv_bytes
from recsys.data.interactions import PROTOCOL_HELP, PROTOCOLS
from ui import charts, components, resources

HEADLINE = ("ndcg", "recall", "precision", "f1", "hit_rate", "auc")
TABLE = (("ndcg", True), ("recall", True), ("precision", True), ("f1", True),
         ("hit_rate", True), ("map", True), ("mrr", True), ("auc", False),
         ("coverage", True), ("diversity", True), ("novelty", True))

components.page_setup("Evaluate", "Every model ranks the whole catalog for each test shopper "
                                  "(what they already had is left out); the numbers say how "
                                  "much of what they went on to choose it found.")
dataset = components.require_dataset()
store = resources.get_store()
specs = usecases.list_models()
family = {m["name"]: m["family"] for m in specs}
label = {m["name"]: m["label"] for m in specs}
iterative = {m["name"]: m["iterative"] for m in specs}


def name_of(model: str) -> str:
    return label.get(model, model)


lead = st.container()
runs = usecases.list_runs(store, dataset)
metrics = usecases.evaluation_results(store, dataset)

with st.expander("Run an evaluation", expanded=st.session_state.get("ev_open", False)):
    trained = sorted(set(runs["model"])) if not runs.empty else []
    choose = st.multiselect("Models", sorted(family, key=lambda m: (family[m], m)),
                            default=trained or None, key="ev_models", format_func=name_of,
                            help="Models without a trained run on this split are trained first. "
                                 "The best single-signal model among them is the baseline every "
                                 "other one is tested against (EASE is added when none is).")
    c1, c2, c3 = st.columns(3)
    protocol = c1.selectbox("Split", PROTOCOLS, key="ev_protocol", help=PROTOCOL_HELP)
    ks = c2.multiselect("K", [1, 5, 10, 20, 50, 100], default=[5, 10, 20], key="ev_ks")
    folds = c3.number_input("Cross-validation folds", 0, 20, 0, key="ev_folds",
                            help="0: one train/test split (with the diversity re-ranking "
                                 "measured too). 2-20: K-fold cross-validation over each "
                                 "shopper's interactions, every model fitted on every fold "
                                 "(mean ± std over folds; takes K times as long).")
    if st.button("Run evaluation", type="primary", icon=":material/play_arrow:",
                 disabled=not choose or not ks or folds == 1):
        panel = components.ProgressPanel("Evaluating")
        try:
            done = usecases.evaluate(store, dataset, choose, sorted(ks), protocol,
                                     progress=panel, folds=int(folds) if folds else None)
            panel.done("Evaluation stored")
            for note in done.attrs.get("notes", []):   # runs with a damaged model file
                st.info(note, icon=":material/info:")
            metrics = usecases.evaluation_results(store, dataset)
        except RecsysError as exc:
            components.error_box(exc, "Evaluation failed")

if metrics.empty:
    first = usecases.first_evaluation_models(store, dataset)
    with lead:
        st.info("No evaluation of this dataset yet. The first one compares "
                + ", ".join(name_of(m) for m in first)
                + " (models without a trained run are trained first).",
                icon=":material/leaderboard:")
        if st.button("Run the first evaluation", type="primary", icon=":material/play_arrow:",
                     key="ev_first"):
            panel = components.ProgressPanel("Evaluating")
            try:
                usecases.first_evaluation(store, dataset, progress=panel)
                panel.done("Evaluation stored")
                st.rerun()
            except RecsysError as exc:
                components.error_box(exc, "Evaluation failed")
    st.stop()

# -- what is shown ----------------------------------------------------------------------------
protocols = sorted(metrics["protocol"].unique(), key=lambda p: (p != "random", p))
top = st.columns([1, 1, 3])
shown_protocol = top[0].selectbox("Results of", protocols, key="ev_show_protocol",
                                  format_func=lambda p: f"{p} cross-validation" if "fold" in p
                                  else f"{p} split")
metrics = metrics[metrics["protocol"] == shown_protocol]
k_values = sorted(int(k) for k in metrics["k"].dropna().unique())
k = top[1].selectbox("K (list length)", k_values, index=k_values.index(20) if 20 in k_values
                     else len(k_values) - 1, key="ev_k")
models = sorted(metrics["model"].unique(), key=lambda m: (family.get(m, ""), m))
picked = top[2].multiselect("Models shown", models, default=models, key="ev_shown",
                            format_func=name_of)
metrics = metrics[metrics["model"].isin(picked)]
overall = metrics[metrics["slice"] == "all"]
baseline = overall["baseline"].dropna()
baseline = baseline.mode().iloc[0] if len(baseline) else None
folds_shown = "fold" in shown_protocol

# -- the lead: one sentence, three numbers ------------------------------------------------------
summary = usecases.evaluation_summary(store, dataset, shown_protocol, k)
ndcg = overall[(overall["metric"] == "ndcg") & (overall["k"] == k)].set_index("model")
with lead:
    if summary is not None:
        users = f"{summary.users:,} test shoppers" if summary.users else "the test shoppers"
        how = f"{shown_protocol} cross-validation" if folds_shown else f"{shown_protocol} split"
        st.markdown(f'<div class="rs-hero"><p style="font-size:1.15rem"><b>{summary.sentence}'
                    f'</b></p><p style="font-size:.85rem;color:#64748B;margin-top:6px">'
                    f'Measured on {users} ({how}), top {summary.k} of the whole catalog; '
                    'intervals are 95% bootstrap intervals over shoppers.</p></div>',
                    unsafe_allow_html=True)
    if len(ndcg):
        cols = st.columns(3)
        best = ndcg["value"].idxmax()
        cols[0].metric(f"Best NDCG@{k}", f"{ndcg.loc[best, 'value']:.3f}", border=True)
        spread = (f" · ± {ndcg.loc[best, 'std']:.3f} over folds"
                  if pd.notna(ndcg.loc[best, "std"]) else
                  f" · 95% CI {ndcg.loc[best, 'ci_low']:.3f}–{ndcg.loc[best, 'ci_high']:.3f}"
                  if pd.notna(ndcg.loc[best, "ci_low"]) else "")
        cols[0].caption(name_of(best) + spread)
        if baseline in ndcg.index:
            cols[1].metric(f"Best single-signal NDCG@{k}",
                           f"{ndcg.loc[baseline, 'value']:.3f}", border=True)
            cols[1].caption(f"{name_of(baseline)}: the baseline every model is tested against")
        fusion = [m for m in ndcg.index if family.get(m) == "fusion"]
        if fusion and baseline in ndcg.index:
            best_fusion = max(fusion, key=lambda m: ndcg.loc[m, "value"])
            row = ndcg.loc[best_fusion]
            if pd.notna(row["gain"]):
                cols[2].metric(f"Fusion gain in NDCG@{k}", f"{row['gain']:+.1%}", border=True,
                               help="best fusion model over the best single-signal model, "
                                    "on the same shoppers")
                verdict = "significant" if row["p_value"] < charts.SIGNIFICANCE else \
                    "not significant"
                cols[2].caption(f"{name_of(best_fusion)} · 95% CI {row['gain_low']:+.1%} to "
                                f"{row['gain_high']:+.1%} · {verdict} (p = "
                                f"{row['p_value']:.2g})")

# stateful tabs: only the open one is drawn (each plotly chart costs the browser ~100 ms)
tabs = st.tabs(["Overview", "Metric at K", "Slices", "Diversity", "Training curves", "Table"],
               key="ev_tab", on_change="rerun")
with tabs[0]:
    if tabs[0].open:
        note = ("Error bars: ± std over folds. " if folds_shown else
                "Error bars: 95% intervals over test shoppers. ")
        if baseline:
            note += (f"Each model is tested against {name_of(baseline)} on the same shoppers; "
                     "hatched bars marked n.s. are not significantly different from it "
                     "(paired t-test, p ≥ 0.05).")
        st.caption(note)
        grid = st.columns(2)
        for n, metric in enumerate(HEADLINE):
            grid[n % 2].plotly_chart(
                charts.metric_bars(overall, metric, None if metric == "auc" else k),
                width="stretch", key=f"ev_bar_{metric}")
with tabs[1]:
    if tabs[1].open:
        metric = st.segmented_control("Metric", ["ndcg", "recall", "precision", "f1", "hit_rate",
                                                 "map", "mrr"], default="ndcg", key="ev_curve_m",
                                      format_func=lambda m: charts.METRIC_LABELS.get(m, m))
        st.plotly_chart(charts.metric_at_k(overall, metric or "ndcg"), width="stretch")
with tabs[2]:
    if tabs[2].open:
        metric = st.segmented_control("Metric", ["recall", "ndcg"], default="recall",
                                      key="ev_slice_m",
                                      format_func=lambda m: charts.METRIC_LABELS.get(m, m))
        st.plotly_chart(charts.slice_bars(metrics, metric or "recall", k), width="stretch")
with tabs[3]:
    if tabs[3].open:
        effect = usecases.diversity_effect(store, dataset)
        if not effect.empty:
            effect = effect[(effect["protocol"] == shown_protocol)
                            & effect["model"].isin(picked)]
        if effect.empty:
            st.info("Diversity re-ranking is measured by an evaluation on one split of a "
                    "dataset with item vectors (run one above).", icon=":material/shuffle:")
        else:
            st.caption("The app can re-rank each list for variety (maximal marginal relevance "
                       "over the photo+text vectors: 0 keeps the model's order, 1 picks the "
                       "least similar product each time). This is what it costs in relevance "
                       "and buys in variety, measured like everything else on this page.")
            st.plotly_chart(charts.diversity_tradeoff(effect, k), width="stretch")
            rows = []
            at_k = effect[effect["k"] == k]
            for (model, level), part in sorted(at_k.groupby(["model", "diversity"]),
                                               key=lambda g: (models.index(g[0][0])
                                                              if g[0][0] in models else 99,
                                                              g[0][1])):
                cells = part.set_index("metric")

                def cell(metric: str, cells=cells, level=level) -> str:
                    if metric not in cells.index:
                        return "–"
                    r = cells.loc[metric]
                    text = f"{r['value']:.3f}"
                    if level > 0 and pd.notna(r["gain"]):
                        text += f" ({r['gain']:+.1%}" + (
                            "" if r["p_value"] < charts.SIGNIFICANCE else ", n.s.") + ")"
                    return text

                rows.append({"Model": name_of(model), "Level": f"{level:g}",
                             f"NDCG@{k}": cell("ndcg"), f"Recall@{k}": cell("recall"),
                             f"Diversity@{k}": cell("diversity"),
                             f"Coverage@{k}": cell("coverage")})
            st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                         height=35 * (len(rows) + 1) + 3)
            st.caption("In brackets: change against the same model's own list; n.s. = not "
                       "significant (paired t-test over shoppers, p ≥ 0.05).")
        st.plotly_chart(charts.beyond_accuracy(metrics, k), width="stretch")
with tabs[4]:
    if tabs[4].open:
        shown_runs = metrics.drop_duplicates("model")
        curves = [(r, m) for r, m in zip(shown_runs["run_id"], shown_runs["model"])
                  if iterative.get(m)]
        one_step = [name_of(m) for m in shown_runs["model"] if not iterative.get(m)]
        if one_step:
            st.caption(f"{', '.join(one_step)}: fitted in one step, so there is no training "
                       "curve.")
        if folds_shown:
            st.caption("Cross-validated models are fitted in memory on each fold; their "
                       "curves are not kept. Open the results of a split to see curves.")
            curves = []
        chosen = st.multiselect("Runs", [r for r, _ in curves],
                                default=[r for r, _ in curves][:2], key="ev_curves",
                                format_func=lambda r: f"{name_of(dict(curves)[r])} · run {r}")
        cols = st.columns(2)
        for n, run in enumerate(chosen):
            frame = usecases.training_curve(store, int(run))
            if len(frame) > 1:
                cols[n % 2].plotly_chart(
                    charts.training_curves(frame, f"{name_of(dict(curves)[run])} · run {run}"),
                    width="stretch", key=f"ev_curve_{run}")
            else:
                cols[n % 2].caption(f"Run {run} stopped after {len(frame)} epoch(s): no curve.")
with tabs[5]:
    if tabs[5].open:
        table = []
        for model in models:
            if model not in picked:
                continue
            row = {"Model": name_of(model), "Family": family.get(model, "")}
            for metric, at_k in TABLE:
                sel = overall[(overall["model"] == model) & (overall["metric"] == metric)]
                sel = sel[sel["k"] == k] if at_k else sel[sel["k"].isna()]
                head = charts.METRIC_LABELS.get(metric, metric) + (f"@{k}" if at_k else "")
                if sel.empty:
                    row[head] = "–"
                    continue
                r = sel.iloc[0]
                if pd.notna(r.get("std")):
                    row[head] = f"{r['value']:.4f} ± {r['std']:.4f}"
                elif pd.notna(r.get("ci_low")):
                    row[head] = f"{r['value']:.4f} ({r['ci_low']:.4f}–{r['ci_high']:.4f})"
                else:
                    row[head] = f"{r['value']:.4f}"
            n = overall[(overall["model"] == model) & (overall["metric"] == "ndcg")
                        & (overall["k"] == k)]
            n = n.iloc[0] if len(n) else None
            if n is None or pd.isna(n.get("gain")):
                row[f"NDCG@{k} vs baseline"] = "baseline" if model == baseline else "–"
            else:
                row[f"NDCG@{k} vs baseline"] = (
                    f"{n['gain']:+.1%} ({n['gain_low']:+.1%} to {n['gain_high']:+.1%}), "
                    + ("significant" if n["p_value"] < charts.SIGNIFICANCE else "n.s.")
                    + f", p = {n['p_value']:.2g}")
            table.append(row)
        st.dataframe(pd.DataFrame(table), hide_index=True, width="stretch")
        st.caption("In brackets: 95% bootstrap interval over test shoppers"
                   + (" (± std over folds)" if folds_shown else "")
                   + (f"; the last column tests each model against {name_of(baseline)}, the "
                      "best single-signal model, on the same shoppers." if baseline else "."))
        with st.expander("Details: every metric and slice, with model and run ids"):
            details = metrics.assign(label=metrics["model"].map(name_of))
            first = ["label", "model", "run_id", "protocol", "slice", "metric", "k", "value"]
            details = details[first + [c for c in details.columns if c not in first]]
            st.dataframe(details.style.format(precision=4, na_rep="–"), hide_index=True)
            st.download_button("Download all metrics (CSV)", to_csv_bytes(details),
                               file_name=f"metrics_{dataset}_{shown_protocol}.csv",
                               mime="text/csv")
