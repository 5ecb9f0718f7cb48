"""Train: pick a model or fusion strategy, set its main hyperparameters, watch it learn."""

import pandas as pd
import streamlit as st

from recsys.bootstrap import default_model, readiness
from recsys.embedding import ensure_item_vectors
from recsys.errors import RecsysError
from recsys.models import describe_models
from recsys.training import train_model
from ui import charts, components, resources

MAIN_PARAMS = ("epochs", "lr", "dim", "layers", "neighbours", "k", "reg", "l2", "shrink",
               "cf_model", "user_embeddings", "patience")
FAMILY_ORDER = {"fusion": 0, "content": 1, "collaborative": 2, "baseline": 3}
LABELS = {"lr": "learning rate", "dim": "embedding size", "reg": "L2 penalty",
          "l2": "L2 penalty", "epochs": "max epochs", "patience": "early-stopping patience",
          "cf_model": "CF scorer", "user_embeddings": "learn user ID vectors",
          "neighbours": "neighbours", "layers": "graph layers", "batch_size": "batch size"}

components.page_setup("Train", "Choose a recommender (a fusion strategy or a classic baseline), "
                               "set its hyperparameters and watch the training curves live. "
                               "The run is saved and usable at once.")
dataset = components.require_dataset()
store = resources.get_store()
state = readiness(store, dataset)
if state.interactions == 0:
    st.info(f"'{dataset}' has no interactions to learn from. Simulate shoppers on the Data page.")
    st.stop()

models = sorted(describe_models(), key=lambda m: (FAMILY_ORDER.get(m["family"], 9), m["name"]))
usable = [m for m in models if set(m["requires"]) <= {"cf"} or state.has_content]
by_name = {m["name"]: m for m in usable}

left, right = st.columns([2, 3], gap="large")
with left:
    if st.session_state.get("tr_model") not in by_name:
        st.session_state["tr_model"] = default_model(state.has_content)
    name = st.selectbox(
        "Model", list(by_name), key="tr_model",
        format_func=lambda n: f"{n}  ({by_name[n]['family']})",
        help="Fusion models combine behaviour, photo and text signals; the others use one.")
    spec = by_name[name]
    st.caption(spec["summary"] + " · signals: " + ", ".join(spec["requires"]))
    uses_content = bool(set(spec["requires"]) - {"cf"})
    needs_vectors = uses_content and state.vectors == 0
    if needs_vectors:
        st.info("This model needs item vectors: training first aligns the CLIP encoder on the "
                "catalog and embeds the items.")

    params: dict = {}

    def widget(p: dict, container) -> None:
        key = f"tr_{name}_{p['name']}"
        label, helptext, default = LABELS.get(p["name"], p["name"].replace("_", " ")), \
            p.get("help"), p["default"]
        if p["type"] == "bool":
            params[p["name"]] = container.toggle(label, value=bool(default), key=key,
                                                 help=helptext)
        elif p.get("choices"):
            choices = list(p["choices"])
            params[p["name"]] = container.selectbox(
                label, choices, index=choices.index(default) if default in choices else 0,
                key=key, help=helptext)
        elif p["type"] == "int":
            params[p["name"]] = int(container.number_input(
                label, min_value=int(p["low"]) if p.get("low") is not None else None,
                max_value=int(p["high"]) if p.get("high") is not None else None,
                value=int(default), step=1, key=key, help=helptext))
        elif p["type"] == "float":
            params[p["name"]] = float(container.number_input(
                label, min_value=float(p["low"]) if p.get("low") is not None else None,
                max_value=float(p["high"]) if p.get("high") is not None else None,
                value=float(default), format="%g", key=key, help=helptext))
        else:
            params[p["name"]] = container.text_input(label, value=str(default), key=key,
                                                     help=helptext)

    main = [p for p in spec["params"] if p["name"] in MAIN_PARAMS]
    rest = [p for p in spec["params"] if p["name"] not in MAIN_PARAMS]
    for p in main:
        widget(p, st)
    if rest:
        with st.expander("More hyperparameters"):
            for p in rest:
                widget(p, st)
    protocol = st.selectbox("Split", ["auto", "random", "temporal", "stored"], key="tr_protocol",
                            help="auto = the split imported with the data, else per-user random "
                                 "8:1:1; temporal = leave-last-out.")
    start = st.button("Start training", type="primary", icon=":material/play_arrow:",
                      width="stretch")

with right:
    chart_slot = st.empty()
    status_slot = st.empty()
    if start:
        changed = {k: v for k, v in params.items()
                   if v != next(p["default"] for p in spec["params"] if p["name"] == k)}
        try:
            if uses_content:   # aligns when there is no encoder, embeds new/changed items
                panel = components.ProgressPanel("Checking the item vectors")
                rep = ensure_item_vectors(store, dataset, progress=panel)
                panel.done("Item vectors ready")
                st.caption(rep.summary())
            rows: list[dict] = []

            def live(p) -> None:
                m = p.metrics
                if "epoch" not in m:
                    return
                rows.append({"epoch": m.get("epoch"), "train_loss": m.get("train_loss"),
                             "val_loss": m.get("val_loss"), "val_ndcg@20": m.get("val_ndcg@20")})
                chart_slot.plotly_chart(charts.training_curves(pd.DataFrame(rows),
                                                               f"{name}: live"),
                                        width="stretch", key=f"live_{len(rows)}")

            panel = components.ProgressPanel(f"Training {name}", on_metrics=live)
            trained = train_model(store, dataset, name, changed, progress=panel,
                                  protocol=protocol)
            panel.done(f"Trained {name} in {trained.seconds:.1f} s (run {trained.run_id})")
        except RecsysError as exc:
            components.error_box(exc, "Training failed")
            st.stop()
        st.session_state["up_run"] = trained.run_id
        st.session_state["tr_last"] = trained.run_id
    last = st.session_state.get("tr_last")
    runs = resources.model_runs(dataset)
    if last is not None and last in set(runs["run_id"]):
        row = runs[runs["run_id"] == last].iloc[0]
        frame = resources.run_curve(int(last))
        if len(frame):
            chart_slot.plotly_chart(charts.training_curves(frame, f"{row['model']}: run {last}"),
                                    width="stretch")
        status_slot.success(f"Run {last} ({row['model']}) saved in {row['seconds']:.1f} s. Its "
                            "picks are on the User picks page now.", icon=":material/check:")
        st.page_link("app_pages/user_picks.py", label="See its picks", icon=":material/person_search:")
    elif not start:
        chart_slot.info("Training curves appear here, epoch by epoch, when you start a run.",
                        icon=":material/monitoring:")

st.subheader("Runs")
all_runs = store.runs(dataset, kind="model")
if all_runs.empty:
    st.caption("No runs yet.")
else:
    st.dataframe(all_runs[["run_id", "model", "status", "seconds", "started_at", "message"]],
                 hide_index=True, column_config={
                     "seconds": st.column_config.NumberColumn("seconds", format="%.1f")})
