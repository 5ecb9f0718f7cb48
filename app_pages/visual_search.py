"""Visual search: a photo (uploaded, taken, an example, or a catalog item) -> the most similar
products, narrowed by real filters (gender, category, type, colour, price) and refined by
words for style."""

import html
import math
from pathlib import Path

import streamlit as st

from recsys import usecases
from recsys.core.errors import RecsysError
from recsys.data.export import to_csv_bytes
from recsys.data.video import looks_like_video
from recsys.search.facets import item_label
from ui import components, personal, resources, state

MODES = ["Upload a photo", "Pick a catalog item", "Take a photo"]
ITEM_MODE = MODES[1]
FILTERS = ("gender", "master_category", "article_type", "base_colour")
EXACT_COLOUR = "#059669"
CROP_SKIPPED = {"product shot": "not cropped: a product shot",
                "catalog photo": "not cropped: a catalog photo",
                "nothing stands out": "not cropped: no product stands out",
                "region too small": "not cropped: no product found",
                "fills the photo": "not cropped: the product fills the photo"}

components.page_setup("Visual search", "Show a product photo and get the closest products in "
                                       "the catalog, by look and by description.")
dataset = components.require_dataset()
store = resources.get_store()
try:
    info = usecases.prepare_search(store, dataset)   # loads index and encoder before the first
    for note in info.notes:                          # upload; e.g. the disk is full: the index
        st.warning(note, icon=":material/storage:")  # answers from memory
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


def use_example(path: str, label: str) -> None:
    st.session_state["vs_example"] = (path, label)


def uploaded() -> None:
    st.session_state.pop("vs_example", None)        # a new upload replaces the example


@st.cache_data(show_spinner=False, max_entries=8)
def examples(db: str, name: str, token: str) -> list[dict]:
    return usecases.example_queries(resources.get_store(), name)


def example_strip() -> None:
    """Example photos, one click each: catalog photos and phone-style shots."""
    shown = examples(str(store.path), dataset, store.items_version(dataset))
    for kind, caption in (("catalog", "Or try a catalog photo"),
                          ("phone", "...or a phone photo of a catalog product (made by the "
                                    "app)")):
        group = [(n, ex) for n, ex in enumerate(shown) if ex["kind"] == kind]
        if not group:
            continue
        st.caption(caption)
        for col, (n, ex) in zip(st.columns(len(group)), group):
            with col:
                uri = resources.thumbnail_uri(ex["path"], 160)
                if uri:
                    st.markdown(f'<img src="{uri}" style="width:100%;border-radius:8px" '
                                f'title="{html.escape(ex["label"])}"/>', unsafe_allow_html=True)
                st.button("Try", key=f"vs_ex_{n}", on_click=use_example,
                          args=(ex["path"], ex["label"]), width="stretch", help=ex["label"])


def filter_widgets() -> tuple[dict, tuple | None]:
    """Gender, category, type, colour and price filters (those this catalog has), from a
    narrow cached read of the facet columns (not the whole catalog)."""
    offered = usecases.search_facets(store, dataset, FILTERS)
    chosen = {}
    cols = st.columns(2)
    for n, (column, (label, values)) in enumerate(offered.facets.items()):
        chosen[column] = cols[n % 2].multiselect(label, values, key=f"vs_f_{column}",
                                                 placeholder="any")
    price = None
    if offered.price is not None:
        low, high = float(math.floor(offered.price[0])), float(math.ceil(offered.price[1]))
        picked = st.slider("Price (₹)", low, high, (low, high), key="vs_price")
        if picked != (low, high):
            price = picked
    return {c: v for c, v in chosen.items() if v}, price


query_col, result_col = st.columns([1, 3], gap="large")
with query_col:
    photo = None
    item_id = None
    query_name = "your photo"
    if mode == "Upload a photo":
        upload = st.file_uploader("Product photo or short video", key="vs_upload",
                                  on_change=uploaded,
                                  help="JPEG, PNG, WebP, GIF, BMP or TIFF up to 40 megapixels; "
                                       "or an MP4 / WebM video (a few of its frames are "
                                       "searched, pooled).")
        example = st.session_state.get("vs_example")
        if example is not None and Path(example[0]).is_file():
            photo, query_name = Path(example[0]).read_bytes(), example[1]
        elif upload is not None:
            photo = upload.getvalue()
            query_name = upload.name
        example_strip()
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
    crop = False
    if mode != ITEM_MODE:
        crop = st.toggle("Crop to the product", value=True, key="vs_crop",
                         help="For phone photos: search with the part of the photo that stands "
                              "out from its background, not the table or floor around it. "
                              "Studio photos on a plain background are left as they are.")
    st.markdown("**Narrow down**")
    filters, price = filter_widgets()
    refine = st.text_input("Style words (optional)", key="vs_refine",
                           placeholder="e.g. polo collar, in blue, striped",
                           help="Words move the query towards a style. To keep only some "
                                "products (for women, shoes, under ₹1,000) use the filters "
                                "above.")
    weight = st.slider("Match on photos ↔ texts", 0.0, 1.0,
                       usecases.default_image_weight(photo=mode != ITEM_MODE), 0.05,
                       key=f"vs_w_{MODES.index(mode)}",
                       help="How much the products' photos count against their texts. 1 = look "
                            "alike only; 0 = described alike only.")
    k = st.slider("Results", 4, 48, 16, 4, key="vs_k")
    as_shopper = personal.controls("vs", dataset)          # "search as a shopper" (optional)

preview = None
if photo is not None and looks_like_video(photo):
    with query_col:
        st.video(photo)                        # search_similar tells a video by its bytes
elif photo is not None:
    try:
        preview = resources.image_uri_from_bytes(photo)
    except RecsysError as exc:
        with query_col:
            components.error_box(exc, "This file cannot be used")
        photo = None
elif item_id is not None:
    row = items[items["item_id"] == item_id].iloc[0].to_dict()
    preview = resources.thumbnail_uri(row.get("image_path"), 384)

with result_col:
    if photo is None and item_id is None:
        st.info("Upload a product photo, take one, pick a catalog product, or click one of the "
                "examples.", icon=":material/image_search:")
        st.stop()
    if as_shopper is not None:
        personal.results(dataset, as_shopper, k=k, min_width=165, photo=photo,
                         item_id=item_id, text=refine, image_weight=weight)
        st.stop()
    found = components.call_or_stop("Search failed", usecases.search_similar, store, dataset,
                                    photo=photo, item_id=item_id, text=refine,
                                    image_weight=weight, k=k, filters=filters, price=price,
                                    crop=crop)
    hits = found.results
    exact = found.exact_match
    if found.query_preview is not None:      # the whole photo, upright, with the crop drawn on
        preview = resources.image_uri_from_bytes(found.query_preview, trusted=True)  # ours
    badge = ""
    if exact is not None:
        title = item_label(hits[hits["item_id"] == exact["item_id"]].iloc[0].to_dict()) \
            if (hits["item_id"] == exact["item_id"]).any() else f"item {exact['item_id']}"
        how = "the same file" if exact["how"] == "same file" else \
            f"a near-identical photo (similarity {exact['similarity']:.3f})"
        badge = (f'<span class="rs-badge">exact match</span><div class="rs-meta">This photo is '
                 f'{how} of <b>{html.escape(title)}</b> in the catalog.</div>')
    narrowed = [f"{len(v)} {c.replace('_', ' ')}" for c, v in filters.items()]
    if price is not None:
        narrowed.append(f"₹{price[0]:,.0f}-{price[1]:,.0f}")
    crop_note = ""
    if found.crop is not None:
        crop_note = "cropped to the product (the box)" if found.crop["cropped"] else \
            CROP_SKIPPED.get(found.crop["reason"], f"not cropped: {found.crop['reason']}")
    detail = " · ".join(x for x in (
        crop_note,
        f"style words: “{refine.strip()}”" if refine.strip() else "",
        "filters: " + ", ".join(narrowed) if narrowed else "") if x)
    img = components.query_shot(preview, found.crop) if preview else ""
    headline = f"<b>{len(hits)} most similar products</b> to {html.escape(query_name)}"
    if found.no_close_match:      # under the catalog's calibrated threshold: say so, plainly
        headline = (f'<span class="rs-badge rs-nomatch">No close match — similar styles'
                    f'</span><div><b>Nothing in the catalog looks closely like '
                    f'{html.escape(query_name)}.</b> The {len(hits)} products below are '
                    f'similar styles, not the same product.</div>')
    st.markdown(f'<div class="rs-querybar">{img}<div>{headline}{badge}<div class="rs-meta">'
                f'{html.escape(detail)}</div><div class="rs-meta">of {found.items:,} '
                f'· answered in {1000 * found.seconds:.0f} ms</div></div></div>',
                unsafe_allow_html=True)
    components.notes(found.notes)
    cards = []
    for row in hits.to_dict("records"):
        parts = []
        if row.get("image_score") is not None and row["image_score"] == row["image_score"]:
            parts.append(f"photo {row['image_score']:.2f}")
        if row.get("text_score") is not None and row["text_score"] == row["text_score"]:
            parts.append(f"text {row['text_score']:.2f}")
        extra = f'<div class="rs-legend">{" · ".join(parts)}</div>' if parts else ""
        tag = ("exact match", EXACT_COLOUR) if exact and row["item_id"] == exact["item_id"] \
            else None
        cards.append(components.product_card(row, rank=int(row["rank"]), score=row["score"],
                                             score_label="similar style" if
                                             found.no_close_match else "similarity",
                                             extra_html=extra,
                                             tag=tag))
    if not cards:
        st.info("No product matches these filters.")
    components.card_grid(cards, min_width=165)
    st.caption(f"Encoder `{found.encoder}`")
    st.download_button("Download results (CSV)",
                       to_csv_bytes(hits[["rank", "item_id", "title", "score", "image_score",
                                          "text_score"]]),
                       file_name="similar_products.csv", mime="text/csv")
