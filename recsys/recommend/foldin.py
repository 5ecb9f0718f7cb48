"""A new shopper's first picks (cold-start users): fold-in histories and their evaluation.

A shopper who was not in the training data likes a few products; a fitted model scores that
history at once with `Recommender.score_history` (no retraining). This module holds what the
use cases build on it:

* `fold_in_picks`: the top-k of a history, the history itself left out;
* `without_users`: the split with some users' training and validation rows emptied, so models
  fitted on it have never seen those users (an honest "new shopper" test);
* `evaluate_cold_start`: for held-out users, their first n training items (in time) as the only
  history, the metrics of each model's fold-in picks against their test items.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.core.errors import RecsysError
from recsys.core.progress import ProgressCallback, report
from recsys.data.interactions import InteractionData
from recsys.evaluation.metrics import mask_seen, ranking_metrics, top_k
from recsys.models.base import Recommender

DEFAULT_LENGTHS = (1, 3, 5)
DEFAULT_HOLDOUT = 300


class ColdStartError(RecsysError):
    """A new-shopper request or evaluation that cannot be answered."""


def fold_in_picks(model: Recommender, items: Sequence[int], weights: Sequence[float] | None
                  = None, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """(item indices, scores) of the k best items for a history, best first; the history's own
    items are left out."""
    scores = model.score_history(np.asarray(items, dtype=np.int64), weights)
    scores[np.asarray(items, dtype=np.int64)] = -np.inf
    order = np.argsort(-scores, kind="stable")[:k]
    order = order[np.isfinite(scores[order])]
    return order, scores[order]


def holdout_users(data: InteractionData, n_users: int = DEFAULT_HOLDOUT, min_train: int = 5,
                  seed: int = 0) -> np.ndarray:
    """Up to `n_users` users (a seeded sample, sorted) with at least `min_train` training items
    and a test item: the shoppers treated as new."""
    train_n = data.train.getnnz(axis=1)
    test_n = data.test.getnnz(axis=1)
    users = np.flatnonzero((train_n >= min_train) & (test_n > 0))
    if not len(users):
        raise ColdStartError(f"No user of '{data.dataset}' has {min_train} training items and a "
                             "test item to evaluate new-shopper picks on.")
    if len(users) > n_users:
        users = np.random.default_rng(seed).choice(users, n_users, replace=False)
    return np.sort(users)


def without_users(data: InteractionData, users: np.ndarray) -> InteractionData:
    """The same split with `users`' training and validation rows emptied (their test rows
    kept): models fitted on it have never seen those users."""
    keep = np.ones(data.n_users, dtype=np.float32)
    keep[users] = 0.0
    mask = sp.diags(keep)
    return replace(data, train=(mask @ data.train).tocsr(), valid=(mask @ data.valid).tocsr())


def first_items(order: Mapping[int, tuple[np.ndarray, np.ndarray]], n: int
                ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Each user's first `n` items and weights from their time-ordered training history."""
    return {u: (items[:n], weights[:n]) for u, (items, weights) in order.items()}


def evaluate_cold_start(models: Mapping[str, Recommender], data: InteractionData,
                        histories: Mapping[int, tuple[np.ndarray, np.ndarray]],
                        lengths: Sequence[int] = DEFAULT_LENGTHS, k: int = 20,
                        progress: ProgressCallback | None = None) -> pd.DataFrame:
    """Metrics at k of each model's fold-in picks for new shoppers.

    `histories` maps a user (row of `data`) to their training items in time order (and
    weights); for each n in `lengths`, the first n items are the only history, the user's test
    items the targets, and their other training items are masked (known, neither history nor
    target). Returns model, history (n), metric (recall, ndcg, hit_rate), k, value (mean),
    users.
    """
    users = np.array(sorted(histories), dtype=np.int64)
    if not len(users):
        raise ColdStartError("No held-out shopper to evaluate.")
    truth = data.test[users]
    seen = data.train[users]
    rows = []
    steps = len(models) * len(lengths)
    done = 0
    for name, model in models.items():
        for n in lengths:
            firsts = first_items(histories, n)
            scores = np.vstack([model.score_history(*firsts[int(u)]) for u in users])
            scores = mask_seen(scores, seen)
            metrics = ranking_metrics(top_k(scores, k), truth, [k])
            for metric in ("recall", "ndcg", "hit_rate"):
                rows.append({"model": name, "history": int(n), "metric": metric, "k": k,
                             "value": float(metrics[(metric, k)].mean()),
                             "users": int(len(users))})
            done += 1
            report(progress, done, steps, f"{name}: {n} liked product{'s' * (n > 1)}",
                   stage="evaluate")
    return pd.DataFrame(rows)
