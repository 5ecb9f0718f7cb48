"""Which catalog attributes drove a pick: a local surrogate fitted around a shopper's scores.

The recipe is LIME's (Ribeiro et al., 2016) for tabular data with an interpretable binary
representation: for the picked item p and each attribute a (article type, colour, brand, usage,
price band: `recsys.data.attributes`), z_a(i) = 1 when item i shares p's value of a. Items near p
(sharing more attributes) get more weight through LIME's exponential kernel on the distance in
that binary space, and a sparse linear model (forward selection of at most `max_features`
attributes, LIME's default selection for few features, then weighted ridge)

    score_u(i) ≈ b + Σ_a w_a z_a(i)

is fitted to the shopper's standardised model scores. w_a is how much, around this pick,
sharing its `a` raises the model's score for this shopper (in standard deviations of their
scores); the attributes with the largest positive w_a "drove the pick".

Why not the `lime` or `shap` packages: both explain a black box by scoring synthetic,
perturbed inputs (LIME's tabular sampler draws new feature vectors, SHAP's KernelExplainer
mixes features with a background set), but a recommender only scores the items that exist
(its CF part knows nothing about an unseen "grey Nike sock"). The neighbourhood here is
therefore the real catalog, weighted by the same kernel, and the fit is a weighted least
squares on at most five binary columns: a few lines of numpy, milliseconds per pick, no new
dependency.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from recsys.data.attributes import ATTRIBUTES

MAX_FEATURES = 3
KERNEL_WIDTH = 0.75          # LIME's default, for distances scaled to 0..1
RIDGE = 1e-3
MAX_ITEMS = 20_000           # neighbourhood sample on very large catalogs


@dataclass
class AttributeEffect:
    """One attribute of the pick and how much sharing it raises the shopper's score."""

    attribute: str           # the word a person uses: "type", "colour", "brand"...
    column: str              # the catalog column: article_type, base_colour...
    value: str               # the pick's value: "Socks", "Grey"
    effect: float            # surrogate weight, in standard deviations of the user's scores

    def label(self) -> str:
        return f"{self.attribute}: {self.value}"


@dataclass
class AttributeExplanation:
    """The surrogate around one pick: effects of the selected attributes (largest first) and
    how well the surrogate fits the model locally (kernel-weighted R²)."""

    item_id: str
    effects: list[AttributeEffect] = field(default_factory=list)
    fit: float = 0.0
    items: int = 0

    @property
    def drivers(self) -> list[AttributeEffect]:
        """The attributes that raised the score (positive effect), strongest first."""
        return [e for e in self.effects if e.effect > 0]

    def to_dict(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "effects": [asdict(e) for e in self.effects],
                "fit": self.fit, "items": self.items}


class AttributeCodes:
    """The catalog's attribute table as integer codes aligned with a model's item order
    (-1 = unknown), built once per catalog and reused for every pick of every shopper."""

    def __init__(self, table: pd.DataFrame, item_ids: Sequence[str]):
        rows = pd.Index(table["item_id"].astype(str)).get_indexer([str(i) for i in item_ids])
        self.columns = [c for c in ATTRIBUTES if c in table.columns]
        self.codes = np.full((len(item_ids), len(self.columns)), -1, dtype=np.int32)
        self.values: list[np.ndarray] = []
        for j, column in enumerate(self.columns):
            codes, uniques = pd.factorize(table[column], use_na_sentinel=True)
            self.values.append(np.asarray(uniques, dtype=object))
            known = rows >= 0
            self.codes[known, j] = codes[rows[known]]

    def __len__(self) -> int:
        return self.codes.shape[0]


def _weighted_r2(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, float]:
    """Weighted ridge of y on [1, x] (intercept not penalised): coefficients and R²."""
    design = np.column_stack([np.ones(len(y)), x])
    penalty = np.eye(design.shape[1]) * RIDGE
    penalty[0, 0] = 0.0
    wd = design * w[:, None]
    beta = np.linalg.solve(design.T @ wd + penalty, wd.T @ y)
    resid = y - design @ beta
    mean = np.average(y, weights=w)
    total = float(np.sum(w * (y - mean) ** 2))
    r2 = 1.0 - float(np.sum(w * resid ** 2)) / total if total > 0 else 0.0
    return beta, r2


def explain_attributes(scores: np.ndarray, codes: AttributeCodes, pick: int, item_id: str,
                       *, exclude: np.ndarray | None = None, max_features: int = MAX_FEATURES,
                       seed: int = 0) -> AttributeExplanation:
    """The attribute-level explanation of `pick` (an item index into `scores` / `codes`).

    `scores`: the model's scores of every item for one shopper (-inf / NaN = left out);
    `exclude`: item indices left out of the neighbourhood (e.g. the shopper's history, which the
    ranking excludes too). Attributes the pick has no value for are not offered.
    """
    out = AttributeExplanation(str(item_id))
    own = codes.codes[pick]
    usable = [j for j in range(len(codes.columns)) if own[j] >= 0]
    if not usable:
        return out
    keep = np.isfinite(scores)
    if exclude is not None and len(exclude):
        keep[np.asarray(exclude, dtype=np.int64)] = False
    keep[pick] = True
    idx = np.flatnonzero(keep)
    if len(idx) > MAX_ITEMS:
        rng = np.random.default_rng(seed)
        idx = np.union1d(rng.choice(idx, MAX_ITEMS, replace=False), [pick])
    y = scores[idx].astype(np.float64)
    spread = y.std()
    if len(idx) < 5 or spread <= 0:
        return out
    y = (y - y.mean()) / spread
    z = (codes.codes[idx][:, usable] == own[usable]).astype(np.float64)
    distance = 1.0 - z.mean(axis=1)                      # share of attributes not in common
    w = np.sqrt(np.exp(-distance ** 2 / KERNEL_WIDTH ** 2))
    chosen: list[int] = []
    best_r2 = 0.0
    for _ in range(min(max_features, len(usable))):      # LIME's forward selection
        trials = []
        for j in range(len(usable)):
            if j in chosen or z[:, j].min() == z[:, j].max():
                continue
            trials.append((_weighted_r2(z[:, chosen + [j]], y, w)[1], j))
        if not trials:
            break
        r2, j = max(trials)
        if r2 <= best_r2 + 1e-9:
            break
        chosen.append(j)
        best_r2 = r2
    if not chosen:
        return out
    beta, r2 = _weighted_r2(z[:, chosen], y, w)
    for coef, j in sorted(zip(beta[1:], chosen), key=lambda t: -t[0]):
        col = usable[j]
        column = codes.columns[col]
        out.effects.append(AttributeEffect(ATTRIBUTES[column], column,
                                           str(codes.values[col][own[col]]), float(coef)))
    out.fit = float(r2)
    out.items = int(len(idx))
    return out
