"""Why an item was recommended: modality weights and the history items it is most similar to.

The weights come from the model (`Recommender.modality_weights`): the attention model's own
attention, late fusion's per-signal contributions, early fusion's exact decomposition of the
score by modality, the share of each cosine for content models, and CF alone for CF models.
The similar history items are ranked by those weights applied to per-modality similarities:
the cosine in each vector modality the data has (image, text, video, imported ones, each by
its name), and CF similarity (cosine of the items' training co-occurrence columns).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys.data.interactions import InteractionData
from recsys.models.base import Recommender

N_SIMILAR = 3


@dataclass
class SimilarItem:
    """A history item close to a recommendation, with its similarity per modality."""

    item_id: str
    similarity: float
    similarities: dict[str, float]


@dataclass
class Explanation:
    """One recommended item: its rank, score, modality weights and similar history items."""

    item_id: str
    rank: int
    score: float
    weights: dict[str, float]
    similar: list[SimilarItem] = field(default_factory=list)
    cold: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cf_similarity(train: sp.csr_matrix, items: np.ndarray, history: np.ndarray) -> np.ndarray:
    """Cosine between items' binary training columns (who interacted with them): items x history."""
    x = (train[:, np.concatenate([items, history])] > 0).astype(np.float32).tocsc()
    norms = np.sqrt(np.asarray(x.sum(axis=0)).ravel())
    co = (x[:, :len(items)].T @ x[:, len(items):]).toarray()
    denom = norms[:len(items), None] * norms[None, len(items):]
    return np.divide(co, denom, out=np.zeros_like(co), where=denom > 0)


def modality_similarities(data: InteractionData, items: np.ndarray, history: np.ndarray
                          ) -> dict[str, np.ndarray]:
    """items x history similarity per available modality."""
    sims = {"cf": cf_similarity(data.train, items, history)}
    for m, mat in data.vectors.items():
        sims[m] = mat[items] @ mat[history].T
    return sims


def explain_items(model: Recommender, data: InteractionData, user: int, items: np.ndarray,
                  scores: np.ndarray, n_similar: int = N_SIMILAR,
                  history: np.ndarray | None = None) -> list[Explanation]:
    """Explanations for given item indices of one user (row index), in the given order.

    The similar items are looked for in `history` (item indices; default: the user's training
    items, what the model saw); an item never cites itself.
    """
    weights = model.modality_weights(user, items)
    history = model.seen[user].indices if history is None else np.asarray(history, np.int64)
    cold = data.cold_items()
    sims = modality_similarities(data, items, history) if len(history) else {}
    out = []
    for r, (item, score) in enumerate(zip(items, scores)):
        w = {m: float(v[r]) for m, v in weights.items()}
        similar: list[SimilarItem] = []
        if sims:
            used = {m: w.get(m, 0.0) for m in sims}
            if sum(used.values()) <= 0:
                used = {m: 1.0 for m in sims}
            combined = sum(used[m] * sims[m][r] for m in sims) / sum(used.values())
            order = [j for j in np.argsort(-combined, kind="stable") if history[j] != item]
            for j in order[:n_similar]:
                similar.append(SimilarItem(str(model.item_ids[history[j]]), float(combined[j]),
                                           {m: float(s[r, j]) for m, s in sims.items()}))
        out.append(Explanation(str(model.item_ids[item]), r + 1, float(score), w, similar,
                               bool(cold[item])))
    return out


def explain_recommendations(model: Recommender, data: InteractionData, user_id: str,
                            k: int = 10, n_similar: int = N_SIMILAR) -> list[Explanation]:
    """Top-k recommendations of a user with, for each, why (weights + similar history items).

    `data` must be the split the model was trained on (same dataset and protocol).
    """
    user = model.user_index(user_id)
    items, scores = model.recommend_indices(user, k)
    return explain_items(model, data, user, items, scores, n_similar)
