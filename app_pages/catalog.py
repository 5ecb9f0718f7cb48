"""Catalog: browse products with filters, or search them by meaning (the CLIP text tower's vector of
the words against the products' photo and text vectors)."""

import math

import streamlit as st

from recsys import usecases
from recsys.core.errors import RecsysError
from recsys.search.facets import item_label
from ui import components, personal, resources, state

components.page_setup("Catalog", "Browse the products, filter them, or describe what you want "
                                 "in words: the products whose photos and descriptions are closest in "
                                 "meaning come first.")
dataset = components.require_dataset()
store = resources.get_store()
offered = usecases.search_facets(store, dataset)     # counted by the database, cached
if not store.item_count(dataset):
    st.info(f"'{dataset}' has no products. Import a catalog on the Data page.")
    st.stop()

with st.container(border=True):
    query = st.text_input("Search by meaning", placeholder="e.g. red summer dress, black leather "
                          "boots, a watch with a white dial", key="cat_query",
                          help="Your words are turned into numbers (a vector) by the shop's text "
                               "model and compared with every product's photo and description.")
    cols = st.columns(len(offered.facets) + 1 if offered.facets else 1)
    chosen = {}
    for col, (column, (label, values)) in zip(cols, offered.facets.items()):
        chosen[column] = col.multiselect(label, values, placeholder="Any",
                                         key=f"cat_f_{column}")
    keywords = cols[-1].text_input("Keywords", placeholder="brand, word, id", key="cat_kw")

weight = None
if query.strip():
    try:
        usecases.prepare_search(store, dataset)       # loads the index and the text encoder
    except usecases.NoVectors:
        components.no_vectors_notice(dataset)
    except RecsysError as exc:                        # e.g. the encoder's checkpoint is gone
        components.error_box(exc, "Search is not available")
        st.stop()
    weight = st.slider("Match on photos ↔ texts", 0.0, 1.0,
                       usecases.default_image_weight(photo=False), 0.05, key="cat_w",
                       help="1 = rank by the product photos only; 0 = by the product texts only.")
    as_shopper = personal.controls("cat", dataset)          # "search as a shopper" (optional)
    if as_shopper is not None:
        personal.results(dataset, as_shopper, k=24, text=query, filters=chosen,
                         image_weight=weight)
        st.stop()
size = st.session_state.get("cat_page_size", 24)
if query.strip():
    found = components.call_or_stop("Search failed", usecases.search_catalog, store, dataset,
                                    query=query, filters=chosen, keywords=keywords,
                                    image_weight=weight)
    matched = len(found.items)
else:        # browsing: the database filters, counts and reads only the page shown
    found = components.call_or_stop("Search failed", usecases.browse_catalog, store, dataset,
                                    filters=chosen, keywords=keywords,
                                    page=st.session_state.get("cat_page", 1), size=size)
    matched = found.matched
pages = max(1, math.ceil(matched / size))
head = st.columns([3, 1, 1])
head[0].markdown(usecases.catalog_count_words(found))
if found.understood:
    head[0].caption("Understood: " + "; ".join(f"{attr} {', '.join(values)}" for attr, values
                                                in found.understood.items())
                    + " (preferred in the ranking, not required)")
if st.session_state.get("cat_page", 1) > pages:
    st.session_state["cat_page"] = 1
page = int(head[1].number_input("Page", 1, pages, key="cat_page", disabled=pages == 1,
                                help=f"{pages} pages"))
head[2].selectbox("Per page", [24, 48, 96], key="cat_page_size")
if found.ranked:
    window = found.items.iloc[(page - 1) * size: page * size]
elif found.offset == (page - 1) * size:
    window = found.items
else:            # the page number was reset above: read that page
    window = usecases.browse_catalog(store, dataset, filters=chosen, keywords=keywords,
                                     page=page, size=size).items
if window.empty:
    st.info("No product matches these filters.")
else:
    components.product_grid(window, score_col="score" if found.ranked else None,
                            score_label="match", ranked=found.ranked)

if len(window):
    with st.container(border=True):
        st.markdown("**Find products like one of these**")
        left, right = st.columns([4, 1])
        options = list(window["item_id"])
        labels = dict(zip(window["item_id"], [item_label(r) for r in window.to_dict("records")]))
        pick = left.selectbox("Product", options, format_func=lambda i: f"{labels[i]} ({i})",
                              key="cat_pick", label_visibility="collapsed")
        if right.button("Similar items", icon=":material/image_search:", width="stretch"):
            state.open_similar(pick)
