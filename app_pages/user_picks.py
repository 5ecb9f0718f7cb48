"""User picks: one shopper's history, their personalised picks and why each was picked."""

import pandas as pd
import streamlit as st

from recsys import usecases
from recsys.errors import RecsysError
from ui import charts, components, resources, state

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
    state.link(state.DATA, "Go to Data")
    st.stop()

runs = usecases.list_runs(store, dataset)
if runs.empty:
    st.warning("No trained model for this dataset yet.")
    name = usecases.default_model(store, dataset)
    if st.button(f"Train {name} now", type="primary", icon=":material/model_training:"):
        panel = components.ProgressPanel(f"Training {name}")
        components.call_or_stop("Training failed", usecases.train, store, dataset, name,
                                progress=panel)
        panel.done("Trained")
        st.rerun()
    state.link(state.TRAIN, "Or choose a model on the Train page")
    st.stop()

run_labels = {int(r.run_id): f"{r.model} · run {r.run_id}" for r in runs.itertuples()}
default_run = int(runs.loc[runs["default"], "run_id"].iloc[0]) if runs["default"].any() \
    else int(runs["run_id"].iloc[0])
requested = state.take_run_request()                 # a run just trained on the Train page
if requested in run_labels:
    st.session_state["up_run"] = requested
elif st.session_state.get("up_run") not in run_labels:
    st.session_state["up_run"] = default_run
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


def show_shopper() -> None:
    """The shopper: name, event counts, the simulator's hidden tastes, recent history."""
    who = usecases.shopper(store, dataset, user_id)
    with st.container(border=True):
        left, right = st.columns([1, 3])
        left.markdown(f"### {who.name or user_id}")
        left.caption(f"id {user_id}")
        left.markdown(" · ".join(f"{who.events[e]} {e}s" for e in ("view", "cart", "purchase")))
        if who.tastes:
            left.markdown("Simulated tastes (hidden from the models):", help="The simulator "
                          "drew these tastes; models only see the history.")
            left.markdown(components.pills(who.tastes), unsafe_allow_html=True)
        with right:
            st.markdown(f"**History** · {len(who.history)} events, newest first")
            cards = []
            for row in who.history.head(16).to_dict("records"):
                ts = pd.Timestamp(row["ts"]).strftime("%d %b %Y") if pd.notna(row["ts"]) else ""
                ev = str(row.get("event") or "")
                cards.append(components.product_card(
                    row, tag=(ev, components.EVENT_COLOURS.get(ev, "#64748B")), thumb=160,
                    meta=" · ".join(x for x in (ts, row.get("split"))
                                    if isinstance(x, str) and x)))
            components.card_grid(cards, min_width=110)


def show_picks(run: int, min_width: int) -> usecases.Recommendations | None:
    """One run's picks for the shopper as cards with their modality weights and look-alikes."""
    try:
        recs = usecases.recommend_for(store, dataset, user_id, run, k, train_if_missing=False)
    except RecsysError as exc:
        components.error_box(exc, "No picks")
        return None
    cards = []
    for e in recs.items:
        row = recs.catalog.get(e.item_id, {"item_id": e.item_id})
        similar = [recs.catalog.get(s.item_id, {"item_id": s.item_id}) for s in e.similar]
        extra = components.weight_bar(e.weights) + components.mini_thumbs(
            similar, "resembles in your history:")
        tag = ("new item", "#EC4899") if e.cold else None
        cards.append(components.product_card(row, rank=e.rank, tag=tag, extra_html=extra))
    components.card_grid(cards, min_width)
    return recs


def show_explanations(recs: usecases.Recommendations) -> None:
    """The picks' modality weights as a chart, and every explanation as a table."""
    labels = [f"#{e.rank} "
              f"{components.item_label(recs.catalog.get(e.item_id, {'item_id': e.item_id}))}"
              for e in recs.items]
    st.plotly_chart(charts.modality_weights([e.weights for e in recs.items], labels),
                    width="stretch")
    with st.expander("Explanations as a table"):
        st.dataframe(pd.DataFrame([{
            "rank": e.rank, "item": e.item_id, "title": recs.title(e.item_id),
            "score": e.score, **{f"weight {m}": v for m, v in e.weights.items()},
            "most similar history items": ", ".join(s.item_id for s in e.similar),
            "cold-start item": e.cold} for e in recs.items]), hide_index=True)


show_shopper()
st.subheader("Personalised picks")
if compare and other_run is not None:
    c1, c2 = st.columns(2, gap="large")
    with c1:
        st.markdown(f"**{run_labels[run_id]}**")
        a = show_picks(run_id, 150)
    with c2:
        st.markdown(f"**{run_labels[other_run]}**")
        b = show_picks(other_run, 150)
    if a is not None and b is not None:
        shared = {e.item_id for e in a.items} & {e.item_id for e in b.items}
        st.caption(f"{len(shared)} of {k} picks in common.")
else:
    picks = show_picks(run_id, 175)
    if picks is not None and picks.items:
        show_explanations(picks)
