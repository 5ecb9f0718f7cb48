"""Use cases of the catalog map: the products' fused vectors on a 2-D map with k-means clusters
named by their most common attributes (`catalog_map`), and how well photo, text and fused
vectors group products by article type (`cluster_purity`).

A projection takes seconds to a minute on 10,000 products, so it is cached as .npz under
`<data dir>/artifacts/maps/`, keyed by the dataset, the vectors' version, the vectors used, the
method and the seed; clusters are cached per process.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from recsys.core.limits import (
    MAX_CLUSTERS,
    MAX_RESULTS,
    as_int,
    check_list,
    check_range,
    check_seed,
    clamp,
)
from recsys.core.progress import ProgressCallback, report, scaled
from recsys.store import Store

from ._cache import cached, db_key, vectors_version

POINT_COLUMNS = ("item_id", "title", "article_type", "base_colour", "gender",
                 "master_category", "sub_category", "usage", "season", "brand", "price",
                 "image_path")
TRUTH = "article_type"


@dataclass
class CatalogMap:
    """Products on a 2-D map: `points` (item_id, x, y, cluster, cluster_name and catalog
    columns), `clusters` (cluster, size, name, x, y: the cluster's centre on the map, top
    attribute values and shares), `purity` / `nmi` of the clusters against article type,
    `overlay` (a shopper's "history" and "picks" item ids, when asked), the method and vectors,
    whether the projection came from the cache, and the seconds it took (0 when cached)."""

    dataset: str
    method: str
    vectors: str
    encoder: str | None
    points: pd.DataFrame = field(repr=False)
    clusters: pd.DataFrame = field(repr=False)
    purity: float | None
    nmi: float | None
    cached: bool
    seconds: float
    overlay: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        cols = [c for c in ("item_id", "x", "y", "cluster", "cluster_name", "title",
                            "article_type") if c in self.points]
        return {"dataset": self.dataset, "method": self.method, "vectors": self.vectors,
                "encoder": self.encoder, "cached": self.cached, "seconds": self.seconds,
                "purity": self.purity, "nmi": self.nmi,
                "clusters": self.clusters.to_dict("records"),
                "points": self.points[cols].to_dict("records"), "overlay": self.overlay,
                "notes": self.notes}


def _fused_weight(image_weight: float | None) -> float:
    """The photo weight of fused vectors: the search's default for a mixed query unless
    given."""
    from .search import MIXED_WEIGHT

    return MIXED_WEIGHT if image_weight is None else float(image_weight)


def _item_vectors(store: Store, dataset: str):
    """The dataset's newest item vectors (`recsys.vectors.loading.ItemVectors`), cached per process."""
    from recsys.vectors.loading import load_item_vectors

    from .search import NoVectors

    sets = store.embedding_sets(dataset)
    if sets.empty:
        raise NoVectors(f"Dataset '{dataset}' has no item vectors to map: run "
                        f"`python -m recsys embed --dataset {dataset}` first.")
    key = (db_key(store), dataset, vectors_version(store, dataset, sets))
    return cached("map", ("vectors",) + key, lambda: load_item_vectors(store, dataset))


def _with_vectors(vectors, kind: str) -> np.ndarray:
    """Rows of products that have every vector the kind uses."""
    if kind == "image":
        return vectors.has_image
    if kind == "text":
        return vectors.has_text
    return vectors.has_image | vectors.has_text


def catalog_map(store: Store, dataset: str | None = None, *, vectors: str = "fused",
                method: str | None = None, clusters: int | None = None, seed: int = 0,
                image_weight: float | None = None,
                user_id: str | None = None, model: str | int | None = None, k: int = 20,
                progress: ProgressCallback | None = None,
                only_cached: bool = False) -> CatalogMap | None:
    """The products on a 2-D map of their `vectors` ("fused": photo and text together,
    "image" or "text") by `method` ("auto", the default: UMAP for large catalogs, t-SNE for
    small ones; or "umap", "tsne"), coloured by `clusters`
    k-means clusters (default `recsys.explore.projection.DEFAULT_CLUSTERS`) named by their most
    common attributes, with the clusters' purity against article type. With `user_id`, the
    overlay holds that shopper's history and their top-`k` picks of `model` (default
    `default_model`; trained first when missing). `image_weight` weighs photo against text in
    the fused vectors (default the search's `MIXED_WEIGHT`, 0.7: also the best clusters on
    Myntra, see docs/beyond.md). Raises `NoVectors` without item vectors, `MapError` for
    impossible settings. With `only_cached`, returns None instead of computing a projection
    that is not cached yet (the app then computes it as a background job)."""
    from recsys.core import config
    from recsys.explore.projection import (
        DEFAULT_CLUSTERS,
        DEFAULT_METHOD,
        MapError,
        cached_projection,
        cluster,
        item_matrix,
        name_clusters,
        project,
        purity,
        resolve_method,
    )

    dataset = store.resolve_dataset(dataset)
    method = DEFAULT_METHOD if method is None else str(method)
    n_clusters = DEFAULT_CLUSTERS if clusters is None else as_int(clusters, "clusters")
    if n_clusters < 2:
        raise MapError("Ask for at least 2 clusters.")
    n_clusters = check_range(n_clusters, "clusters", 2, MAX_CLUSTERS)
    seed = check_seed(seed)
    k = check_range(k, "k", 1, MAX_RESULTS)
    weight = _fused_weight(image_weight)
    vec = _item_vectors(store, dataset)
    x_all = item_matrix(vec.image, vec.text, vectors, weight)
    rows = np.flatnonzero(_with_vectors(vec, vectors))
    if len(rows) < 3:
        raise MapError(f"'{dataset}' has {len(rows)} products with {vectors} vectors; a map "
                       "needs at least 3.")
    x = x_all[rows]
    notes: list[str] = []
    n_clusters = clamp(n_clusters, "clusters", len(rows), None, "products to cluster", notes)
    method = resolve_method(method, len(rows))
    token = hashlib.sha1(f"{dataset}|{vectors_version(store, dataset)}|{vectors}|{method}|{seed}|"
                         f"{len(rows)}|{weight if vectors == 'fused' else ''}".encode()
                         ).hexdigest()[:16]
    path = config.artifacts_dir(store.path, "maps") / f"{dataset}-{token}.npz"
    if only_cached and not path.is_file():
        return None
    t0 = time.perf_counter()
    coords, from_cache = cached_projection(
        path, lambda: project(x, method, seed, scaled(progress, 0.0, 0.8)), rows=len(rows))
    seconds = 0.0 if from_cache else time.perf_counter() - t0
    report(progress, 0.85, 1.0, f"clustering into {n_clusters}", stage="cluster")
    labels = cached("map", (db_key(store), token, n_clusters),
                    lambda: cluster(x, n_clusters, seed))
    ids = [vec.item_ids[i] for i in rows]
    items = store.items(dataset, ids).set_index("item_id").reindex(ids).reset_index()
    cols = [c for c in POINT_COLUMNS if c in items]
    points = items[cols].copy()
    points.insert(1, "x", coords[:, 0])
    points.insert(2, "y", coords[:, 1])
    points.insert(3, "cluster", labels)
    named = name_clusters(labels, items)
    centre = points.groupby("cluster")[["x", "y"]].median().reset_index()
    named = named.merge(centre, on="cluster", how="left")
    points["cluster_name"] = points["cluster"].map(dict(zip(named["cluster"], named["name"])))
    has_truth = TRUTH in items and items[TRUTH].notna().any()
    score = None
    if has_truth:
        from sklearn.metrics import normalized_mutual_info_score

        truth = items[TRUTH].fillna("?").astype(str)
        score = (purity(labels, truth), float(normalized_mutual_info_score(truth, labels)))
    overlay: dict[str, Any] = {}
    if user_id is not None:
        overlay = _overlay(store, dataset, str(user_id), model, k, set(ids),
                           scaled(progress, 0.9, 1.0))
    report(progress, 1.0, 1.0, "map ready", stage="cluster")
    encoder = None if vec.encoder is None else f"{vec.encoder}@{vec.version}"
    return CatalogMap(dataset, method, vectors, encoder, points, named,
                      None if score is None else score[0], None if score is None else score[1],
                      from_cache, seconds, overlay, notes)


def _overlay(store: Store, dataset: str, user_id: str, model: str | int | None, k: int,
             on_map: set[str], progress: ProgressCallback | None) -> dict[str, Any]:
    """A shopper's history and picks (item ids on the map) for drawing over it."""
    from .data import shopper
    from .recommenders import recommend_for

    who = shopper(store, dataset, user_id)
    recs = recommend_for(store, dataset, user_id, model, k, progress=progress)
    history = [i for i in dict.fromkeys(who.history["item_id"].astype(str)) if i in on_map]
    picks = [e.item_id for e in recs.items if e.item_id in on_map]
    return {"user_id": user_id, "name": who.name, "model": recs.model, "run_id": recs.run_id,
            "history": history, "picks": picks}


def cluster_purity(store: Store, dataset: str | None = None,
                   clusters: Sequence[int] | None = None, seed: int = 0,
                   image_weight: float | None = None,
                   progress: ProgressCallback | None = None) -> pd.DataFrame:
    """How well k-means clusters of the photo, text and fused vectors match article type:
    one row per (vectors, k) with purity and NMI (normalised mutual information). `clusters`
    defaults to 20 and the number of article types. Products without every vector of a kind
    are left out of that kind; `image_weight` as in `catalog_map`."""
    from recsys.explore.projection import (
        DEFAULT_CLUSTERS,
        KINDS,
        MapError,
        cluster_scores,
        item_matrix,
    )

    dataset = store.resolve_dataset(dataset)
    vec = _item_vectors(store, dataset)
    items = store.items(dataset).set_index("item_id").reindex(vec.item_ids)
    if TRUTH not in items or items[TRUTH].isna().all():
        raise MapError(f"'{dataset}' has no article types to measure clusters against.")
    n_types = int(items[TRUTH].nunique())
    seed = check_seed(seed)
    asked = [as_int(c, "clusters") for c in check_list(clusters, "clusters")]
    for c in asked:
        check_range(c, "clusters", 2, MAX_CLUSTERS)
    notes: list[str] = []
    ks = sorted({clamp(c, "clusters", len(vec.item_ids), None, "products", notes)
                 for c in (asked or (DEFAULT_CLUSTERS, n_types)) if c >= 2})
    kinds = [kind for kind in KINDS
             if (vec.image if kind == "image" else vec.text if kind == "text" else 1)
             is not None]
    rows = []
    steps = len(kinds) * len(ks)
    for kind in kinds:
        x = item_matrix(vec.image, vec.text, kind, _fused_weight(image_weight))
        keep = _with_vectors(vec, kind) & items[TRUTH].notna().to_numpy()
        for c in ks:
            scores = cluster_scores(x[keep], items[TRUTH].to_numpy()[keep], c, seed)
            rows.append({"vectors": kind, "k": c, "items": int(keep.sum()), **scores})
            report(progress, len(rows), steps, f"{kind} vectors, {c} clusters",
                   stage="cluster")
    frame = pd.DataFrame(rows)
    frame.attrs["notes"] = notes
    return frame
