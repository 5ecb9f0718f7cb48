"""Multimodal recommendation dashboard: `streamlit run app.py`.

Layout only: the pages (`app_pages/`, listed in `ui/state.py`) call the use cases of
`recsys.usecases`. On an empty database the app first builds the demo catalog, aligns the
encoder and trains a default model, with visible progress.
"""

from __future__ import annotations

import streamlit as st

from recsys import usecases
from recsys.core.errors import RecsysError
from recsys.demo.catalog import DEMO_DATASET
from recsys.store import StoreError
from ui import components, jobs, resources, state

# An emoji: the browser draws it from a data URI. A ":material/...:" page icon would make every
# page fetch its SVG from fonts.gstatic.com, an error offline.
PAGE_ICON = "🛍️"

st.set_page_config(page_title="Multimodal RecSys", page_icon=PAGE_ICON,
                   layout="wide", initial_sidebar_state="expanded")


def open_store():
    """The database, or a clear message when it cannot be opened (e.g. locked by a CLI run)."""
    try:
        return resources.get_store()
    except StoreError as exc:
        st.error(str(exc), icon=":material/lock:")
        st.stop()


def first_start() -> bool:
    """Empty database (or an unfinished demo set-up): build everything, showing progress.
    True when it did (then the page is to be run again, on the new data)."""
    if state.set_up_checked():      # checked once per browser session
        return False
    store = open_store()
    ready = usecases.readiness(store)
    unfinished_demo = ready.dataset == DEMO_DATASET and not ready.ready
    if ready.dataset is not None and not unfinished_demo:
        state.mark_set_up()
        return False
    st.markdown(components.CSS, unsafe_allow_html=True)
    st.markdown('<div class="rs-hero"><h1>Setting up the demo</h1><p>First start: drawing a '
                'demo catalog of a few hundred products, simulating its shoppers, aligning the '
                'CLIP encoder on its photos and texts, and training a first recommender. This '
                'happens once: under a minute on an idle 2-core CPU, two minutes or more '
                'when other programs keep the CPU busy.</p></div>', unsafe_allow_html=True)
    panel = components.ProgressPanel("Setting up")
    try:
        usecases.set_up(store, progress=panel)
    except StoreError:
        raise                 # a damaged or full database: said once, by `main`
    except Exception as exc:  # noqa: BLE001 - shown to the user; the app stays usable
        components.error_box(exc, "The set-up stopped")
        st.info("Fix the cause and reload the page, or import data on the Data page.")
        return False
    panel.done("Ready")
    st.cache_data.clear()
    return True


def main() -> None:
    """The set-up check, the sidebar and the chosen page, behind the one handler of errors
    meant for a person: a `RecsysError` that a page did not show itself (above all a
    `StoreError`: a database file found damaged by any query of any page, a full disk) is a
    message in the page, never a traceback."""
    set_up = False
    try:
        set_up = first_start()
        if not set_up:
            open_store()
            components.dataset_picker()
            jobs.sidebar()
            st.navigation(state.navigation()).run()
    except StoreError as exc:
        st.error(str(exc), icon=":material/database:")
    except RecsysError as exc:
        st.error(str(exc), icon=":material/error:")
    finally:             # also after a page's st.stop(): once per process, after a page is
        if not set_up:   # drawn, freeze the long-lived heap in a thread (see its doc)
            resources.settle_heap()
    if set_up:           # the page again, on the new data (its run then freezes the heap)
        st.rerun()


main()
