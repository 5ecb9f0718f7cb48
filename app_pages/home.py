"""Home: what the demo shows, the active catalog at a glance, where to go next."""

import streamlit as st

from recsys.bootstrap import readiness
from ui import charts, components, resources

st.markdown(components.CSS, unsafe_allow_html=True)
st.markdown(
    '<div class="rs-hero"><h1>Multimodal recommendations</h1><p>Products are embedded by what '
    'they <b>look like</b> (photos) and what they <b>say</b> (titles and descriptions) in one '
    'CLIP space, and fused with what <b>shoppers did</b> (views, carts, purchases). Search by '
    'photo, see and understand each shopper\'s picks, train fusion models and compare them with '
    'classic baselines.</p></div>', unsafe_allow_html=True)

dataset = components.require_dataset()
store = resources.get_store()
state = readiness(store, dataset)
info = store.datasets().set_index("name").loc[dataset]

cols = st.columns(5)
cols[0].metric("Products", f"{state.items:,}")
cols[1].metric("With photos", f"{state.photos:,}")
cols[2].metric("Shoppers", f"{state.users:,}")
cols[3].metric("Interactions", f"{state.interactions:,}")
cols[4].metric("Trained models", f"{state.models:,}")
st.caption(f"Dataset **{dataset}** ({info['kind']}) · encoder: "
           f"{state.encoder or 'none yet'}"
           + (f" · {info['attribution']}" if isinstance(info["attribution"], str) else ""))

if state.missing:
    steps = {"encoder": "align the encoder and embed the items (Visual search or Train page)",
             "model": "train a model (Train page)"}
    st.info("To use every page, " + "; ".join(steps[s] for s in state.missing if s in steps)
            + ".")

items = resources.items(dataset)
photos = items[items["image_path"].notna()]
if len(photos):
    st.subheader("From the catalog")
    sample = photos.sample(n=min(12, len(photos)), random_state=7)
    components.product_grid(sample, min_width=130)

st.subheader("Explore")
links = st.columns(3)
with links[0]:
    st.page_link("app_pages/visual_search.py", label="Visual search", icon=":material/image_search:")
    st.caption("Upload a product photo (or pick one) and find the most similar products.")
    st.page_link("app_pages/catalog.py", label="Catalog", icon=":material/grid_view:")
    st.caption("Browse with filters, or search by meaning: \"red summer dress\".")
with links[1]:
    st.page_link("app_pages/user_picks.py", label="User picks", icon=":material/person_search:")
    st.caption("Pick a shopper, see their history and personalised picks, and why.")
    st.page_link("app_pages/train.py", label="Train", icon=":material/model_training:")
    st.caption("Train a fusion model or a baseline and watch its curves live.")
with links[2]:
    st.page_link("app_pages/evaluate.py", label="Evaluate", icon=":material/leaderboard:")
    st.caption("Compare models: accuracy, precision, recall, F1, NDCG, cold-start slices.")
    st.page_link("app_pages/data.py", label="Data", icon=":material/database:")
    st.caption("Import a catalog or interactions, simulate shoppers.")

if state.interactions:
    left, right = st.columns(2)
    if items["master_category"].notna().any():
        left.plotly_chart(charts.category_mix(items), width="stretch")
    weekly = resources.weekly_events(dataset)
    if len(weekly):
        right.plotly_chart(charts.events_over_time(weekly), width="stretch")
