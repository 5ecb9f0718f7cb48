"""Evaluating a fitted model: full-ranking metrics at K on a split, per slice of users/items.

`evaluate_users(model, data, ks)` scores every test user against all items (training items
excluded), then applies the pure metrics of `recsys.evaluation.metrics` and keeps each user's
value (for confidence intervals and paired tests, `recsys.evaluation.stats`), optionally also
for lists re-ranked for diversity (`recsys.recommend.rerank`); `evaluate_model` gives the
means. Slices are all users,
cold-start items (no training interaction: only content reaches them) and users with short
histories.
Training what is missing and storing the numbers is the `evaluate` use case
(`recsys.usecases`), not this module's job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

from recsys.core.progress import ProgressCallback, report
from recsys.data.interactions import EvaluationError, InteractionData
from recsys.evaluation.metrics import (
    intra_list_diversity,
    mask_seen,
    ranking_metrics,
    top_k,
    user_auc,
)

if TYPE_CHECKING:
    from recsys.models.base import Recommender

DEFAULT_KS = (5, 10, 20)
SHORT_HISTORY = 5          # users with at most this many training items form the short slice
SCORE_BATCH = 512          # users scored at once (rows of n_items float32)


def content_matrix(data: InteractionData, rows: np.ndarray | None = None) -> np.ndarray | None:
    """Image and text vectors side by side, re-normalised: the space diversity is measured in.
    `rows`: only these items (indices), e.g. one shopper's candidate pool (not the catalog)."""
    parts = [m if rows is None else m[rows] for m in (data.image, data.text) if m is not None]
    if not parts:
        return None
    mat = np.hstack(parts)
    norms = np.linalg.norm(mat, axis=1, keepdims=True)
    return (mat / np.where(norms > 0, norms, 1.0)).astype(np.float32)


@dataclass
class SliceSpec:
    """Which users / relevant items a slice keeps."""

    name: str
    users: np.ndarray          # boolean over users
    items: np.ndarray | None   # boolean over items (None: all relevant items count)


def slices(data: InteractionData, short_history: int = SHORT_HISTORY) -> list[SliceSpec]:
    """All users; cold-start items only (no training interactions); users with short histories."""
    n_train = np.asarray((data.train > 0).sum(axis=1)).ravel()
    return [SliceSpec("all", np.ones(data.n_users, dtype=bool), None),
            SliceSpec("cold_items", np.ones(data.n_users, dtype=bool), data.cold_items()),
            SliceSpec("short_history", n_train <= short_history, None)]


Key = tuple[str, str, "int | None"]
"""(slice, metric, k): k is None for metrics without a cut-off (auc)."""


@dataclass
class UserMetrics:
    """One model's evaluation on a split, per user: for each (slice, metric, k) the users
    measured (indices into `data.user_ids`) and their values, in the order they were computed;
    `coverage` (the share of the catalog in anyone's top-K) is a catalog-level number with no
    per-user value. `diversity` is the MMR level the lists were re-ranked with (0: the model's
    own order)."""

    per_user: dict[Key, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    catalog: dict[Key, tuple[float, int]] = field(default_factory=dict)
    diversity: float = 0.0
    order: list[Key] = field(default_factory=list)

    def add(self, key: Key, users: np.ndarray, values: np.ndarray) -> None:
        if key not in self.per_user:
            self.order.append(key)
            self.per_user[key] = (users, values)
        else:
            old_users, old_values = self.per_user[key]
            self.per_user[key] = (np.concatenate([old_users, users]),
                                  np.concatenate([old_values, values]))

    def add_catalog(self, key: Key, value: float, users: int) -> None:
        self.order.append(key)
        self.catalog[key] = (value, users)

    def values(self, key: Key) -> tuple[np.ndarray, np.ndarray]:
        """The measured users and their finite values of a per-user metric."""
        users, vals = self.per_user[key]
        ok = np.isfinite(vals)
        return users[ok], vals[ok]

    def summary(self) -> pd.DataFrame:
        """Rows (slice, metric, k, value, users): the mean over users of each metric."""
        rows = []
        for key in self.order:
            slice_, metric, k = key
            if key in self.catalog:
                value, n = self.catalog[key]
            else:
                users, vals = self.values(key)
                value = float(vals.mean()) if len(vals) else np.nan
                n = len(np.unique(users))
            rows.append((slice_, metric, k, value, n))
        return pd.DataFrame(rows, columns=["slice", "metric", "k", "value", "users"])


def evaluate_users(model: "Recommender", data: InteractionData, ks: Sequence[int] = DEFAULT_KS,
                   split: str = "test", seed: int = 0, max_users: int | None = None,
                   progress: ProgressCallback | None = None,
                   diversity: Sequence[float] = (0.0,)) -> list[UserMetrics]:
    """Full-ranking metrics of a fitted model on a split, per user and slice, once per MMR
    `diversity` level (`recsys.recommend.rerank`; 0 = the model's own top-K). With
    `data.candidates` (the new-items protocol) only those items are ranked on the test split
    (its validation pairs are of the other items, ranked among all of them).

    Each user's scores are computed once; the lists of every level go through the same metric
    code. Beyond the ranking metrics at K (`recsys.evaluation.metrics.ranking_metrics`): `auc`
    (per-user AUC over every candidate item, `user_auc`), `coverage`, `diversity` (intra-list
    cosine distance in the image/text space), `novelty` (mean self-information -log2 of the
    training popularity of the listed items) and, on the cold-items slice, `cold_share` (share
    of the listed items without training interactions). Re-ranked levels report the "all" slice only
    (AUC does not depend on the list and is left out); without item vectors there is nothing
    to re-rank with and only level 0 is returned.
    """
    from recsys.recommend.rerank import mmr_rerank_rows

    truth_all = getattr(data, split).tocsr()
    rng = np.random.default_rng(seed)
    users = np.flatnonzero(truth_all.getnnz(axis=1) > 0)
    if max_users is not None and len(users) > max_users:
        users = np.sort(rng.choice(users, max_users, replace=False))
    if len(users) == 0:
        raise EvaluationError(f"No user has {split} interactions to evaluate on.")
    kmax = max(ks)
    specs = slices(data)
    cold = data.cold_items()
    vectors = content_matrix(data)
    levels = [float(d) for d in dict.fromkeys(diversity) if d == 0 or vectors is not None]
    if 0.0 not in levels:
        levels.insert(0, 0.0)
    popularity = data.item_popularity()
    self_info = -np.log2((popularity + 1.0) / (data.n_users + 1.0))
    results = {level: UserMetrics(diversity=level) for level in levels}
    listed: dict[float, list[np.ndarray]] = {level: [] for level in levels}
    for start in range(0, len(users), SCORE_BATCH):
        batch = users[start:start + SCORE_BATCH]
        scores = mask_seen(model.score(batch).astype(np.float32, copy=True), data.train[batch])
        if data.candidates is not None and split == "test":   # new items: rank them only
            scores[:, ~data.candidates] = -np.inf
        for level in levels:
            top = top_k(scores, kmax) if level == 0 else \
                mmr_rerank_rows(scores, vectors, kmax, level)
            listed[level].append(top)
            out = results[level]
            for spec in specs if level == 0 else specs[:1]:
                truth = truth_all[batch]
                if spec.items is not None:
                    truth = truth.multiply(spec.items[None, :]).tocsr()
                    truth.eliminate_zeros()
                keep = spec.users[batch] & (truth.getnnz(axis=1) > 0)
                if not keep.any():
                    continue
                for (metric, k), vals in ranking_metrics(top[keep], truth[keep], ks).items():
                    out.add((spec.name, metric, k), batch[keep], vals)
                if level == 0:
                    out.add((spec.name, "auc", None), batch[keep],
                            user_auc(scores[keep], truth[keep]))
        report(progress, start + len(batch), len(users), f"scored {start + len(batch):,} users",
               stage="evaluate")
    for level in levels:
        top = np.vstack(listed[level])
        out = results[level]
        valid = top >= 0
        shown = np.where(valid, top, 0)
        novelty = {k: _row_mean(self_info[shown[:, :k]], valid[:, :k]) for k in ks}
        cold_share = {k: _row_mean(cold[shown[:, :k]], valid[:, :k]) for k in ks}
        div = intra_list_diversity(top, vectors, ks)
        for spec in specs if level == 0 else specs[:1]:
            if not any(key[0] == spec.name for key in out.per_user):
                continue
            sel = spec.users[users]
            for k in ks:
                if spec.name == "cold_items":
                    out.add((spec.name, "cold_share", k), users[sel], cold_share[k][sel])
                    continue
                lists = top[sel, :k]
                out.add_catalog((spec.name, "coverage", k),
                                float(len(np.unique(lists[lists >= 0])) / data.n_items),
                                int(sel.sum()))
                out.add((spec.name, "novelty", k), users[sel], novelty[k][sel])
                listed_k = min(k, top.shape[1])
                if div is not None and listed_k in div:
                    out.add((spec.name, "diversity", k), users[sel], div[listed_k][sel])
    return [results[level] for level in levels]


def _row_mean(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Mean of each row over its valid positions (NaN for an empty row)."""
    n = valid.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (values * valid).sum(axis=1) / n, np.nan)


def evaluate_model(model: "Recommender", data: InteractionData, ks: Sequence[int] = DEFAULT_KS,
                   split: str = "test", seed: int = 0, max_users: int | None = None,
                   progress: ProgressCallback | None = None) -> pd.DataFrame:
    """Full-ranking metrics of a fitted model on a split, per slice: rows (slice, metric, k,
    value, users), the means of `evaluate_users` (see there for the metrics)."""
    return evaluate_users(model, data, ks, split, seed, max_users, progress)[0].summary()
