"""User picks: one shopper's history, their personalised picks and why each was picked."""

import json

import pandas as pd
import streamlit as st

from recsys.bootstrap import default_model
from recsys.errors import RecsysError
from recsys.explain import explain_recommendations
from recsys.training import train_model
from ui import charts, components, resources

MAX_OPTIONS = 2000

components.page_setup("User picks", "Choose a shopper: their history, the picks of a model, and "
                                    "for each pick what drove it and which past items it "
                                    "resembles.")
dataset = components.require_dataset()
store = resources.get_store()
users = resources.users(dataset)
if users.empty:
    st.info(f"'{dataset}' has no shoppers yet. Simulate some or import interactions on the Data "
            "page.")
    st.page_link("app_pages/data.py", label="Go to Data", icon=":material/database:")
    st.stop()

runs = resources.model_runs(dataset)
if runs.empty:
    st.warning("No trained model for this dataset yet.")
    name = default_model(resources.item_index(dataset) is not None)
    if st.button(f"Train {name} now", type="primary", icon=":material/model_training:"):
        panel = components.ProgressPanel(f"Training {name}")
        try:
            train_model(store, dataset, name, progress=panel)
        except RecsysError as exc:
            components.error_box(exc, "Training failed")
            st.stop()
        panel.done("Trained")
        st.rerun()
    st.page_link("app_pages/train.py", label="Or choose a model on the Train page",
                 icon=":material/model_training:")
    st.stop()

run_labels = {int(r.run_id): f"{r.model} · run {r.run_id}" for r in runs.itertuples()}
user_ids = list(users["user_id"])
names = dict(zip(users["user_id"], users["name"].fillna("")))
segments = dict(zip(users["user_id"], users["segment"].fillna("")))

top = st.columns([2, 2, 1, 1])
if len(user_ids) > MAX_OPTIONS:     # a list of 20,000 names is slow to send on every rerun
    needle = top[0].text_input(f"Find a shopper among {len(user_ids):,} (id or name)",
                               key="up_find").strip().lower()
    matches = [u for u in user_ids if needle in str(u).lower()
               or needle in str(names.get(u, "")).lower()] if needle else user_ids
    user_ids = matches[:MAX_OPTIONS] or user_ids[:MAX_OPTIONS]
if st.session_state.get("up_user") not in user_ids:
    st.session_state["up_user"] = user_ids[0]
user_id = top[0].selectbox(
    "Shopper (type to search)", user_ids, key="up_user",
    format_func=lambda u: " · ".join(x for x in (str(u), names.get(u), segments.get(u)) if x))
run_id = top[1].selectbox("Model", list(run_labels), format_func=run_labels.get, key="up_run")
k = top[2].slider("Picks", 4, 30, 12, 2, key="up_k")
compare = top[3].toggle("Compare", key="up_compare", help="Show a second model side by side.")
other_run = None
if compare:
    others = [r for r in run_labels if r != run_id] or list(run_labels)
    other_run = st.selectbox("Compare with", others, format_func=run_labels.get, key="up_run2")

items = resources.items(dataset)
by_id = {r["item_id"]: r for r in items.to_dict("records")}

# --- the shopper -------------------------------------------------------------------------------
user_row = users[users["user_id"] == user_id].iloc[0].to_dict()
history = store.user_history(dataset, user_id)
with st.container(border=True):
    left, right = st.columns([1, 3])
    left.markdown(f"### {user_row.get('name') or user_id}")
    left.caption(f"id {user_id}")
    counts = history["event"].value_counts()
    left.markdown(" · ".join(f"{counts.get(e, 0)} {e}s" for e in ("view", "cart", "purchase")))
    profile = json.loads(user_row["profile"]) if isinstance(user_row.get("profile"), str) else {}
    tastes = []
    for key in ("favourite_types", "favourite_colours", "visual_style", "favourite_brands"):
        tastes += [str(v) for v in profile.get(key, [])]
    if tastes:
        left.markdown("Simulated tastes (hidden from the models):", help="The simulator drew "
                      "these tastes; models only see the history.")
        left.markdown(components.pills(tastes), unsafe_allow_html=True)
    with right:
        st.markdown(f"**History** · {len(history)} events, newest first")
        recent = history.sort_values("ts", ascending=False).head(16)
        cards = []
        for row in recent.to_dict("records"):
            ts = pd.Timestamp(row["ts"]).strftime("%d %b %Y") if pd.notna(row["ts"]) else ""
            ev = str(row.get("event") or "")
            cards.append(components.product_card(
                row, tag=(ev, components.EVENT_COLOURS.get(ev, "#64748B")), thumb=160,
                meta=" · ".join(x for x in (ts, row.get("split")) if isinstance(x, str) and x)))
        components.card_grid(cards, min_width=110)


# --- the picks ---------------------------------------------------------------------------------
def explain_run(run: int):
    trained = resources.trained_model(dataset, run)
    cfg = trained.config
    data = resources.interaction_data(dataset, cfg.get("protocol", "auto"),
                                      int(cfg.get("split_seed", 0)), cfg.get("encoder"))
    return trained, explain_recommendations(trained.model, data, user_id, k)


def show_picks(run: int, min_width: int) -> list:
    try:
        trained, expl = explain_run(run)
    except RecsysError as exc:
        components.error_box(exc, "No picks")
        return []
    cards = []
    for e in expl:
        row = by_id.get(e.item_id, {"item_id": e.item_id})
        similar = [by_id.get(s.item_id, {"item_id": s.item_id}) for s in e.similar]
        extra = components.weight_bar(e.weights) + components.mini_thumbs(
            similar, "resembles in your history:")
        tag = ("new item", "#EC4899") if e.cold else None
        cards.append(components.product_card(row, rank=e.rank, tag=tag, extra_html=extra))
    components.card_grid(cards, min_width)
    return expl


st.subheader("Personalised picks")
if compare and other_run is not None:
    c1, c2 = st.columns(2, gap="large")
    with c1:
        st.markdown(f"**{run_labels[run_id]}**")
        a = show_picks(run_id, 150)
    with c2:
        st.markdown(f"**{run_labels[other_run]}**")
        b = show_picks(other_run, 150)
    if a and b:
        shared = {e.item_id for e in a} & {e.item_id for e in b}
        st.caption(f"{len(shared)} of {k} picks in common.")
else:
    expl = show_picks(run_id, 175)
    if expl:
        labels = [f"#{e.rank} {components.item_label(by_id.get(e.item_id, {'item_id': e.item_id}))}"
                  for e in expl]
        st.plotly_chart(charts.modality_weights([e.weights for e in expl], labels),
                        width="stretch")
        with st.expander("Explanations as a table"):
            st.dataframe(pd.DataFrame([{
                "rank": e.rank, "item": e.item_id,
                "title": by_id.get(e.item_id, {}).get("title"), "score": e.score,
                **{f"weight {m}": v for m, v in e.weights.items()},
                "most similar history items": ", ".join(s.item_id for s in e.similar),
                "cold-start item": e.cold} for e in expl]), hide_index=True)
