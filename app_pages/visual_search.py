"""Visual search: a photo (uploaded, taken, or a catalog item) -> the most similar products."""

import streamlit as st

from recsys import usecases
from recsys.catalog import item_label
from recsys.errors import RecsysError
from ui import components, personal, resources, state

MODES = ["Upload a photo", "Pick a catalog item", "Take a photo"]
ITEM_MODE = MODES[1]

components.page_setup("Visual search", "Show a product photo and get the closest products in "
                                       "the catalog, by look and by description.")
dataset = components.require_dataset()
store = resources.get_store()
try:
    usecases.prepare_search(store, dataset)   # loads index and encoder before the first upload
except usecases.NoVectors:
    components.no_vectors_notice(dataset)
except RecsysError as exc:                    # e.g. the encoder's checkpoint file is gone
    components.error_box(exc, "Search is not available")
    st.stop()

requested = state.take_similar_request()           # "Similar items" on the Catalog page
if requested is not None:
    st.session_state["vs_mode"] = ITEM_MODE
    st.session_state["vs_item"] = requested
if st.session_state.get("vs_mode") not in MODES:
    st.session_state["vs_mode"] = MODES[0]
mode = st.segmented_control("Query", MODES, key="vs_mode", required=True,
                            label_visibility="collapsed")

query_col, result_col = st.columns([1, 3], gap="large")
with query_col:
    photo = None
    item_id = None
    query_name = "your photo"
    if mode == "Upload a photo":
        upload = st.file_uploader("Product photo", key="vs_upload",
                                  help="JPEG, PNG, WebP, GIF, BMP or TIFF; up to 40 megapixels.")
        if upload is not None:
            photo = upload.getvalue()
            query_name = upload.name
    elif mode == "Take a photo":
        shot = st.camera_input("Camera", key="vs_camera")
        if shot is not None:
            photo = shot.getvalue()
    else:
        items = resources.items(dataset)      # only here: a big catalog's rows cost a rerun
        ids = list(items["item_id"])
        labels = dict(zip(ids, [item_label(r) for r in items.to_dict("records")]))
        default = st.session_state.get("vs_item")
        item_id = query_name = st.selectbox("Catalog product (type to search)", ids,
                               index=ids.index(default) if default in ids else 0,
                               format_func=lambda i: f"{labels[i]} ({i})", key="vs_item_box")
        st.session_state["vs_item"] = item_id
    refine = st.text_input("Refine with words (optional)", key="vs_refine",
                           placeholder="e.g. in red, for women")
    weight = st.slider("Match on photos ↔ texts", 0.0, 1.0,
                       usecases.default_image_weight(photo=mode != ITEM_MODE), 0.05,
                       key=f"vs_w_{MODES.index(mode)}",
                       help="How much the products' photos count against their texts. 1 = look "
                            "alike only; 0 = described alike only.")
    k = st.slider("Results", 4, 48, 16, 4, key="vs_k")
    as_shopper = personal.controls("vs", dataset)          # "search as a shopper" (optional)

    preview = None
    if photo is not None:
        try:
            preview = resources.image_uri_from_bytes(photo)
        except RecsysError as exc:
            components.error_box(exc, "This file cannot be used")
            photo = None
    elif item_id is not None:
        row = items[items["item_id"] == item_id].iloc[0].to_dict()
        preview = resources.thumbnail_uri(row.get("image_path"), 384)
    if preview:
        st.markdown(f'<div class="rs-query"><img src="{preview}"/></div>', unsafe_allow_html=True)

with result_col:
    if photo is None and item_id is None:
        st.info("Upload a product photo, take one, or pick a catalog product to see the most "
                "similar items.", icon=":material/image_search:")
        st.stop()
    if as_shopper is not None:
        personal.results(dataset, as_shopper, k=k, min_width=165, photo=photo,
                         item_id=item_id, text=refine, image_weight=weight)
        st.stop()
    found = components.call_or_stop("Search failed", usecases.search_similar, store, dataset,
                                    photo=photo, item_id=item_id, text=refine,
                                    image_weight=weight, k=k)
    hits = found.results
    st.markdown(f"**{len(hits)} most similar products** to {query_name} (of {found.items:,}) · "
                f"answered in {1000 * found.seconds:.0f} ms · encoder `{found.encoder}`")
    cards = []
    for row in hits.to_dict("records"):
        parts = []
        if row.get("image_score") is not None and row["image_score"] == row["image_score"]:
            parts.append(f"photo {row['image_score']:.2f}")
        if row.get("text_score") is not None and row["text_score"] == row["text_score"]:
            parts.append(f"text {row['text_score']:.2f}")
        extra = f'<div class="rs-legend">{" · ".join(parts)}</div>' if parts else ""
        cards.append(components.product_card(row, rank=int(row["rank"]), score=row["score"],
                                             score_label="similarity", extra_html=extra))
    components.card_grid(cards, min_width=165)
    st.download_button("Download results (CSV)",
                       hits[["rank", "item_id", "title", "score", "image_score", "text_score"]]
                       .to_csv(index=False), file_name="similar_products.csv", mime="text/csv")
