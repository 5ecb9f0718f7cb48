"""Multimodal recommendation dashboard: `streamlit run app.py`.

Layout only: the pages call the `recsys` package. On an empty database the app first builds
the demo catalog, aligns the encoder and trains a default model, with visible progress.
"""

from __future__ import annotations

import streamlit as st

from recsys.bootstrap import bootstrap, readiness
from recsys.demo import DEMO_DATASET
from recsys.store import StoreError
from ui import components, resources

st.set_page_config(page_title="Multimodal RecSys", page_icon=":material/style:",
                   layout="wide", initial_sidebar_state="expanded")

PAGES = {
    "Discover": [
        st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("app_pages/catalog.py", title="Catalog", icon=":material/grid_view:"),
        st.Page("app_pages/visual_search.py", title="Visual search",
                icon=":material/image_search:"),
    ],
    "Personalise": [
        st.Page("app_pages/user_picks.py", title="User picks", icon=":material/person_search:"),
    ],
    "Model lab": [
        st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
        st.Page("app_pages/evaluate.py", title="Evaluate", icon=":material/leaderboard:"),
    ],
    "Admin": [
        st.Page("app_pages/data.py", title="Data", icon=":material/database:"),
    ],
}


def open_store():
    """The database, or a clear message when it cannot be opened (e.g. locked by a CLI run)."""
    try:
        return resources.get_store()
    except StoreError as exc:
        st.error(str(exc), icon=":material/lock:")
        st.stop()


def first_start() -> None:
    """Empty database (or an unfinished demo set-up): build everything, showing progress."""
    if st.session_state.get("set_up"):      # checked once per browser session
        return
    store = open_store()
    state = readiness(store)
    unfinished_demo = state.dataset == DEMO_DATASET and not state.ready
    if state.dataset is not None and not unfinished_demo:
        st.session_state["set_up"] = True
        return
    st.markdown(components.CSS, unsafe_allow_html=True)
    st.markdown('<div class="rs-hero"><h1>Setting up the demo</h1><p>First start: drawing a '
                'demo catalog of a few hundred products, simulating its shoppers, aligning the '
                'CLIP encoder on its photos and texts, and training a first recommender. This '
                'takes well under a minute, once.</p></div>', unsafe_allow_html=True)
    panel = components.ProgressPanel("Setting up")
    try:
        bootstrap(store, progress=panel)
    except Exception as exc:  # noqa: BLE001 - shown to the user; the app stays usable
        components.error_box(exc, "The set-up stopped")
        st.info("Fix the cause and reload the page, or import data on the Data page.")
        return
    panel.done("Ready")
    st.cache_data.clear()
    st.rerun()


first_start()
open_store()
components.dataset_picker()
st.navigation(PAGES).run()
