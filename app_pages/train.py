"""Train: pick a model or fusion strategy, set its main hyperparameters, watch it learn."""

import pandas as pd
import streamlit as st

from recsys import usecases
from recsys.core.errors import RecsysError
from recsys.data.interactions import NEW_ITEMS, NEW_ITEMS_NOTE, PROTOCOL_HELP, PROTOCOLS
from recsys.models import display_name
from ui import charts, components, jobs, resources, state
from ui.words import stop_words

MAIN_PARAMS = ("epochs", "lr", "dim", "layers", "neighbours", "k", "reg", "l2", "shrink",
               "cf_model", "user_embeddings", "patience", "modalities")
RUNNING = "tr_running"      # (job id, model) of the training this session follows
FAMILY_ORDER = {"fusion": 0, "content": 1, "collaborative": 2, "baseline": 3}
LABELS = {"lr": "learning rate", "dim": "embedding size", "reg": "L2 penalty",
          "l2": "L2 penalty", "epochs": "max epochs", "patience": "early-stopping patience",
          "cf_model": "CF scorer", "user_embeddings": "learn user ID vectors",
          "neighbours": "neighbours", "layers": "graph layers", "batch_size": "batch size"}


def choose_model(models: dict[str, dict], needs_vectors_note: bool) -> dict:
    """The model picker (default: the default model) with its summary; returns its spec."""
    if st.session_state.get("tr_model") not in models:
        st.session_state["tr_model"] = usecases.default_model(store, dataset)
    name = st.selectbox(
        "Model", list(models), key="tr_model",
        format_func=lambda n: models[n].get("label") or display_name(n),
        help="Fusion models combine behaviour, photo and text signals; the others use one.")
    spec = models[name]
    st.caption(spec["summary"] + " · signals: " + ", ".join(spec["requires"])
               + f" · id `{name}`")
    if needs_vectors_note and set(spec["requires"]) - {"cf"}:
        st.info("This model needs item vectors: training first aligns the CLIP encoder on the "
                "catalog and embeds the items.")
    return spec


def param_widget(spec: dict, p: dict, container) -> object:
    """One hyperparameter's input, typed by its description (bool, choices, int, float)."""
    key = f"tr_{spec['name']}_{p['name']}"
    label, helptext, default = LABELS.get(p["name"], p["name"].replace("_", " ")), \
        p.get("help"), p["default"]
    if p["name"] == "modalities":          # the dataset's own vector modalities, by name
        names = [m["modality"] for m in usecases.list_modalities(store, dataset)]
        chosen = container.multiselect("modalities", names, key=key,
                                       default=[m for m in default or () if m in names],
                                       help=f"{helptext}. None chosen: all of them.")
        return tuple(chosen)
    if p["type"] == "bool":
        return container.toggle(label, value=bool(default), key=key, help=helptext)
    if p.get("choices"):
        choices = list(p["choices"])
        return container.selectbox(label, choices,
                                   index=choices.index(default) if default in choices else 0,
                                   key=key, help=helptext)
    if p["type"] == "int":
        return int(container.number_input(
            label, min_value=int(p["low"]) if p.get("low") is not None else None,
            max_value=int(p["high"]) if p.get("high") is not None else None,
            value=int(default), step=1, key=key, help=helptext))
    if p["type"] == "float":
        return float(container.number_input(
            label, min_value=float(p["low"]) if p.get("low") is not None else None,
            max_value=float(p["high"]) if p.get("high") is not None else None,
            value=float(default), format="%g", key=key, help=helptext))
    return container.text_input(label, value=str(default), key=key, help=helptext)


def hyperparameters(spec: dict) -> dict:
    """The main hyperparameters' inputs, the rest in an expander; returns the changed ones."""
    main = [p for p in spec["params"] if p["name"] in MAIN_PARAMS]
    rest = [p for p in spec["params"] if p["name"] not in MAIN_PARAMS]
    values = {p["name"]: param_widget(spec, p, st) for p in main}
    if rest:
        with st.expander("More hyperparameters"):
            values.update({p["name"]: param_widget(spec, p, st) for p in rest})
    defaults = {p["name"]: p["default"] for p in spec["params"]}
    return {k: v for k, v in values.items() if v != defaults[k]}


def follow_training(job_id: int, name: str, chart_slot) -> None:
    """Follow the training job with live curves; when it has ended, the new run is shown
    below and preselected on User picks.

    Training runs as a background job (`ui.jobs`): leaving the page does not stop it (coming
    back follows it again, the sidebar shows it meanwhile). The Stop button stops the job at
    its next progress step; `train` then marks the run interrupted and keeps the previous
    model in use (see `stopped_notice`)."""
    rows: list[dict] = []
    label = display_name(name)

    trials: list[dict] = []

    def live(events) -> None:
        """The new events since the last refresh: one table or chart drawn for all of them."""
        n_trials, n_rows = len(trials), len(rows)
        for p in events:
            m = p.metrics
            if "trial" in m:        # tuning: one event per trial on the validation split
                trials.append({"trial": m["trial"], "val NDCG@20": m["value"],
                               "best so far": m["best"]})
            elif "epoch" in m:
                rows.append({"epoch": m.get("epoch"), "train_loss": m.get("train_loss"),
                             "val_loss": m.get("val_loss"), "val_ndcg@20": m.get("val_ndcg@20")})
        if len(trials) > n_trials:
            chart_slot.dataframe(pd.DataFrame(trials), hide_index=True)
        elif len(rows) > n_rows:
            chart_slot.plotly_chart(charts.training_curves(pd.DataFrame(rows),
                                                           f"{label}: live"),
                                    width="stretch", key=f"live_{len(rows)}")

    job = jobs.follow(job_id, f"Training {label}", on_metrics=live, stop_label="Stop training")
    if job is None or job.active:   # unknown to this server (restarted) or still running
        if job is None:
            st.session_state.pop(RUNNING, None)
        return
    st.session_state.pop(RUNNING, None)
    if job.status == "stopped":
        stopped_notice(name)
        return
    if job.status != "finished":
        components.error_box(RecsysError(job.error or "unknown error"), "Training failed")
        return
    run, found = job.result.run, job.result.tuning
    if found is not None:
        chosen = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in found.best_params.items()) or "its defaults"
        st.caption(f"Tuned {label}: {len(found.trials)} trials ({found.stopped_by}), best "
                   f"validation NDCG@20 {found.best_value:.4f} with {chosen}.")
    st.caption(f"Trained {label} in {run.seconds:.1f} s (run {run.run_id})")
    if job.result.vectors is not None and not job.result.vectors.nothing_to_do:
        st.caption(job.result.vectors.summary())
    state.show_run(run.run_id)
    st.session_state["tr_last"] = run.run_id


def stopped_notice(name: str) -> None:
    """After Stop (or leaving the page mid-training): what happened to the run, and which model
    stays in use."""
    every = usecases.list_runs(store, dataset, all_runs=True)
    mine = every[every["model"] == name]
    usable = usecases.list_runs(store, dataset)
    still = usable[usable["model"] == name]
    status = str(mine["status"].iloc[0]) if len(mine) else None
    st.warning(stop_words(display_name(name), status,
                          int(mine["run_id"].iloc[0]) if len(mine) else None,
                          int(still["run_id"].iloc[0]) if len(still) else None),
               icon=":material/stop_circle:")


def show_last_run(chart_slot, status_slot, started: bool) -> None:
    """The curves and status of the run trained last in this session (or a placeholder)."""
    last = st.session_state.get("tr_last")
    runs = usecases.list_runs(store, dataset)
    if last is not None and last in set(runs["run_id"]):
        row = runs[runs["run_id"] == last].iloc[0]
        frame = usecases.training_curve(store, int(last))
        if len(frame):
            chart_slot.plotly_chart(charts.training_curves(
                frame, f"{display_name(row['model'])}: run {last}"), width="stretch")
        status_slot.success(f"Run {last} ({display_name(row['model'])}) saved in "
                            f"{row['seconds']:.1f} s. Its picks are on the User picks page now.",
                            icon=":material/check:")
        state.link(state.USER_PICKS, "See its picks")
    elif not started:
        chart_slot.info("Training curves appear here, epoch by epoch, when you start a run.",
                        icon=":material/monitoring:")


def runs_table() -> None:
    """Every run of the dataset, finished or not."""
    st.subheader("Runs")
    all_runs = usecases.list_runs(store, dataset, all_runs=True)
    if all_runs.empty:
        st.caption("No runs yet.")
    else:
        shown = all_runs.assign(name=all_runs["model"].map(display_name),
                                message=all_runs["message"].fillna(""))
        st.dataframe(shown[["name", "status", "seconds", "started_at", "message", "run_id",
                            "model"]],
                     hide_index=True, width="stretch", column_config={
                         "name": st.column_config.TextColumn("model", pinned=True),
                         "model": "model id",
                         "message": st.column_config.TextColumn("message", width="large"),
                         "seconds": st.column_config.NumberColumn("seconds", format="%.1f")})


components.page_setup("Train", "Choose a recommender (a fusion strategy or a classic baseline), "
                               "set its hyperparameters and watch the training curves live. "
                               "The run is saved and usable at once.")
dataset = components.require_dataset()
store = resources.get_store()
ready = usecases.readiness(store, dataset)
if ready.interactions == 0:
    st.info(f"'{dataset}' has no interactions to learn from. Simulate shoppers on the Data page.")
    st.stop()

usable = sorted((m for m in usecases.list_models(store, dataset) if m["applies"]),
                key=lambda m: (FAMILY_ORDER.get(m["family"], 9), m["name"]))
left, right = st.columns([2, 3], gap="large")
with left:
    spec = choose_model({m["name"]: m for m in usable}, needs_vectors_note=ready.vectors == 0)
    params = hyperparameters(spec)
    protocol = st.selectbox("Split", PROTOCOLS, key="tr_protocol", help=PROTOCOL_HELP)
    if protocol == NEW_ITEMS:
        st.caption(NEW_ITEMS_NOTE)
    go, tune_col = st.columns(2)
    start = go.button("Start training", type="primary", icon=":material/play_arrow:",
                      width="stretch")
    tune = tune_col.button("Tune", icon=":material/tune:", width="stretch",
                           help="Search this model's main settings on the validation split "
                                "(never the test split) within the time budget, then train "
                                "the best; the search is saved with the run.")
    budget = st.number_input("Tuning time budget (seconds)", 10, 3600, 120, step=10,
                             key="tr_budget")
with right:
    if start:
        st.session_state[RUNNING] = (jobs.start("train", spec["name"], params,
                                                protocol=protocol, dataset=dataset),
                                     spec["name"])
    elif tune:
        st.session_state[RUNNING] = (jobs.start("tune", spec["name"], params,
                                                protocol=protocol, budget_seconds=float(budget),
                                                dataset=dataset),
                                     spec["name"])
    following = st.session_state.get(RUNNING)
    chart_slot = st.empty()
    status_slot = st.empty()
    if following is not None:
        follow_training(*following, chart_slot)
    show_last_run(chart_slot, status_slot, following is not None)
runs_table()
