"""Catalog: browse products with filters, or search them by meaning with the CLIP text tower."""

import math
import time

import streamlit as st

from recsys.catalog import available_facets, facet_values, filter_items, item_label, rank_subset
from recsys.catalog import with_items
from recsys.errors import RecsysError
from ui import components, resources

components.page_setup("Catalog", "Browse the products, filter them, or describe what you want "
                                 "in words: the CLIP text encoder ranks the photos by meaning.")
dataset = components.require_dataset()
items = resources.items(dataset)
if items.empty:
    st.info(f"'{dataset}' has no products. Import a catalog on the Data page.")
    st.stop()

facets = available_facets(items)
with st.container(border=True):
    query = st.text_input("Search by meaning", placeholder="e.g. red summer dress, black leather "
                          "boots, a watch with a white dial", key="cat_query",
                          help="Encoded by the CLIP text tower and compared with every product's "
                               "photo and text vectors.")
    cols = st.columns(len(facets) + 1 if facets else 1)
    chosen = {}
    for col, (column, label) in zip(cols, facets.items()):
        chosen[column] = col.multiselect(label, facet_values(items, column),
                                         key=f"cat_f_{column}")
    keywords = cols[-1].text_input("Keywords", placeholder="brand, word, id", key="cat_kw")

filtered = filter_items(items, chosen, keywords)
index = resources.item_index(dataset)
elapsed = None
if query.strip():
    if index is None:
        components.no_vectors_notice(dataset)
    weight = st.slider("Match on photos ↔ texts", 0.0, 1.0, 0.7, 0.05, key="cat_w",
                       help="1 = rank by the product photos only; 0 = by the product texts only.")
    try:
        t0 = time.perf_counter()
        encoder = resources.encoder_for(dataset, index)
        vec = encoder.encode_text(query.strip())
        result = rank_subset(index, filtered["item_id"], text=vec, image_weight=weight,
                             k=min(len(filtered), 240))
        shown = with_items(filtered, result)
        elapsed = time.perf_counter() - t0
    except RecsysError as exc:
        components.error_box(exc, "Search failed")
        st.stop()
else:
    shown = filtered.sort_values("item_id")

size = st.session_state.get("cat_page_size", 24)
pages = max(1, math.ceil(len(shown) / size))
head = st.columns([3, 1, 1])
head[0].markdown(f"**{len(shown):,}** of {len(items):,} products"
                 + (f" · ranked by CLIP in {1000 * elapsed:.0f} ms" if elapsed else ""))
if st.session_state.get("cat_page", 1) > pages:
    st.session_state["cat_page"] = 1
page = int(head[1].number_input("Page", 1, pages, key="cat_page", disabled=pages == 1,
                                help=f"{pages} pages"))
head[2].selectbox("Per page", [24, 48, 96], key="cat_page_size")
window = shown.iloc[(page - 1) * size: page * size]
if window.empty:
    st.info("No product matches these filters.")
else:
    components.product_grid(window, score_col="score" if query.strip() else None,
                            score_label="match", ranked=bool(query.strip()))

if len(window):
    with st.container(border=True):
        st.markdown("**Find products like one of these**")
        left, right = st.columns([4, 1])
        options = list(window["item_id"])
        labels = dict(zip(window["item_id"], [item_label(r) for r in window.to_dict("records")]))
        pick = left.selectbox("Product", options, format_func=lambda i: f"{labels[i]} ({i})",
                              key="cat_pick", label_visibility="collapsed")
        if right.button("Similar items", icon=":material/image_search:", width="stretch"):
            st.session_state["vs_item"] = pick
            st.session_state["vs_mode"] = "Pick a catalog item"
            st.switch_page("app_pages/visual_search.py")
