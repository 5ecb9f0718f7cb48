"""Evaluating a fitted model: full-ranking metrics at K on a split, per slice of users/items.

`evaluate_model(model, data, ks)` scores every test user against all items (training items
excluded), then applies the pure metrics of `recsys.metrics`; slices are all users, cold-start
items (no training interaction: only content reaches them) and users with short histories.
Training what is missing and storing the numbers is the `evaluate` use case
(`recsys.usecases`), not this module's job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

from .interactions import EvaluationError, InteractionData
from .metrics import intra_list_diversity, mask_seen, pairwise_auc, ranking_metrics, top_k
from .progress import ProgressCallback, report

if TYPE_CHECKING:
    from .models.base import Recommender

DEFAULT_KS = (5, 10, 20)
SHORT_HISTORY = 5          # users with at most this many training items form the short slice
SCORE_BATCH = 512          # users scored at once (rows of n_items float32)


def content_matrix(data: InteractionData) -> np.ndarray | None:
    """Image and text vectors side by side, re-normalised: the space diversity is measured in."""
    parts = [m for m in (data.image, data.text) if m is not None]
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


def evaluate_model(model: "Recommender", data: InteractionData, ks: Sequence[int] = DEFAULT_KS,
                   split: str = "test", seed: int = 0, max_users: int | None = None,
                   progress: ProgressCallback | None = None) -> pd.DataFrame:
    """Full-ranking metrics of a fitted model on a split, per slice.

    Returns rows (slice, metric, k, value, users). Beyond the ranking metrics at K: `auc`
    (share of held-out positives ranked above a sampled negative), `coverage` (share of the
    catalog in anyone's top-K), `diversity` (intra-list cosine distance in the image/text space)
    and `novelty` (mean self-information -log2 of the training popularity of recommended items).
    """
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
    popularity = data.item_popularity()
    self_info = -np.log2((popularity + 1.0) / (data.n_users + 1.0))
    acc: dict[str, dict] = {s.name: {"metrics": {}, "auc": [], "users": 0} for s in specs}
    tops: list[np.ndarray] = []
    for start in range(0, len(users), SCORE_BATCH):
        batch = users[start:start + SCORE_BATCH]
        scores = mask_seen(model.score(batch).astype(np.float32, copy=True), data.train[batch])
        top = top_k(scores, kmax)
        tops.append(top)
        for spec in specs:
            truth = truth_all[batch]
            if spec.items is not None:
                truth = truth.multiply(spec.items[None, :]).tocsr()
                truth.eliminate_zeros()
            keep = spec.users[batch] & (truth.getnnz(axis=1) > 0)
            if not keep.any():
                continue
            entry = acc[spec.name]
            entry["users"] += int(keep.sum())
            for key, vals in ranking_metrics(top[keep], truth[keep], ks).items():
                entry["metrics"].setdefault(key, []).append(vals)
            entry["auc"].append(pairwise_auc(scores[keep], truth[keep], rng))
        report(progress, start + len(batch), len(users), f"scored {start + len(batch):,} users",
               stage="evaluate")
    top = np.vstack(tops)
    rows = []
    for spec in specs:
        entry = acc[spec.name]
        if not entry["users"]:
            continue
        for (metric, k), parts in entry["metrics"].items():
            rows.append((spec.name, metric, k, float(np.concatenate(parts).mean()),
                         entry["users"]))
        aucs = np.concatenate(entry["auc"])
        rows.append((spec.name, "auc", None, float(aucs.mean()) if len(aucs) else np.nan,
                     entry["users"]))
        sel = spec.users[users]
        for k in ks:
            lists = top[sel, :k]
            if spec.name == "cold_items":
                rows.append((spec.name, "cold_share", k, float(cold[lists].mean()),
                             int(sel.sum())))
                continue
            rows.append((spec.name, "coverage", k,
                         float(len(np.unique(lists)) / data.n_items), int(sel.sum())))
            rows.append((spec.name, "novelty", k, float(self_info[lists].mean()), int(sel.sum())))
            div = intra_list_diversity(lists, vectors)
            if div is not None:
                rows.append((spec.name, "diversity", k, float(div.mean()), int(sel.sum())))
    return pd.DataFrame(rows, columns=["slice", "metric", "k", "value", "users"])
