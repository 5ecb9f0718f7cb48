"""A map of the catalog: item vectors projected to 2-D, clustered, clusters named, purity.

* `item_matrix`: the photo vectors, the text vectors, or both fused (each L2-normalised and
  weighted, so a fused cosine is `w * photo cosine + (1 - w) * text cosine`, the search's blend;
  the use cases take the search's default w = 0.7);
* `project`: UMAP (umap-learn, cosine, on a 50-component PCA) or t-SNE (scikit-learn) to 2-D;
  a projection is cached as .npz under the artifacts folder by the caller's key;
* `cluster`: k-means (scikit-learn) on the normalised high-dimensional vectors, not on the map;
* `name_clusters`: each cluster named by its most common attributes (article type, colour...);
* `purity` / `cluster_scores`: how well clusters agree with a label (article type): purity (share
  of items in their cluster's majority label) and normalised mutual information.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from recsys.core.errors import RecsysError
from recsys.core.files import atomic_path
from recsys.core.progress import ProgressCallback, report

METHODS = ("auto", "umap", "tsne")
DEFAULT_METHOD = "auto"
UMAP_FROM = 2000
"""`auto` uses UMAP from this many products on (several times faster than t-SNE on the 9,583
Myntra products, see docs/beyond.md) and t-SNE below it, where t-SNE takes a second and UMAP's
one-off compilation (numba, tens of seconds per process) would dominate."""
KINDS = ("fused", "image", "text")
DEFAULT_CLUSTERS = 20
PCA_DIM = 50
NAME_COLUMNS = ("article_type", "base_colour", "gender", "usage", "season", "master_category",
                "sub_category")
"""Attributes a cluster can be named by, most telling first."""


class MapError(RecsysError):
    """A catalog map that cannot be drawn as asked."""


def item_matrix(image: np.ndarray | None, text: np.ndarray | None, kind: str = "fused",
                image_weight: float = 0.5) -> np.ndarray:
    """The vectors a map or a clustering uses: "image", "text" or "fused" (both, weighted so
    that the fused cosine is the weighted mean of the two cosines), rows L2-normalised."""
    if kind not in KINDS:
        raise MapError(f"Unknown vectors {kind!r}; use one of {', '.join(KINDS)}.")
    if not 0.0 <= image_weight <= 1.0:
        raise MapError("The photo weight must be between 0 and 1.")
    parts = {"image": image, "text": text}
    if kind != "fused":
        if parts[kind] is None:
            raise MapError(f"The dataset has no {kind} vectors.")
        return _normalise(parts[kind])
    if image is None and text is None:
        raise MapError("The dataset has no item vectors to map.")
    blocks = []
    if image is not None:
        blocks.append(np.sqrt(image_weight if text is not None else 1.0) * _normalise(image))
    if text is not None:
        blocks.append(np.sqrt(1.0 - image_weight if image is not None else 1.0)
                      * _normalise(text))
    return _normalise(np.hstack(blocks))


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def reduce(x: np.ndarray, dim: int = PCA_DIM, seed: int = 0) -> np.ndarray:
    """PCA to `dim` components (when the vectors have more), the usual step before UMAP and
    t-SNE: it keeps the neighbourhoods and makes the neighbour search several times faster."""
    from sklearn.decomposition import PCA

    if x.shape[1] <= dim or x.shape[0] <= dim:
        return x
    return PCA(dim, random_state=seed).fit_transform(x).astype(np.float32)


def resolve_method(method: str, n: int) -> str:
    """"umap" or "tsne" for `n` products ("auto": UMAP from `UMAP_FROM` products on)."""
    if method not in METHODS:
        raise MapError(f"Unknown projection {method!r}; use one of {', '.join(METHODS)}.")
    if method == "auto":
        return "umap" if n >= UMAP_FROM else "tsne"
    return method


def project(x: np.ndarray, method: str = DEFAULT_METHOD, seed: int = 0,
            progress: ProgressCallback | None = None) -> np.ndarray:
    """2-D coordinates of the rows of `x` (n x 2, float32) by UMAP or t-SNE ("auto": see
    `resolve_method`)."""
    method = resolve_method(method, len(x))
    n = len(x)
    if n < 3:
        raise MapError("A map needs at least 3 products with vectors.")
    report(progress, 0, 3, "reducing to 50 dimensions", stage="map")
    reduced = reduce(x, seed=seed)
    report(progress, 1, 3, f"projecting {n:,} products with {method.upper()}", stage="map")
    if method == "umap":
        import umap

        neighbours = int(min(15, n - 1))
        model = umap.UMAP(n_neighbors=neighbours, min_dist=0.1, metric="cosine",
                          random_state=seed, init="spectral" if n > neighbours + 2 else "random")
        with warnings.catch_warnings():      # "n_jobs overridden by random_state": wanted
            warnings.simplefilter("ignore", UserWarning)
            coords = model.fit_transform(reduced)
    else:
        from sklearn.manifold import TSNE

        coords = TSNE(2, perplexity=float(min(30.0, (n - 1) / 3.0)), init="pca",
                      random_state=seed, max_iter=1000).fit_transform(reduced)
    report(progress, 3, 3, "projected", stage="map")
    return np.asarray(coords, dtype=np.float32)


def cached_projection(path: Path, make: Callable[[], np.ndarray], rows: int | None = None
                      ) -> tuple[np.ndarray, bool]:
    """(coordinates, whether they came from the cache file `path`); made and written
    atomically on a miss. A cache file that is damaged, or whose coordinates are not `rows` x 2
    finite numbers, is made again (read through `model_files.read_npz`: nothing unpickled)."""
    from recsys.core.model_files import ModelFileError, all_finite, read_npz

    if path.is_file():
        try:
            coords = read_npz(path)["coords"]
            if coords.ndim == 2 and coords.shape[1] == 2 and coords.dtype.kind == "f" and \
                    (rows is None or len(coords) == rows) and all_finite(coords):
                return coords, True
        except (ModelFileError, KeyError):
            pass                                  # unreadable: make it again
    coords = make()
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, coords=coords)
    return coords, False


def cluster(x: np.ndarray, k: int = DEFAULT_CLUSTERS, seed: int = 0) -> np.ndarray:
    """k-means labels (0..k-1) of the rows of `x` (normalised vectors: close to clustering by
    cosine)."""
    from sklearn.cluster import KMeans

    if k < 2:
        raise MapError("Ask for at least 2 clusters.")
    k = min(k, len(x))
    return KMeans(k, n_init=4, random_state=seed).fit_predict(x).astype(np.int32)


def purity(labels: np.ndarray, truth: Sequence) -> float:
    """Share of items whose cluster's most common `truth` value is their own (1 = every
    cluster is one label; it rises with the number of clusters, so compare at equal k)."""
    frame = pd.DataFrame({"c": labels, "t": pd.Series(list(truth), dtype="object")
                          .fillna("?").astype(str)})
    if frame.empty:
        return 0.0
    majority = frame.groupby("c")["t"].agg(lambda s: s.value_counts().iloc[0]).sum()
    return float(majority / len(frame))


def cluster_scores(x: np.ndarray, truth: Sequence, k: int, seed: int = 0) -> dict[str, float]:
    """Purity and normalised mutual information of k-means clusters of `x` against `truth`."""
    from sklearn.metrics import normalized_mutual_info_score

    labels = cluster(x, k, seed)
    clean = pd.Series(list(truth), dtype="object").fillna("?").astype(str)
    return {"purity": purity(labels, clean),
            "nmi": float(normalized_mutual_info_score(clean, labels))}


def name_clusters(labels: np.ndarray, items: pd.DataFrame, max_parts: int = 2
                  ) -> pd.DataFrame:
    """One row per cluster: cluster, size, name (its most common attributes, e.g. "Tshirts ·
    Men"), and per attribute column its top value and share ("top_<col>", "share_<col>").

    The name takes the first of `NAME_COLUMNS` with a value, then the attributes shared by
    most of the cluster (at least half of it), most shared first."""
    cols = [c for c in NAME_COLUMNS if c in items and items[c].notna().any()]
    frame = items[cols].copy() if cols else pd.DataFrame(index=items.index)
    frame["cluster"] = np.asarray(labels)
    rows = []
    for c, group in frame.groupby("cluster", sort=True):
        row = {"cluster": int(c), "size": int(len(group))}
        tops = []
        for col in cols:
            counts = group[col].dropna().astype(str)
            counts = counts[counts.str.strip() != ""].value_counts()
            if counts.empty:
                continue
            share = float(counts.iloc[0] / len(group))
            row[f"top_{col}"], row[f"share_{col}"] = str(counts.index[0]), share
            tops.append((col, str(counts.index[0]), share))
        parts = []
        if tops:
            parts.append(tops[0][1])
            rest = sorted((t for t in tops[1:] if t[2] >= 0.5), key=lambda t: -t[2])
            parts += [v for _, v, _ in rest if v not in parts][:max_parts - 1]
        row["name"] = " · ".join(parts) if parts else f"cluster {int(c) + 1}"
        rows.append(row)
    return pd.DataFrame(rows)
