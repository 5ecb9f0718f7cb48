"""User picks: one shopper's history, their personalised picks and why each was picked."""

import math

import pandas as pd
import streamlit as st

from recsys import usecases
from recsys.core.errors import RecsysError
from recsys.explain.sentences import EVENT_WORDS, plain
from recsys.models import display_name
from recsys.recommend.rerank import DEFAULT_DIVERSITY
from recsys.recommend.training import DamagedModel
from ui import charts, components, jobs, resources, state, words
from ui.words import plural

MAX_OPTIONS = 2000
HISTORY_SHOWN = 16           # newest events shown at once; the rest behind "All N events"
HISTORY_PAGE = 24
SEEN_COLOUR = "#0EA5E9"

components.page_setup("User picks", "Choose a shopper: their history, the picks of a model, and "
                                    "for each pick, in words, what drove it and which past "
                                    "items it resembles.")
dataset = components.require_dataset()
store = resources.get_store()
users = resources.users(dataset)
if users.empty:
    st.info(f"'{dataset}' has no shoppers yet. Simulate some or import interactions on the Data "
            "page.")
    state.link(state.DATA, "Go to Data")
    st.stop()

TRAINING = "up_training"       # session key: the id of the "Train now" job this session started
runs = usecases.list_runs(store, dataset)
if runs.empty:
    st.warning("No trained model for this dataset yet.")
    name = usecases.default_model(store, dataset)
    if st.button(f"Train {display_name(name)} now", type="primary",
                 icon=":material/model_training:",
                 disabled=st.session_state.get(TRAINING) is not None):
        # a background job: it goes on when the page is left; the picks appear when it ends
        st.session_state[TRAINING] = jobs.start("train", name, dataset=dataset)
    if jobs.follow_pending(TRAINING, f"Training {display_name(name)}", "Training") is not None:
        st.rerun()
    state.link(state.TRAIN, "Or choose a model on the Train page")
    st.stop()
st.session_state.pop(TRAINING, None)    # a "Train now" job that ended while the page was left

run_labels = words.run_labels(runs)    # display names; run ids only in "Model details"
default_run = int(runs.loc[runs["default"], "run_id"].iloc[0]) if runs["default"].any() \
    else int(runs["run_id"].iloc[0])
requested = state.take_run_request()                 # a run just trained on the Train page
if requested in run_labels:
    st.session_state["up_run"] = requested
elif st.session_state.get("up_run") not in run_labels:
    st.session_state["up_run"] = default_run
user_ids = users["user_id"].tolist()       # plain lists: iterating 10,000 Arrow strings
names = dict(zip(user_ids, users["name"].fillna("").tolist()))   # costs ~0.1 s a rerun
segments = dict(zip(user_ids, users["segment"].fillna("").tolist()))

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
tune = st.columns([3, 2])
diversity = tune[0].slider(
    "Most relevant ↔ most varied", 0.0, 1.0, float(DEFAULT_DIVERSITY), 0.05, key="up_div",
    help="0 keeps the model's order. Higher values spread near-duplicates out: each next pick "
         "must be relevant and unlike the picks above it in look and description (maximal "
         "marginal relevance).")
include_seen = tune[1].toggle(
    "Include items already viewed", key="up_seen",
    help="Off: nothing this shopper viewed, carted or bought is picked again. On: such items "
         "may come back, marked with what the shopper did.")
other_run = None
if compare:
    others = [r for r in run_labels if r != run_id] or list(run_labels)
    other_run = st.selectbox("Compare with", others, format_func=run_labels.get, key="up_run2")


def history_cards(rows: list[dict], cited: set[str]) -> list[str]:
    """History events as cards; the ones a pick cites are outlined."""
    cards = []
    for row in rows:
        ts = pd.Timestamp(row["ts"]).strftime("%d %b %Y") if pd.notna(row["ts"]) else ""
        ev = str(row.get("event") or "")
        cards.append(components.product_card(
            row, tag=(ev, components.EVENT_COLOURS.get(ev, "#64748B")), thumb=160,
            meta=" · ".join(x for x in (ts, row.get("split"), row.get("for_whom"))
                            if isinstance(x, str) and x),
            css_class="rs-cited" if str(row.get("item_id")) in cited else ""))
    return cards


def show_shopper(cited: set[str]) -> None:
    """The shopper: name, event counts, the simulator's tastes that show in their history, the
    newest events, and every event page by page."""
    who = usecases.shopper(store, dataset, user_id)
    history = who.history
    with st.container(border=True):
        left, right = st.columns([1, 3])
        left.markdown(f"### {who.name or user_id}")
        left.caption(" · ".join(x for x in (f"id {user_id}", who.segment) if x))
        left.markdown(" · ".join(plural(who.events[e], e) for e in ("view", "cart", "purchase")))
        if who.tastes:
            left.markdown("Simulated tastes (hidden from the models):", help="Drawn by the "
                          "simulator; only the ones that show in this shopper's history are "
                          "listed. The models only see the history.")
            left.markdown(components.pills(who.tastes), unsafe_allow_html=True)
        with right:
            shown = min(HISTORY_SHOWN, len(history))
            st.markdown(f"**History** · {len(history)} events, newest first"
                        + (f" (the {shown} newest below)" if len(history) > shown else "")
                        + (" · outlined: cited by a pick" if cited else ""))
            components.card_grid(history_cards(history.head(HISTORY_SHOWN).to_dict("records"),
                                               cited), min_width=110)
            if len(history) > HISTORY_SHOWN:
                with st.expander(f"All {len(history)} events"):
                    pages = math.ceil(len(history) / HISTORY_PAGE)
                    page = int(st.number_input(f"Page (of {pages})", 1, pages, 1,
                                               key=f"up_hist_{user_id}"))
                    window = history.iloc[(page - 1) * HISTORY_PAGE: page * HISTORY_PAGE]
                    components.card_grid(history_cards(window.to_dict("records"), cited),
                                         min_width=110)


def get_picks(run: int) -> usecases.Recommendations | None:
    """The picks of `run`. A run whose model file is damaged is said so and passed over for
    the newest usable run of the same model; when there is none, retraining is offered."""
    model = str(runs.loc[runs["run_id"] == run, "model"].iloc[0]) if (runs["run_id"] == run).any() \
        else None
    try:
        try:
            recs = usecases.recommend_for(store, dataset, user_id, run, k, train_if_missing=False,
                                          include_seen=include_seen, diversity=diversity)
        except DamagedModel as exc:
            if model is None:
                raise
            st.warning(str(exc), icon=":material/broken_image:")
            recs = usecases.recommend_for(store, dataset, user_id, model, k,
                                          train_if_missing=False, include_seen=include_seen,
                                          diversity=diversity)
    except DamagedModel as exc:
        components.error_box(exc, "No picks")
        if model is not None and st.button(f"Train {display_name(model)} again",
                                           key=f"up_retrain_{run}", type="primary"):
            panel = components.ProgressPanel(f"Training {display_name(model)}")
            components.call_or_stop("Training failed", usecases.train, store, dataset, model,
                                    progress=panel)
            panel.done("Trained")
            st.rerun()
        return None
    except RecsysError as exc:
        components.error_box(exc, "No picks")
        return None
    for note in recs.notes:
        st.info(note, icon=":material/info:")
    return recs


def show_picks(recs: usecases.Recommendations, min_width: int) -> None:
    """One run's picks as cards: the sentence, the attributes that drove it, the modality
    weights and the history items it resembles (with their titles)."""
    components.notes(recs.notes)
    if recs.rule:
        st.caption(f":material/rule: {recs.rule}")
    cards = []
    for e in recs.items:
        row = recs.catalog.get(e.item_id, {"item_id": e.item_id})
        cited = [(recs.catalog.get(s.item_id, {"item_id": s.item_id}),
                  recs.history.get(s.item_id)) for s in e.similar]
        attrs = recs.attributes.get(e.item_id)
        extra = (components.sentence(recs.sentences.get(e.item_id))
                 + (components.attribute_pills(attrs.drivers) if attrs else "")
                 + components.weight_bar(e.weights)
                 + components.cited_items(cited, "resembles in your history:"))
        seen = recs.history.get(e.item_id)
        tag = (f"{EVENT_WORDS.get(seen, seen)} before", SEEN_COLOUR) if seen else \
            ("new item", "#EC4899") if e.cold else None
        if e.item_id in recs.for_whom and tag is None:
            tag = (recs.for_whom[e.item_id], "#0EA5E9")
        cards.append(components.product_card(row, rank=e.rank, tag=tag, extra_html=extra))
    components.card_grid(cards, min_width)
    if recs.similarity and recs.diversity > 0:
        st.caption(f"Re-ranked for variety: the picks are {recs.similarity['picks']:.2f} alike "
                   f"on average (similarity of their photos and texts, 1 = identical), "
                   f"{recs.similarity['most_relevant']:.2f} in the model's own order.")


def show_explanations(recs: usecases.Recommendations) -> None:
    """The picks' modality weights as a chart, every explanation as a table, the run's ids."""
    labels = [f"#{e.rank} "
              f"{components.item_label(recs.catalog.get(e.item_id, {'item_id': e.item_id}))}"
              for e in recs.items]
    st.plotly_chart(charts.modality_weights([e.weights for e in recs.items], labels),
                    width="stretch")
    with st.expander("Explanations as a table"):
        st.dataframe(pd.DataFrame([{
            "rank": e.rank, "title": recs.title(e.item_id),
            "why": plain(recs.sentences.get(e.item_id, "")),
            "driven by": ", ".join(f"{a.label()} (+{a.effect:.2f})"
                                   for a in recs.attributes[e.item_id].drivers)
            if e.item_id in recs.attributes else "",
            **{f"weight {components.MODALITY_LABELS.get(m, m)}": v
               for m, v in e.weights.items()},
            "resembles in the history": "; ".join(
                f"{recs.title(s.item_id) or s.item_id}"
                + (f" ({EVENT_WORDS.get(recs.history[s.item_id])})"
                   if s.item_id in recs.history else "") for s in e.similar),
            "already": EVENT_WORDS.get(recs.history.get(e.item_id, ""), ""),
            "new item": e.cold, "score": e.score, "item": e.item_id}
            for e in recs.items]), hide_index=True)
        st.caption("*Driven by*: the catalog attributes that raise this shopper's score around "
                   "the pick, from a local linear surrogate fitted to the model's scores "
                   "(LIME-style), in standard deviations of the shopper's scores.")
    with st.expander("Model details"):
        st.markdown(f"{recs.label}: model id `{recs.model}`, run {recs.run_id}"
                    + (f", item vectors of `{recs.encoder}`" if recs.encoder else "")
                    + f", diversity {recs.diversity:g}, items already seen "
                    + ("included" if recs.include_seen else "left out") + ".")


if compare and other_run is not None:
    a, b = get_picks(run_id), get_picks(other_run)
    show_shopper({s.item_id for r in (a, b) if r for e in r.items for s in e.similar})
    st.subheader("Personalised picks")
    c1, c2 = st.columns(2, gap="large")
    with c1:
        st.markdown(f"**{run_labels[run_id]}**")
        if a is not None:
            show_picks(a, 150)
    with c2:
        st.markdown(f"**{run_labels[other_run]}**")
        if b is not None:
            show_picks(b, 150)
    if a is not None and b is not None:
        shared = {e.item_id for e in a.items} & {e.item_id for e in b.items}
        st.caption(f"{len(shared)} of {k} picks in common.")
else:
    picks = get_picks(run_id)
    show_shopper({s.item_id for e in picks.items for s in e.similar} if picks else set())
    st.subheader("Personalised picks")
    if picks is not None:
        show_picks(picks, 190)
        if picks.items:
            show_explanations(picks)
