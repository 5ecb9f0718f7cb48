"""Home: what the demo shows, the active catalog at a glance, where to go next."""

import streamlit as st

from recsys import usecases
from ui import charts, components, resources, state

st.markdown(components.CSS, unsafe_allow_html=True)
st.markdown(
    '<div class="rs-hero"><h1>Multimodal recommendations</h1><p>Products are compared by what '
    'they <b>look like</b> (photos) and what they <b>say</b> (titles and descriptions), read '
    'by one photo-and-text model, and by what <b>shoppers did</b> (views, carts, purchases). '
    'Search by photo, see and understand each shopper\'s picks, train models that combine '
    'all three and compare them with classic baselines.</p></div>', unsafe_allow_html=True)

dataset = components.require_dataset()
store = resources.get_store()
ready = usecases.readiness(store, dataset)
info = next(d for d in usecases.status(store)["datasets"] if d["name"] == dataset)

cols = st.columns(5)
cols[0].metric("Products", f"{ready.items:,}")
cols[1].metric("With photos", f"{ready.photos:,}")
cols[2].metric("Shoppers", f"{ready.users:,}")
cols[3].metric("Interactions", f"{ready.interactions:,}")
cols[4].metric("Trained models", f"{ready.models:,}")
st.caption(f"Dataset **{dataset}** ({info['kind']})"
           + (f" · {info['attribution']}" if isinstance(info["attribution"], str) else ""))
with st.expander("Technical details"):
    st.caption(f"Photo and text reader (encoder): {ready.encoder or 'none yet'}")

if ready.missing:
    steps = {"encoder": "align the encoder and embed the items (Visual search or Train page)",
             "model": "train a model (Train page)"}
    st.info("To use every page, " + "; ".join(steps[s] for s in ready.missing if s in steps)
            + ".")

sample = resources.sample_items(dataset, 12)     # a narrow read: never the whole catalog
if len(sample):
    st.subheader("From the catalog")
    components.product_grid(sample, min_width=130)

EXPLORE = [
    [(state.VISUAL_SEARCH, "Upload a product photo, or try an example in one click, and find "
                           "the most similar products, filtered by gender, category or price."),
     (state.CATALOG, "Browse with filters, or search by meaning: \"red summer dress\".")],
    [(state.USER_PICKS, "Pick a shopper, see their history and personalised picks, and why "
                        "each was picked, in one sentence."),
     (state.TRAIN, "Train a fusion model or a baseline and watch its curves live.")],
    [(state.EVALUATE, "Compare models: how much of what shoppers went on to choose "
                      "each one finds and how high it ranks it, for new and regular shoppers."),
     (state.DATA, "Load the Myntra sample, import a catalog or interactions, simulate "
                  "shoppers.")],
]
st.subheader("Explore")
for column, entries in zip(st.columns(3), EXPLORE):
    with column:
        for page, caption in entries:
            state.link(page)
            st.caption(caption)

if ready.interactions:
    left, right = st.columns(2)
    mix = resources.value_counts(dataset, "master_category")
    if mix[[v is not None for v in mix.index]].sum() > 0:
        left.plotly_chart(charts.category_mix_counts(mix), width="stretch")
    weekly = resources.weekly_events(dataset)
    if len(weekly):
        right.plotly_chart(charts.events_over_time(weekly), width="stretch")
