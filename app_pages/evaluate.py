"""Evaluate: how well each model finds what shoppers went on to choose, led by one plain
sentence; every number with its 95% interval and tested against the best single-signal model;
slices, diversity re-ranking, training curves and the table (ids only in its details)."""

import streamlit as st

from recsys import usecases
from recsys.data.export import to_csv_bytes
from recsys.data.interactions import NEW_ITEMS, NEW_ITEMS_NOTE, PROTOCOL_HELP, PROTOCOLS
from recsys.evaluation import tables
from recsys.evaluation.stats import ALPHA
from ui import charts, components, jobs, resources, words

HEADLINE = ("ndcg", "recall", "precision", "f1", "hit_rate", "auc")
PENDING, PENDING_FIRST = "ev_job", "ev_first_job"   # ids of the jobs this session started

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
    if protocol == NEW_ITEMS:
        st.caption(NEW_ITEMS_NOTE)
    ks = c2.multiselect("K", [1, 5, 10, 20, 50, 100], default=[5, 10, 20], key="ev_ks")
    folds = c3.number_input("Cross-validation folds", 0, 20, 0, key="ev_folds",
                            help="0: one train/test split (with the diversity re-ranking "
                                 "measured too). 2-20: K-fold cross-validation over each "
                                 "shopper's interactions, every model fitted on every fold "
                                 "(mean ± std over folds; takes K times as long).")
    if st.button("Run evaluation", type="primary", icon=":material/play_arrow:",
                 disabled=not choose or not ks or folds == 1):
        # a background job: leaving the page does not stop it; its numbers are stored
        st.session_state[PENDING] = jobs.start("evaluate", choose, sorted(ks), protocol,
                                               dataset=dataset,
                                               folds=int(folds) if folds else None)
    finished = jobs.follow_pending(PENDING, "Evaluating", "The evaluation")
    if finished is not None:
        for note in finished.result.attrs.get("notes", []):  # runs with a damaged model file
            st.info(note, icon=":material/info:")
        metrics = usecases.evaluation_results(store, dataset)

if metrics.empty:
    first = usecases.first_evaluation_models(store, dataset)
    with lead:
        st.info("No evaluation of this dataset yet. The first one compares "
                + ", ".join(name_of(m) for m in first)
                + " (models without a trained run are trained first).",
                icon=":material/leaderboard:")
        if st.button("Run the first evaluation", type="primary", icon=":material/play_arrow:",
                     key="ev_first"):
            st.session_state[PENDING_FIRST] = jobs.start("first_evaluation", dataset=dataset)
        if jobs.follow_pending(PENDING_FIRST, "Evaluating", "The evaluation") is not None:
            st.rerun()
    st.stop()

# -- what is shown ----------------------------------------------------------------------------
protocols = sorted(metrics["protocol"].unique(), key=lambda p: (p != "random", p))
top = st.columns([1, 1, 3])
shown_protocol = top[0].selectbox("Results of", protocols, key="ev_show_protocol",
                                  format_func=lambda p: f"{p} cross-validation" if "fold" in p
                                  else f"{p} split")
metrics = metrics[metrics["protocol"] == shown_protocol]
if shown_protocol == NEW_ITEMS:
    st.caption(NEW_ITEMS_NOTE)
k_values = sorted(int(k) for k in metrics["k"].dropna().unique())
k = top[1].selectbox("K (list length)", k_values, index=k_values.index(20) if 20 in k_values
                     else len(k_values) - 1, key="ev_k")
models = sorted(metrics["model"].unique(), key=lambda m: (family.get(m, ""), m))
if st.session_state.get("ev_shown_of") != shown_protocol:   # another split: show all its models
    st.session_state.pop("ev_shown", None)
    st.session_state["ev_shown_of"] = shown_protocol
picked = top[2].multiselect("Models shown", models, default=models, key="ev_shown",
                            format_func=name_of)
metrics = metrics[metrics["model"].isin(picked)]
overall = metrics[metrics["slice"] == "all"]
baseline = tables.baseline_of(overall)
folds_shown = "fold" in shown_protocol

# -- the lead: one sentence, three numbers ------------------------------------------------------
summary = usecases.evaluation_summary(store, dataset, shown_protocol, k)
tiles = tables.headline_tiles(overall, k, baseline)
with lead:
    if summary is not None:
        users = f"{summary.users:,} test shoppers" if summary.users else "the test shoppers"
        how = f"{shown_protocol} cross-validation" if folds_shown else f"{shown_protocol} split"
        st.markdown(f'<div class="rs-hero"><p style="font-size:1.15rem"><b>{summary.sentence}'
                    f'</b></p><p style="font-size:.85rem;color:#64748B;margin-top:6px">'
                    f'Measured on {users} ({how}), top {summary.k} of the whole catalog; '
                    'intervals are 95% bootstrap intervals over shoppers.</p></div>',
                    unsafe_allow_html=True)
    if tiles:
        for col, tile in zip(st.columns(3), tiles):
            if tile is not None:
                col.metric(tile.label, tile.value, border=True,
                           help=" ".join(filter(None, (tile.help, words.tooltip("ndcg")))))
                col.caption(tile.caption)

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
                     f"(paired t-test, p ≥ {ALPHA:g}).")
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
                                      format_func=lambda m: tables.METRIC_LABELS.get(m, m))
        st.plotly_chart(charts.metric_at_k(overall, metric or "ndcg"), width="stretch")
with tabs[2]:
    if tabs[2].open:
        metric = st.segmented_control("Metric", ["recall", "ndcg"], default="recall",
                                      key="ev_slice_m",
                                      format_func=lambda m: tables.METRIC_LABELS.get(m, m))
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
            rows = tables.diversity_table(effect, k, models)
            st.dataframe(rows, hide_index=True, width="stretch",
                         height=35 * (len(rows) + 1) + 3,
                         column_config=components.metric_columns(rows))
            st.caption("In brackets: change against the same model's own list; n.s. = not "
                       f"significant (paired t-test over shoppers, p ≥ {ALPHA:g}).")
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
        curve_names = words.run_labels(shown_runs[["run_id", "model"]])
        chosen = st.multiselect("Models", [r for r, _ in curves],
                                default=[r for r, _ in curves][:2], key="ev_curves",
                                format_func=lambda r: curve_names.get(int(r), str(r)))
        for n, run in enumerate(chosen):     # full width: each chart has two panels
            frame = usecases.training_curve(store, int(run))
            cols = [st, st]
            if len(frame) > 1:
                cols[n % 2].plotly_chart(
                    charts.training_curves(frame, curve_names.get(int(run), str(run))),
                    width="stretch", key=f"ev_curve_{run}")
            else:
                cols[n % 2].caption(f"{curve_names.get(int(run), run)} stopped after "
                                    f"{len(frame)} epoch(s): no curve.")
with tabs[5]:
    if tabs[5].open:
        table = tables.results_table(overall, [m for m in models if m in picked], k, baseline)
        st.dataframe(table, hide_index=True, width="stretch",
                     column_config=components.metric_columns(table))
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
