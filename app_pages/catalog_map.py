"""A map of the catalog: every product placed by its fused photo + text vector, clustered and
named, with a shopper's history and picks on top, and which vectors group products best."""

import numpy as np
import pandas as pd
import streamlit as st

from recsys import usecases
from recsys.core.errors import RecsysError
from recsys.models import display_name
from ui import charts, components, jobs, resources, words

VECTORS = {"fused": "photo + text (fused)", "image": "photo only", "text": "text only"}
METHODS = {"auto": "automatic", "umap": "big picture (UMAP)", "tsne": "close neighbours (t-SNE)"}
COLOUR_BY = {"cluster_name": "cluster", "article_type": "type", "master_category": "category",
             "base_colour": "colour", "gender": "gender", "usage": "usage", "season": "season"}
PHOTOS_ON_MAP = 1          # photos per cluster placed on the map (at its centre)
SELECTED = 24

components.page_setup("Catalog map", "Every product on one map, placed by what its photo and "
                                     "text vectors say: look-alikes sit together. Colours are "
                                     "groups of look-alike products (named by their most "
                                     "common attributes) or any attribute; lasso products to "
                                     "see them.")
dataset = components.require_dataset()
store = resources.get_store()
users = resources.users(dataset)

row = st.columns([1.2, 1, 1, 1.2, 1.6])
vectors = row[0].selectbox("Vectors", list(VECTORS), format_func=VECTORS.get, key="map_vec")
method = row[1].selectbox("Map layout", list(METHODS), format_func=METHODS.get,
                          key="map_method",
                          help=f"{words.tooltip('tsne')} Big picture keeps how far apart the "
                               "groups are; close neighbours keeps each product's nearest "
                               "look-alikes together. Automatic: big picture for large "
                               "catalogs (faster there), close neighbours for small ones. "
                               "Computed once per dataset and vectors, then cached.")
n_clusters = row[2].slider("Groups", 4, 40, 20, key="map_k",
                           help="How many groups of look-alike products to colour (k-means).")
colour = row[3].selectbox("Colour by", list(COLOUR_BY), format_func=COLOUR_BY.get,
                          key="map_colour")
ids = [""] + list(users["user_id"])[:2000]
names = dict(zip(users["user_id"], users["name"].fillna("")))
user = row[4].selectbox("Show a shopper", ids, key="map_user",
                        format_func=lambda u: "nobody" if not u else
                        " · ".join(x for x in (u, names.get(u)) if x),
                        help="Their history (stars) and their picks (diamonds) on the map.")

def map_now(progress=None, only_cached: bool = True):
    """The map with this page's settings (None: its projection is not computed yet)."""
    return usecases.catalog_map(store, dataset, vectors=vectors, method=method,
                                clusters=n_clusters, user_id=user or None, k=20,
                                progress=progress, only_cached=only_cached)


# The projection (the slow part: over a minute on Myntra) is computed by a background job, so
# leaving the page does not restart it; the page follows it and draws the map when it is done.
running = jobs.find("map", dataset)
took = None                     # seconds the job took, when this run waited for one
panel = components.ProgressPanel("Drawing the map")
try:
    cmap = None if running is not None else map_now(panel)
except usecases.NoVectors:
    panel.done("")
    components.no_vectors_notice(dataset)
except RecsysError as exc:
    panel.done("")
    components.error_box(exc, "No map")
    st.stop()
if cmap is None:
    if running is None:
        running = jobs.runner().get(jobs.start("map", dataset=dataset, vectors=vectors,
                                               method=method, clusters=n_clusters))
    panel.done("")
    job = jobs.follow(running.job_id, "Projecting the catalog")
    if job is None or job.active:
        st.stop()               # goes on in the background; the sidebar reruns the page
    if job.status != "finished":
        jobs.ended_message(job, "The map")
        st.stop()
    took = job.seconds
    panel = components.ProgressPanel("Drawing the map")
    cmap = components.call_or_stop("No map", map_now, panel, only_cached=False)
panel.done(f"{len(cmap.points):,} products · {METHODS[cmap.method]} "
           + (f"computed in {took:.0f} s" if took is not None else
              "(cached)" if cmap.cached else f"computed in {cmap.seconds:.0f} s"))
components.notes(cmap.notes)


def photo_layer(points: pd.DataFrame, per_cluster: int) -> list[dict]:
    """Small photos of the products nearest each cluster's centre, placed where they sit, drawn
    below the points (a shopper's stars and the cluster points stay visible)."""
    span = float(max(np.ptp(points["x"]), np.ptp(points["y"]), 1e-6))
    size = span / 20
    images = []
    for _, group in points.groupby("cluster"):
        centre = group[["x", "y"]].median().to_numpy()
        near = group.assign(_d=((group[["x", "y"]].to_numpy() - centre) ** 2).sum(1))
        for r in near.nsmallest(per_cluster, "_d").to_dict("records"):
            uri = resources.thumbnail_uri(r.get("image_path"), 96)
            if uri:
                images.append(dict(source=uri, x=r["x"], y=r["y"], xref="x", yref="y",
                                   sizex=size, sizey=size, xanchor="center", yanchor="middle",
                                   layer="below", opacity=0.9))  # points and stars on top
    return images


metrics = st.columns(4)
metrics[0].metric("Products", f"{len(cmap.points):,}")
metrics[1].metric("Groups", n_clusters)
if cmap.purity is not None:
    metrics[2].metric(words.heading("purity"), f"{cmap.purity:.1%}",
                      help=words.tooltip("purity"))
    metrics[3].metric(words.heading("nmi"), f"{cmap.nmi:.3f}",
                      help=words.tooltip("nmi"))
photos = st.toggle("Photos on the map", value=True, key="map_photos",
                   help="Photos of the products nearest each cluster's centre.")
figure = charts.catalog_map(cmap.points, colour, cmap.clusters, cmap.overlay,
                            photo_layer(cmap.points, PHOTOS_ON_MAP) if photos else (),
                            title=f"{VECTORS[cmap.vectors]} · {METHODS[cmap.method]}")
event = st.plotly_chart(figure, width="stretch", on_select="rerun", key="map_chart",
                        selection_mode=("points", "box", "lasso"))
if cmap.overlay:
    st.caption(f"★ {len(cmap.overlay['history'])} products in the history of "
               f"{cmap.overlay.get('name') or cmap.overlay['user_id']} · ◆ their top "
               f"{len(cmap.overlay['picks'])} picks by {display_name(cmap.overlay['model'])}")

chosen = []
selection = getattr(event, "selection", None) or {}
for point in selection.get("points", []) if isinstance(selection, dict) else []:
    data = point.get("customdata")
    if data:
        chosen.append(str(data[0]))
if chosen:
    st.subheader(f"{len(chosen)} selected product{'s' * (len(chosen) > 1)}")
    rows = cmap.points.set_index("item_id").loc[list(dict.fromkeys(chosen))[:SELECTED]]
    components.product_grid(rows.reset_index(), min_width=140)
else:
    st.caption("Click a point, or drag a box or lasso around products, to see their photos "
               "here.")

left, right = st.columns([3, 2], gap="large")
with left:
    st.subheader("Groups")
    table = cmap.clusters.sort_values("size", ascending=False)
    show = {"cluster": "#", "name": "named after", "size": "products"}
    for col in ("article_type", "base_colour", "gender", "usage"):
        if f"top_{col}" in table:
            show[f"share_{col}"] = f"{col.replace('_', ' ')} share"
    frame = table[list(show)].rename(columns=show)
    frame["#"] = frame["#"] + 1
    st.dataframe(frame, hide_index=True, width="stretch",
                 column_config={v: st.column_config.ProgressColumn(v, format="percent",
                                                                   min_value=0, max_value=1)
                                for k, v in show.items() if k.startswith("share_")})
with right:
    st.subheader("Which vectors organise the catalog best?")
    st.caption("Products grouped by their photos, their texts and both together; each "
               "grouping scored by how well it matches the products' types.")
    key = f"map_purity:{dataset}:{n_clusters}"
    pending = f"{key}:job"
    if st.button("Compare photo, text and fused", icon=":material/insights:"):
        # a background job: leaving the page does not stop it, coming back shows its result
        st.session_state[pending] = jobs.start("purity", [n_clusters], dataset=dataset)
    done = jobs.follow_pending(pending, "Clustering", "The comparison")
    if done is not None:
        st.session_state[key] = done.result
    if key in st.session_state:
        result = st.session_state[key]
        st.plotly_chart(charts.purity_bars(result), width="stretch")
        best = result.sort_values("purity", ascending=False).iloc[0]
        st.markdown(f"**{VECTORS[best['vectors']]}** vectors group products by type best: "
                    f"{best['purity']:.1%} of products share their cluster's most common type "
                    f"({words.label('nmi')}: {best['nmi']:.3f}).")
