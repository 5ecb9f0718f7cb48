"""Start as a new shopper: pick a few liked products (or upload one photo), get picks at once.

The model never saw this shopper: it scores the likes by fold-in (no retraining), so the picks
change as soon as a product is ticked.
"""

import streamlit as st

from recsys import usecases
from recsys.core.errors import RecsysError
from recsys.search.facets import item_label
from recsys.models import display_name
from ui import charts, components, jobs, personal, resources, state
from ui.words import run_labels, tooltip

MODES = ["Pick products I like", "Upload a photo"]
GRID = 24
LIKED = "ns_liked"

components.page_setup("Start as a new shopper",
                      "No history, no account: tick a few products you like, or upload one "
                      "photo, and the model picks for you at once. It was never trained on "
                      "you: it folds your likes in without retraining.")
dataset = components.require_dataset()
store = resources.get_store()
items = resources.items(dataset)
if items.empty:
    st.info(f"'{dataset}' has no products. Import a catalog on the Data page.")
    st.stop()
runs = usecases.list_runs(store, dataset)
if runs.empty:
    st.warning("No trained model for this dataset yet: train one on the Train page.")
    state.link(state.TRAIN, "Go to Train")
    st.stop()

labels = run_labels(runs)
default = int(runs.loc[runs["default"], "run_id"].iloc[0]) if runs["default"].any() \
    else int(runs["run_id"].iloc[0])
if st.session_state.get("ns_run") not in labels:
    st.session_state["ns_run"] = default
liked: list[str] = st.session_state.setdefault(LIKED, [])
liked[:] = [i for i in liked if i in set(items["item_id"])]

top = st.columns([2, 2, 1])
mode = top[0].segmented_control("Start from", MODES, key="ns_mode", default=MODES[0],
                                required=True)
run_id = top[1].selectbox("Model", list(labels), format_func=labels.get, key="ns_run")
k = top[2].slider("Picks", 4, 24, 12, 2, key="ns_k")


def toggle(item_id: str) -> None:
    """A tick box changed: add or remove the product from the likes."""
    if st.session_state.get(f"ns_pick_{item_id}"):
        if item_id not in liked:
            liked.append(item_id)
    elif item_id in liked:
        liked.remove(item_id)


def clear() -> None:
    liked.clear()


def pick_grid() -> None:
    """Products to tick: one popular product per common type, or those matching the words."""
    left, right = st.columns([3, 1])
    words = left.text_input("Find products to like", key="ns_find",
                            placeholder="e.g. sneakers, red dress, watch")
    shuffle = right.number_input("Show another set", 0, 50, 0, key="ns_shuffle",
                                 help="Another draw of starter products.")
    if words.strip():
        shown = usecases.search_catalog(store, dataset, keywords=words, items=items).items
        shown = shown.head(GRID)
    else:
        shown = usecases.starter_products(store, dataset, GRID, seed=int(shuffle))
    if shown.empty:
        st.info("No product matches these words.")
        return
    columns = st.columns(8)
    for n, row in enumerate(shown.to_dict("records")):
        with columns[n % 8]:
            components.card_grid([components.product_card(row, thumb=160)], min_width=100)
            st.checkbox("I like it", value=row["item_id"] in liked,
                        key=f"ns_pick_{row['item_id']}", on_change=toggle,
                        args=(row["item_id"],))


def search_as_new_shopper() -> None:
    """A search answered with the likes as the taste (fold-in), as on the Catalog page."""
    with st.expander("Search the catalog as this new shopper", icon=":material/search:"):
        words = st.text_input("What are you looking for?", key="ns_query",
                              placeholder="e.g. shoes, a watch, summer dress")
        taste = st.slider("Query only ↔ mostly taste", 0.0, 1.0, personal.DEFAULT_TASTE, 0.05,
                          key="ns_taste")
        if words.strip():
            personal.results(dataset, personal.AsShopper(None, taste, run_id, tuple(liked)),
                             k=12, text=words, hide_history=True)


def liked_strip(rows) -> None:
    """The likes so far as small cards (what the model folds in)."""
    cards = [components.product_card(r, thumb=128, tag=("liked", "#EC4899"))
             for r in rows.to_dict("records")]
    components.card_grid(cards, min_width=110)


def show_picks(picks: usecases.NewShopperPicks) -> None:
    components.notes(picks.notes)
    catalog = {r["item_id"]: r for r in picks.liked.to_dict("records")}
    cards = []
    for row in picks.items.to_dict("records"):
        like = components.mini_thumbs([catalog.get(i, {"item_id": i}) for i in row["resembles"]],
                                      "because you like:")
        tag = ("new item", "#EC4899") if row.get("cold") else None
        cards.append(components.product_card(row, rank=int(row["rank"]), tag=tag,
                                             extra_html=like))
    st.markdown(f"**{len(picks.items)} picks** by {display_name(picks.model)} · ready in "
                f"{1000 * picks.seconds:.0f} ms, without retraining the model",
                help=f"{tooltip('fold-in')} Model run {picks.run_id}.")
    components.card_grid(cards, 170)


MEASURING = "ns_eval_job"     # session key: the id of the measurement job this session started


def measure() -> None:
    """How good first picks are: held-out shoppers treated as new (use case
    `evaluate_cold_start`), fold-in against bestsellers and content only."""
    with st.expander("How good are a new shopper's first picks?", icon=":material/insights:"):
        st.caption("Shoppers with a test history are held out of training; each model is "
                   "fitted without them, then folds in their first 1, 3 and 5 products and is "
                   "scored on what they interacted with later (NDCG@20). Fits the models "
                   "afresh: seconds on the demo, minutes on Myntra.")
        cols = st.columns([3, 1, 1])
        choices = [m for m in ("popularity", "content", "ease", "late-fusion",
                               "attention-fusion") if m in set(usecases.list_runs(
                                   store, dataset)["model"]) or m in ("popularity", "content")]
        chosen = cols[0].multiselect("Models", choices, default=choices[:3] + [
            m for m in choices[3:] if m == runs.loc[runs["run_id"] == run_id, "model"].iloc[0]],
            key="ns_eval_models")
        held = cols[1].number_input("Shoppers held out", 10, 1000, 100, 10, key="ns_eval_n")
        if cols[2].button("Measure", icon=":material/play_arrow:", disabled=not chosen):
            # a background job: leaving the page does not stop it; its result shows here
            st.session_state[MEASURING] = jobs.start("cold_start", list(chosen),
                                                     dataset=dataset, users=int(held))
        done = jobs.follow_pending(MEASURING, "Fitting without the held-out shoppers",
                                   "The measurement")
        if done is not None:
            st.session_state["ns_eval"] = (done.dataset, done.result)
        stored = st.session_state.get("ns_eval")
        if stored and stored[0] == dataset:
            st.plotly_chart(charts.cold_start(stored[1]), width="stretch")


if mode == MODES[0]:
    if liked:
        st.subheader("Your picks")
        head = st.columns([5, 1])
        head[0].markdown(f"You like **{len(liked)}** product{'s' * (len(liked) > 1)}: "
                         + ", ".join(item_label(r) for r in
                                     items[items["item_id"].isin(liked)].to_dict("records")))
        head[1].button("Start over", on_click=clear, icon=":material/restart_alt:")
        picks = components.call_or_stop("No picks", usecases.new_shopper_picks, store,
                                        dataset, liked, model=run_id, k=k,
                                        train_if_missing=False)
        show_picks(picks)
        search_as_new_shopper()
    else:
        st.info("Tick at least one product below: your picks appear here at once.",
                icon=":material/touch_app:")
    with st.container(border=True):
        st.markdown("**Tick products you like**" + (" (more likes, sharper picks)"
                                                    if liked else ""))
        pick_grid()
else:
    upload = st.file_uploader("A photo of something you like", key="ns_photo",
                              help="JPEG, PNG, WebP...; it stands for the catalog products "
                                   "that look most like it.")
    if upload is None:
        st.info("Upload a product photo: your picks appear at once.", icon=":material/upload:")
        st.stop()
    try:
        preview = resources.image_uri_from_bytes(upload.getvalue())
    except RecsysError as exc:
        components.error_box(exc, "This file cannot be used")
        st.stop()
    picks = components.call_or_stop("No picks", usecases.new_shopper_picks, store, dataset,
                                    photo=upload.getvalue(), model=run_id, k=k,
                                    train_if_missing=False)
    left, right = st.columns([1, 3], gap="large")
    left.markdown(f'<div class="rs-query"><img src="{preview}"/></div>', unsafe_allow_html=True)
    with right:
        st.markdown("**Your photo looks like** (these stand for your taste)")
        liked_strip(picks.liked)
    show_picks(picks)

measure()
