"""Classic recommenders without training epochs: popularity, item/user k-NN, EASE, content profiles.

All of them are closed-form given the training matrix (rows users, columns items, values the
confidence weights of `InteractionData.train`), so they fit in seconds and make honest baselines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys.core.arrays import normalise_rows
from recsys.core.memory import memory_budget
from recsys.data.interactions import InteractionData

from .base import Recommender
from .config import ModelConfig, hp, modalities_hp, modality_signals
from .errors import ModelError

BLOCK = 1024   # rows processed at once when building neighbour lists


def binary(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """The 0/1 version of a weighted interaction matrix."""
    out = matrix.tocsr(copy=True)
    out.data[:] = 1.0
    return out


def top_neighbours(dense_rows: np.ndarray, k: int, offset: int = 0) -> sp.csr_matrix:
    """Keep the k largest positive values per row of a dense block (the row's own entry excluded
    when `offset` >= 0 marks where the block starts in a square matrix)."""
    rows = dense_rows.copy()
    if offset >= 0:
        idx = np.arange(rows.shape[0])
        rows[idx, idx + offset] = 0.0
    k = min(k, rows.shape[1]) if k > 0 else rows.shape[1]
    part = np.argpartition(-rows, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(rows, part, axis=1)
    keep = vals > 0
    r = np.repeat(np.arange(rows.shape[0]), keep.sum(axis=1))
    return sp.csr_matrix((vals[keep], (r, part[keep])), shape=rows.shape, dtype=np.float32)


@dataclass
class PopularityConfig(ModelConfig):
    pass


class Popularity(Recommender):
    """Everyone gets the items most users interacted with: the bar every model must clear."""

    config_class = PopularityConfig

    def _fit(self, data: InteractionData) -> None:
        self.pop = np.log1p(data.item_popularity()).astype(np.float32)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.pop, (len(users), len(self.pop))).copy()

    def _state(self) -> dict[str, Any]:
        return {"pop": self.pop}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.pop = state["pop"]

    def _score_history(self, items: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Fold-in: everyone gets the same list, a new shopper too."""
        return self.pop.copy()


class SparseScorer(Recommender):
    """Models that score with `left[users] @ right` for two sparse matrices kept in the state."""

    left: sp.csr_matrix
    right: sp.csr_matrix

    def _score(self, users: np.ndarray) -> np.ndarray:
        return (self.left[users] @ self.right).toarray()

    def _state(self) -> dict[str, Any]:
        return {"left": self.left, "right": self.right}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.left, self.right = state["left"].tocsr(), state["right"].tocsr()


@dataclass
class ItemKNNConfig(ModelConfig):
    neighbors: int = hp(200, "neighbours kept per item (0 = all)", 0, 5000)
    shrink: float = hp(10.0, "shrinkage added to the cosine denominator", 0.0, 1000.0)


class ItemKNN(SparseScorer):
    """Item-based CF: cosine similarity of items' co-occurrence, summed over the user's items."""

    config_class = ItemKNNConfig

    def _fit(self, data: InteractionData) -> None:
        x = binary(data.train)
        counts = np.asarray(x.sum(axis=0)).ravel()
        norm = np.sqrt(counts)
        co = (x.T @ x).tocsr()
        blocks = []
        for start in range(0, data.n_items, BLOCK):
            block = co[start:start + BLOCK].toarray()
            denom = norm[start:start + BLOCK, None] * norm[None, :] + self.config.shrink
            sims = np.divide(block, denom, out=np.zeros_like(block), where=denom > 0)
            blocks.append(top_neighbours(sims, self.config.neighbors, start))
        # scores = history @ S^T with S's rows holding each item's neighbours
        self.left, self.right = x, sp.vstack(blocks).T.tocsr()

    def _score_history(self, items: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Fold-in, exact: the binary history row @ S^T (what a trained user's row gives)."""
        return (self.history_row(items, binary=True) @ self.right).toarray()[0]


@dataclass
class UserKNNConfig(ModelConfig):
    neighbors: int = hp(100, "most similar users kept per user", 1, 5000)


class UserKNN(SparseScorer):
    """User-based CF: Pearson correlation of users' weighted item vectors, top neighbours vote."""

    config_class = UserKNNConfig

    def _fit(self, data: InteractionData) -> None:
        x = data.train.tocsr().astype(np.float64)
        n = data.n_items
        mean = np.asarray(x.sum(axis=1)).ravel() / n
        var = np.asarray(x.multiply(x).sum(axis=1)).ravel() / n - mean ** 2
        std = np.sqrt(np.maximum(var, 1e-12))
        blocks = []
        xt = x.T.tocsr()
        for start in range(0, data.n_users, BLOCK):
            stop = min(start + BLOCK, data.n_users)
            cov = (x[start:stop] @ xt).toarray() / n - mean[start:stop, None] * mean[None, :]
            pearson = cov / (std[start:stop, None] * std[None, :])
            pearson[var[start:stop] <= 0] = 0.0
            blocks.append(top_neighbours(pearson, self.config.neighbors, start))
        self.left, self.right = sp.vstack(blocks).tocsr(), x.astype(np.float32).tocsr()

    def _score_history(self, items: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Fold-in: the history's Pearson correlation with every training user (as in `_fit`),
        its top `neighbors` positive ones vote with their weighted rows. A trained user's own
        history finds that user among the neighbours, so this is close to, not equal to, its
        trained score."""
        x = self.right.astype(np.float64)
        n = x.shape[1]
        h = self.history_row(items, weights).toarray()[0].astype(np.float64)
        mean = np.asarray(x.sum(axis=1)).ravel() / n
        var = np.asarray(x.multiply(x).sum(axis=1)).ravel() / n - mean ** 2
        h_mean, h_var = h.sum() / n, (h ** 2).sum() / n - (h.sum() / n) ** 2
        cov = (x @ h) / n - mean * h_mean
        pearson = cov / (np.sqrt(np.maximum(var, 1e-12)) * np.sqrt(max(h_var, 1e-12)))
        pearson[var <= 0] = 0.0
        keep = top_neighbours(pearson[None, :], self.config.neighbors, -1)
        return (keep @ self.right).toarray()[0]


EASE_MODES = ("auto", "dense", "sparse")
DENSE_BYTES_PER_CELL = 4.6
"""Peak bytes per item-item cell of dense EASE as implemented below (one float32 n x n buffer,
factorised and inverted in place, plus the sparse Gram product and block temporaries);
measured with ru_maxrss on 2k-10k items (see docs/scale.md). Before issue 14 it was ~16."""
DENSE_MAX_ITEMS = 30_000
"""Above this many items `auto` switches to sparse EASE whatever the memory: the dense inverse
is O(n^3). Up to 30k items dense is worth its time: sparse EASE (support 128) loses 7% Recall@20
on Amazon Baby and 4% on Clothing (23,033 items, which dense fits in ~2.5 GB), measured with
benchmarks/peers.py (docs/recommenders.md)."""
SPARSE_BATCH_CELLS = 2**25
"""Most float32 cells of sparse EASE's batched systems at once (128 MB)."""
SPARSE_BYTES_PER_CELL = 20
"""Peak bytes per cell of a batch of sparse EASE systems: the float32 systems plus the float64
copy and factorisation `np.linalg.solve` makes of them."""
SPARSE_BATCH_SHARE = 0.25
"""Share of the memory this process may still use that one batch of sparse systems may take
(fewer, smaller batches under a tight limit: 2**25 cells needed 0.6 GB)."""
SCORE_BUDGET_BYTES = 256 * 2**20
"""Validation scores (users x items float32) are kept under this many bytes per batch."""


class EASEMemoryError(ModelError):
    """Dense EASE would not fit in the memory budget."""


def dense_ease_bytes(n_items: int) -> int:
    """Estimated peak memory of dense EASE on `n_items` items."""
    return int(DENSE_BYTES_PER_CELL * n_items ** 2) + 64 * 2**20


def gb(n: float) -> str:
    return f"{n / 2**30:.1f} GB"


@dataclass(frozen=True)
class EASEPlan:
    """Which EASE variant a fit uses, and why (shown in logs and the run's config)."""

    mode: str
    n_items: int
    needed_bytes: int
    budget_bytes: int
    reason: str
    batch_cells: int = SPARSE_BATCH_CELLS     # sparse mode: cells of systems solved at once


def plan_ease(n_items: int, mode: str = "auto", memory_fraction: float = 0.25,
              dense_max_items: int = DENSE_MAX_ITEMS, available: int | None = None) -> EASEPlan:
    """Dense or sparse EASE for `n_items` items under a budget of `memory_fraction` of the
    memory this process may still use (`available`, default `recsys.core.memory.memory_budget()`:
    the smallest of free RAM, the cgroup limit, RLIMIT_AS and RLIMIT_DATA). `dense` over
    budget raises `EASEMemoryError` (a clear refusal, never an out-of-memory traceback);
    `auto` switches to `sparse` above the budget or above `dense_max_items`."""
    if mode not in EASE_MODES:
        raise ModelError(f"EASE mode must be one of {', '.join(EASE_MODES)}, not {mode!r}.")
    if available is None:
        measured = memory_budget()
        free, where = measured.available, measured.describe()
    else:
        free, where = int(available), f"{gb(int(available))} available"
    budget = int(memory_fraction * free)
    need = dense_ease_bytes(n_items)
    fits = need <= budget
    cells = int(min(SPARSE_BATCH_CELLS,
                    max(2**16, SPARSE_BATCH_SHARE * free // SPARSE_BYTES_PER_CELL)))
    if mode == "sparse":
        return EASEPlan("sparse", n_items, need, budget, "sparse EASE was asked for", cells)
    if mode == "dense":
        if not fits:
            raise EASEMemoryError(
                f"Dense EASE on {n_items:,} items needs about {gb(need)} (an n x n float32 "
                f"inverse); the budget is {gb(budget)} ({memory_fraction:.0%} of the "
                f"{where}). Use mode=sparse or mode=auto (EASE restricted "
                "to each item's nearest co-occurring items, which scales to 100k+ items), "
                "raise memory_fraction, or choose itemknn.")
        return EASEPlan("dense", n_items, need, budget, "dense EASE was asked for")
    if not fits:
        return EASEPlan("sparse", n_items, need, budget,
                        f"dense would need {gb(need)}, over the {gb(budget)} budget "
                        f"({memory_fraction:.0%} of the {where})", cells)
    if n_items > dense_max_items:
        return EASEPlan("sparse", n_items, need, budget,
                        f"{n_items:,} items is above dense_max_items={dense_max_items:,} "
                        "(the dense inverse grows as n^3)", cells)
    return EASEPlan("dense", n_items, need, budget, f"dense fits: {gb(need)} of {gb(budget)}")


@dataclass
class EASEConfig(ModelConfig):
    l2: float = hp(250.0, "L2 regularisation of the item-item weights", 1.0, 1e5, log=True)
    neighbors: int = hp(0, "keep only the largest weights per item (0 = dense matrix)", 0, 10000)
    mode: str = hp("auto", "dense: exact item x item inverse (refused above the memory budget); "
                   "sparse: each item's weights fitted on its `support` most co-occurring "
                   "items (scales past 100k items); auto: dense when it fits",
                   choices=EASE_MODES)
    support: int = hp(128, "sparse mode: co-occurring items each item's weights are fitted on",
                      8, 4096, log=True)
    memory_fraction: float = hp(0.25, "share of the available memory dense EASE may use", 0.01,
                                0.95)
    dense_max_items: int = hp(DENSE_MAX_ITEMS, "auto mode: sparse above this many items (the "
                              "dense inverse grows as n^3)", 0, 1_000_000)


class EASE(Recommender):
    """EASE (Steck 2019): a closed-form linear item-item autoencoder, strong on sparse data.

    Dense mode solves the exact n x n system in place (float32 Cholesky). Past the memory
    budget (or `dense_max_items`) `auto` switches to sparse EASE: column j of the weight matrix
    is EASE's own ridge regression of item j on the other items (the zero-diagonal constraint
    is exactly "leave item j out"), restricted to the `support` items that co-occur most with
    j (cosine of co-occurrence). Memory and time then grow linearly with the catalog.
    """

    config_class = EASEConfig

    def _fit(self, data: InteractionData) -> None:
        cfg = self.config
        self.plan = plan_ease(data.n_items, cfg.mode, cfg.memory_fraction, cfg.dense_max_items)
        x = binary(data.train)
        if self.plan.mode == "dense":
            weights = dense_ease(x, cfg.l2)
            self.weights = prune_columns(weights, cfg.neighbors) if cfg.neighbors else weights
        else:
            self.weights = sparse_ease(x, cfg.l2, cfg.support, self.plan.batch_cells)
        self.variant = self.plan.mode

    def _validation_users(self, data: InteractionData, rng: np.random.Generator) -> np.ndarray:
        """At most as many users as keep their score rows under SCORE_BUDGET_BYTES."""
        users = super()._validation_users(data, rng)
        cap = max(100, SCORE_BUDGET_BYTES // max(1, 4 * data.n_items))
        if len(users) > cap:
            users = np.sort(rng.choice(users, cap, replace=False))
        return users

    def _score(self, users: np.ndarray) -> np.ndarray:
        out = self.seen[users] @ self.weights
        return out.toarray() if sp.issparse(out) else np.asarray(out)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "variant": getattr(self, "variant", None)}

    def _score_history(self, items: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Fold-in, exact: the binary history row @ B (EASE is a linear autoencoder)."""
        out = self.history_row(items, binary=True) @ self.weights
        return (out.toarray() if sp.issparse(out) else np.asarray(out)).reshape(-1)

    def _state(self) -> dict[str, Any]:
        return {"weights": self.weights, "variant": np.array(getattr(self, "variant", "dense"))}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.weights = state["weights"]
        self.variant = str(state["variant"]) if "variant" in state else (
            "sparse" if sp.issparse(self.weights) and not self.config.neighbors else "dense")


def dense_ease(x: sp.csr_matrix, l2: float) -> np.ndarray:
    """Exact EASE weights in one n x n float32 buffer: Gram matrix, ridge, Cholesky and inverse
    in place (LAPACK spotrf/spotri), symmetrised by blocks, scaled in place. Peak memory ~4.6
    bytes per cell instead of ~16 for a Gram + copies + inverse + weights approach."""
    from scipy.linalg import lapack

    n = x.shape[1]
    # the Gram matrix is symmetric: it or its transpose is the Fortran-ordered buffer LAPACK
    # works on in place (a C-ordered one would be copied)
    gram = np.asarray((x.T @ x).toarray(), dtype=np.float32)
    gram = gram if gram.flags.f_contiguous else gram.T
    gram[np.diag_indices(n)] += l2
    chol, info = lapack.spotrf(gram, lower=True, overwrite_a=True, clean=False)
    if info == 0:
        inv, info = lapack.spotri(chol, lower=True, overwrite_c=True)
    if info != 0:                                   # not positive definite: general inverse
        full = (x.T @ x).toarray().astype(np.float64)
        full[np.diag_indices(n)] += l2
        inv = np.linalg.inv(full).astype(np.float32)
    else:
        for start in range(0, n, BLOCK):             # lower triangle -> full, by blocks
            stop = min(start + BLOCK, n)
            inv[start:stop, stop:] = inv[stop:, start:stop].T
            block = inv[start:stop, start:stop]
            block[np.triu_indices(stop - start, 1)] = block.T[np.triu_indices(stop - start, 1)]
    if not inv.flags.c_contiguous:               # symmetric: the transpose is the C view
        inv = inv.T
    diag = np.diag(inv).copy()
    inv /= -diag[None, :]
    inv[np.diag_indices(n)] = 0.0
    return inv


def cooccurrence_neighbours(gram: sp.csr_matrix, support: int) -> list[np.ndarray]:
    """Per item, the (at most `support`) other items with the largest co-occurrence cosine."""
    counts = gram.diagonal().astype(np.float64)
    norm = np.sqrt(np.maximum(counts, 1e-12))
    out = []
    indptr, indices, data = gram.indptr, gram.indices, gram.data
    for j in range(gram.shape[0]):
        cols = indices[indptr[j]:indptr[j + 1]]
        vals = data[indptr[j]:indptr[j + 1]]
        keep = cols != j
        cols, vals = cols[keep], vals[keep]
        if len(cols) > support:
            cos = vals / (norm[cols] * norm[j])
            cols = cols[np.argpartition(-cos, support - 1)[:support]]
        out.append(np.sort(cols))
    return out


def sparse_ease(x: sp.csr_matrix, l2: float, support: int, batch_cells: int = 2**25
                ) -> sp.csr_matrix:
    """Sparse EASE weights (sources x targets): for each target item j, the ridge regression
    b = (G_NN + l2 I)^-1 G_Nj on its neighbours N (see `EASE`). Items are solved in batches of
    equal padded size (batched LAPACK solves, at most `batch_cells` floats of systems at once);
    padding rows have l2 on the diagonal and a zero right-hand side, so their weights are 0."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        # many small solves: one BLAS thread each (2 threads on 2 busy cores: 50x slower)
        return _sparse_ease(x, l2, support, batch_cells)


def _sparse_ease(x: sp.csr_matrix, l2: float, support: int, batch_cells: int) -> sp.csr_matrix:
    n = x.shape[1]
    gram = (x.T @ x).tocsr().astype(np.float32)
    gram.sort_indices()
    neigh = cooccurrence_neighbours(gram, support)
    sizes = np.array([len(c) for c in neigh])
    rows_out, cols_out, vals_out = [], [], []
    pos = np.full(n, -1, dtype=np.int64)
    indptr, indices, data = gram.indptr, gram.indices, gram.data
    # bucket items by their padded system size (multiples of 16 up to 64, then of 64)
    padded = np.where(sizes <= 64, -(-sizes // 16) * 16, -(-sizes // 64) * 64)
    for size in np.unique(padded[sizes > 0]):
        items = np.flatnonzero((padded == size) & (sizes > 0))
        per_batch = max(1, batch_cells // int(size * size))
        for start in range(0, len(items), per_batch):
            batch = items[start:start + per_batch]
            a = np.zeros((len(batch), size, size), dtype=np.float32)
            b = np.zeros((len(batch), size), dtype=np.float32)
            idx = np.arange(size)
            a[:, idx, idx] = l2
            for r, j in enumerate(batch):
                nb = neigh[j]
                s = len(nb)
                pos[nb] = np.arange(s)
                sub = gram[nb]                               # the neighbours' rows
                c = pos[sub.indices]
                ok = c >= 0
                r_idx = np.repeat(np.arange(s), np.diff(sub.indptr))
                a[r, r_idx[ok], c[ok]] += sub.data[ok]
                lo, hi = indptr[j], indptr[j + 1]
                c = pos[indices[lo:hi]]
                ok = c >= 0
                b[r, c[ok]] = data[lo:hi][ok]
                pos[nb] = -1
            w = np.linalg.solve(a, b[..., None])[..., 0]
            for r, j in enumerate(batch):
                s = len(neigh[j])
                rows_out.append(neigh[j])
                cols_out.append(np.full(s, j, dtype=np.int64))
                vals_out.append(w[r, :s])
    if not rows_out:
        return sp.csr_matrix((n, n), dtype=np.float32)
    return sp.csr_matrix((np.concatenate(vals_out), (np.concatenate(rows_out),
                                                     np.concatenate(cols_out))),
                         shape=(n, n), dtype=np.float32)


def prune_columns(weights: np.ndarray, k: int) -> sp.csr_matrix:
    """Keep the k largest-magnitude weights of each column (each target item), as sparse."""
    blocks = []
    for start in range(0, weights.shape[1], BLOCK):
        cols = weights[:, start:start + BLOCK].T                    # targets x sources
        keep = top_neighbours(np.abs(cols), k, -1).tocoo()
        blocks.append(sp.csr_matrix((cols[keep.row, keep.col], (keep.row, keep.col)),
                                    shape=cols.shape))
    return sp.vstack(blocks).T.tocsr()


def content_profiles(data: InteractionData, modality: str) -> np.ndarray:
    """Each user's L2-normalised weighted mean of their training items' vectors."""
    return normalise_rows(np.asarray(data.train @ data.content(modality)))


@dataclass
class ContentConfig(ModelConfig):
    modalities: tuple = modalities_hp("item vectors the user profile is built from")


class ContentModel(Recommender):
    """Content-based: user profile = weighted mean of history vectors, items ranked by cosine.

    With several modalities their cosines are averaged. Reaches items nobody interacted with.
    """

    config_class = ContentConfig

    @property
    def requires(self) -> frozenset[str]:  # type: ignore[override]
        return modality_signals(self.config.modalities)

    def _fit(self, data: InteractionData) -> None:
        self.profiles = {m: content_profiles(data, m) for m in self.config.modalities}
        self.vectors = {m: data.content(m) for m in self.config.modalities}

    def modality_scores(self, users: np.ndarray) -> dict[str, np.ndarray]:
        """Cosine of each item to the user's profile, per modality."""
        return {m: self.profiles[m][users] @ self.vectors[m].T for m in self.config.modalities}

    def _score(self, users: np.ndarray) -> np.ndarray:
        return sum(self.modality_scores(users).values()) / len(self.config.modalities)

    def _score_history(self, items: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Fold-in, exact: the profile is the normalised weighted mean of the history's
        vectors, items are ranked by their cosine to it."""
        scores = [normalise_rows(weights[None, :] @ self.vectors[m][items])[0]
                  @ self.vectors[m].T for m in self.config.modalities]
        return sum(scores) / len(scores)

    def modality_weights(self, user: int, items: np.ndarray) -> dict[str, np.ndarray]:
        """Share of each modality's (positive) cosine in the item's score."""
        return share_of_scores(self.modality_scores(np.array([user])), items)

    def _state(self) -> dict[str, Any]:
        return {**{f"profile_{m}": p for m, p in self.profiles.items()},
                **{f"vectors_{m}": v for m, v in self.vectors.items()}}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.profiles = {m: state[f"profile_{m}"] for m in self.config.modalities}
        self.vectors = {m: state[f"vectors_{m}"] for m in self.config.modalities}


@dataclass
class ContentKNNConfig(ModelConfig):
    modalities: tuple = modalities_hp("item vectors the neighbours are found in")
    neighbors: int = hp(50, "most similar items kept per item", 1, 5000)
    power: float = hp(3.0, "similarities are raised to this power (favours the nearest)", 1.0,
                      10.0)


class ContentKNN(Recommender):
    """Content-based item k-NN: items whose look/description is close to any history item.

    Unlike one mean profile, a user with several distinct tastes keeps each of them. With
    several modalities their neighbour scores are averaged.
    """

    config_class = ContentKNNConfig

    @property
    def requires(self) -> frozenset[str]:  # type: ignore[override]
        return modality_signals(self.config.modalities)

    def _fit(self, data: InteractionData) -> None:
        self.parts = {}
        for m in self.config.modalities:
            x = data.content(m)
            blocks = []
            for start in range(0, data.n_items, BLOCK):
                sims = np.maximum(x[start:start + BLOCK] @ x.T, 0.0) ** self.config.power
                blocks.append(top_neighbours(sims, self.config.neighbors, start))
            self.parts[m] = sp.vstack(blocks).T.tocsr()

    def modality_scores(self, users: np.ndarray) -> dict[str, np.ndarray]:
        """Summed neighbour similarity of every item to the user's history, per modality."""
        return {m: (self.seen[users] @ part).toarray() for m, part in self.parts.items()}

    def _score(self, users: np.ndarray) -> np.ndarray:
        return sum(self.modality_scores(users).values()) / len(self.parts)

    def _score_history(self, items: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Fold-in, exact: the binary history row @ each modality's neighbour matrix."""
        row = self.history_row(items, binary=True)
        return sum((row @ part).toarray()[0] for part in self.parts.values()) / len(self.parts)

    def modality_weights(self, user: int, items: np.ndarray) -> dict[str, np.ndarray]:
        return share_of_scores(self.modality_scores(np.array([user])), items)

    def _state(self) -> dict[str, Any]:
        return {f"part_{m}": p for m, p in self.parts.items()}

    def _load_state(self, state: dict[str, Any]) -> None:
        self.parts = {m: state[f"part_{m}"].tocsr() for m in self.config.modalities}


def share_of_scores(scores: dict[str, np.ndarray], items: np.ndarray) -> dict[str, np.ndarray]:
    """Each modality's share of the (positive) per-modality scores of `items` (one user)."""
    parts = {m: np.maximum(s[0, items], 0.0) for m, s in scores.items()}
    total = sum(parts.values())
    n = len(parts)
    return {m: np.where(total > 0, v / np.where(total > 0, total, 1.0), 1.0 / n)
            for m, v in parts.items()}
