"""The new-arrivals protocol: which models can rank items nobody has met, and its baselines.

Under the ``new-items`` protocol (`recsys.data.interactions`) a seeded share of the items is
held out with all their interactions and each test shopper's held-out items are ranked among
the held-out items only (`InteractionData.candidates`). A model that knows items only from
their interactions (EASE, k-NN, ALS, BPR, LightGCN, bestsellers) gives every new item the
same score: it is *not applicable* here and is reported so, never as zeros. Models that read
item vectors (content models, and the fusion models through their content part) can score a
new item and are evaluated.

The protocol's baselines say what the category labels alone achieve, so that photos and texts
have to beat them:

* ``random`` - a seeded random order (what any model must clear);
* ``attr-popularity`` - a new item scores the training popularity (interactions) of its
  categories (MovieLens genres, Myntra article type; `recsys.data.attributes.item_categories`),
  averaged over its categories; the same list for everyone;
* ``attr-profile`` - the cosine between the shopper's training histogram of categories
  and the new item's categories.

Ties (items with the same categories) are broken by a seeded random amount far below any real
difference, so no item wins a tie by its position in the catalog. The baselines score like a
fitted model (`score(users)`), so `recsys.evaluation.ranking.evaluate_users` measures them with
the same code, intervals and paired tests as every model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recsys.core.arrays import normalise_rows
from recsys.data.attributes import category_matrix
from recsys.data.interactions import InteractionData

if TYPE_CHECKING:
    from recsys.models import ModelSpec

BASELINES = ("random", "attr-popularity", "attr-profile")
"""The protocol's baselines, weakest first; the last one is the comparison baseline."""
COMPARISON_BASELINE = "attr-profile"
TIE_BREAK = 1e-6


def scores_new_items(spec: ModelSpec) -> bool:
    """Whether a registered model can score an item it never saw in training: it reads item
    vectors (content and fusion models); collaborative-only models cannot."""
    return bool(spec.requires - {"cf", "ratings"})


def split_applicable(specs: list[ModelSpec]) -> tuple[list[str], list[str]]:
    """(names of the models that can rank new items, names of those that cannot)."""
    usable = [s.name for s in specs if scores_new_items(s)]
    return usable, [s.name for s in specs if s.name not in usable]


class _Baseline:
    """A fitted baseline: `score(users)` gives users x items scores like a `Recommender`."""

    name = ""

    def __init__(self, data: InteractionData, categories: sp.csr_matrix, seed: int = 0):
        self.n_items = data.n_items
        self.seed = seed
        self.history = data.train.tocsr().copy()
        self.history.data[:] = 1.0
        self.categories = categories.tocsr().astype(np.float32)
        self._fit()

    def _fit(self) -> None:
        pass

    def _base(self, users: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _noise(self, users: np.ndarray) -> np.ndarray:
        """A seeded uniform draw per (user, item), the same on every call."""
        return np.vstack([np.random.default_rng([self.seed, int(u)]).random(self.n_items)
                          for u in users]).astype(np.float32) if len(users) else \
            np.zeros((0, self.n_items), dtype=np.float32)

    def score(self, users) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        return self._base(users) + TIE_BREAK * self._noise(users)


class RandomOrder(_Baseline):
    name = "random"

    def _base(self, users: np.ndarray) -> np.ndarray:
        return np.zeros((len(users), self.n_items), dtype=np.float32)

    def score(self, users) -> np.ndarray:
        return self._noise(np.asarray(users, dtype=np.int64))


class AttributePopularity(_Baseline):
    name = "attr-popularity"

    def _fit(self) -> None:
        per_category = np.asarray(self.history.sum(axis=0)).ravel() @ self.categories
        per_category = np.asarray(per_category).ravel()
        n_cats = np.asarray(self.categories.sum(axis=1)).ravel()
        total = max(float(per_category.sum()), 1.0)
        self.item_score = (np.asarray(self.categories @ (per_category / total)).ravel()
                           / np.maximum(n_cats, 1.0)).astype(np.float32)

    def _base(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.item_score, (len(users), self.n_items)).copy()


class AttributeProfile(_Baseline):
    name = "attr-profile"

    def _fit(self) -> None:
        profiles = (self.history @ self.categories).toarray()
        self.profiles = normalise_rows(profiles.astype(np.float32))
        self.items = normalise_rows(self.categories.toarray())

    def _base(self, users: np.ndarray) -> np.ndarray:
        return (self.profiles[users] @ self.items.T).astype(np.float32)


_CLASSES = {c.name: c for c in (RandomOrder, AttributePopularity, AttributeProfile)}


def fit_baselines(data: InteractionData, items: pd.DataFrame, seed: int = 0
                  ) -> tuple[dict[str, _Baseline], list[str]]:
    """The protocol's baselines fitted on the training split, and notes for the reader.
    `items` holds the catalog's item_id, description and category columns
    (`recsys.data.attributes.CATEGORY_COLUMNS`). Without any category the two attribute
    baselines are left out (a note says so)."""
    categories, names = category_matrix(items, list(data.item_ids))
    notes: list[str] = []
    chosen = list(BASELINES)
    if not names:
        chosen = ["random"]
        notes.append("The catalog names no category (no article type, no 'Genres: ...' in the "
                     "descriptions): the category baselines were left out.")
    return {n: _CLASSES[n](data, categories, seed) for n in chosen}, notes
