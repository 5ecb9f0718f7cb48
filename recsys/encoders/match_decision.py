""""No close match" decided from more than one number: a small logistic model per catalog.

`match_threshold` cuts on one statistic (the mean of a photo query's 10 best scores). On Myntra
that caught 59% of off-catalog queries at a 5% false-alarm rate: a photo of something the shop
does not sell often still has ten fairly close neighbours (heels when the shop sells flats). The
neighbours say more than their scores:

- ``best``, ``mean10``: the best score and the mean of the 10 best (the old statistic);
- ``spread``: best minus 10th best (one stray close neighbour, then nothing);
- ``agree``: the share of the 10 best of the best one's type (a product of a kind the shop sells
  lands among products of that kind; an off-catalog one between several kinds);
- ``dense_gap``: the query's mean of its 10 best minus the same statistic of its 3 nearest
  neighbours *within their own type* (`type_density`): how much looser the query sits in the
  catalog than the catalog's own products of the kind it landed on (a local-density ratio, as in
  LOF, measured per type so that removing a type does not change the other types' values).

`calibrate_match_model` fits a scikit-learn logistic regression on these features per catalog,
from the catalog's own photo vectors: positives ("close") are catalog photos searched without
their own product (leave one out), negatives ("no close match") catalog photos searched with
their whole article type removed (simulated off-catalog queries, as `match_threshold` does).
The cut-off on the model's log-odds is the `false_alarm` quantile (default 5%) of the in-catalog
queries' log-odds, so the promise stays "at most ~5% of products of a kind the shop sells are
told no close match". A best score of at least `match_threshold.EXACT` (the catalog photo
itself) is always a match.

Everything is plain numpy except the fit (scikit-learn); the model is a handful of floats kept
as JSON beside the index (`recsys.search.close_match`). Cost of a calibration on n photos:
2 x sample x n dot products plus `type_density` (sum over types of n_type^2).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .match_threshold import DEFAULT_FALSE_ALARM, DEFAULT_SAMPLE, EXACT, K, MIN_ITEMS, \
    _quantiles

FEATURES = ("best", "mean10", "spread", "agree", "dense_gap")
NEIGHBOURS_DENSITY = 3             # dense_gap: the query's nearest neighbours whose density counts
MAX_TYPE_BLOCK = 20_000            # type_density: larger types are scored against a sample


def top_k(queries: np.ndarray, gallery: np.ndarray,
          exclude: Callable[[int, int], np.ndarray] | None, k: int = K, chunk: int = 1024
          ) -> tuple[np.ndarray, np.ndarray]:
    """The `k` best scores [m, k] (best first; -inf where the gallery had fewer rows) and their
    gallery rows [m, k] (-1 there), ignoring rows where `exclude(start, stop)` is True."""
    m, n = len(queries), len(gallery)
    kk = min(k, n)
    scores = np.full((m, k), -np.inf, dtype=np.float64)
    rows = np.full((m, k), -1, dtype=np.int64)
    for start in range(0, m, chunk):
        sims = queries[start:start + chunk] @ gallery.T
        if exclude is not None:
            sims = np.where(exclude(start, start + len(sims)), -np.inf, sims)
        part = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
        vals = np.take_along_axis(sims, part, axis=1)
        order = np.argsort(-vals, axis=1, kind="stable")
        scores[start:start + len(sims), :kk] = np.take_along_axis(vals, order, axis=1)
        rows[start:start + len(sims), :kk] = np.take_along_axis(part, order, axis=1)
    rows[~np.isfinite(scores)] = -1
    return scores, rows


def type_density(vectors: np.ndarray, labels: Sequence[str], k: int = K,
                 max_block: int = MAX_TYPE_BLOCK, seed: int = 0) -> np.ndarray:
    """Per catalog photo: the mean of its `k` best scores among the *other* photos of its own
    type (NaN for an untyped photo or a type of one). A type larger than `max_block` is scored
    against a seeded sample of `max_block` of its photos (bounded cost)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    labels = np.asarray([str(x) if x is not None else "" for x in labels], dtype=object)
    out = np.full(len(vectors), np.nan)
    rng = np.random.default_rng(seed)
    for t in sorted(set(labels) - {""}):
        members = np.flatnonzero(labels == t)
        if len(members) < 2:
            continue
        gallery = members if len(members) <= max_block else \
            np.sort(rng.choice(members, max_block, replace=False))
        g = vectors[gallery]
        for start in range(0, len(members), 1024):
            q = members[start:start + 1024]
            sims = vectors[q] @ g.T
            sims[q[:, None] == gallery[None, :]] = -np.inf
            kk = min(k, len(gallery) - 1) if len(gallery) <= max_block else k
            kk = max(1, min(kk, len(gallery)))
            top = -np.partition(-sims, kk - 1, axis=1)[:, :kk]
            top = np.where(np.isfinite(top), top, np.nan)
            with np.errstate(all="ignore"):
                out[q] = np.nanmean(top, axis=1)
    return out


def query_features(scores: np.ndarray, labels: np.ndarray, density: np.ndarray,
                   fill_density: float) -> np.ndarray:
    """[m, len(FEATURES)] from each query's best scores [m, k] (best first, -inf padding), the
    labels [m, k] and the `type_density` [m, k] of those neighbours (NaN: `fill_density`)."""
    scores = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(scores)
    s = np.where(finite, scores, np.nan)
    with np.errstate(all="ignore"):
        best = s[:, 0]
        mean10 = np.nanmean(s, axis=1)
        last = np.array([row[f][-1] if f.any() else np.nan for row, f in zip(s, finite)])
        spread = best - last
        lab = np.asarray(labels, dtype=object)
        agree = ((lab == lab[:, :1]) & finite).sum(axis=1) / np.maximum(finite.sum(axis=1), 1)
        dens = np.where(np.isfinite(density), density, fill_density)[:, :NEIGHBOURS_DENSITY]
        dense_gap = mean10 - dens.mean(axis=1)
    x = np.column_stack([best, mean10, spread, agree, dense_gap])
    return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)


@dataclass
class MatchModel:
    """A catalog's "close match" decision: a logistic model over `FEATURES` (standardised with
    `mean`/`scale`), close when its log-odds reach `cutoff`. Also keeps the catalog's
    `type_density` fill value for neighbours without one."""

    coef: list[float]
    intercept: float
    mean: list[float]
    scale: list[float]
    cutoff: float
    false_alarm: float
    in_fire_rate: float
    off_fire_rate: float
    n_in: int
    n_off: int
    n_items: int
    fill_density: float
    k: int = K
    features: tuple[str, ...] = FEATURES
    in_quantiles: dict[str, float] = field(default_factory=dict)
    off_quantiles: dict[str, float] = field(default_factory=dict)

    kind = "model"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["features"] = list(self.features)
        out["kind"] = self.kind
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "MatchModel | None":
        if not data or data.get("kind") != cls.kind:
            return None
        known = set(cls.__dataclass_fields__)
        kept = {k: v for k, v in data.items() if k in known}
        kept["features"] = tuple(kept.get("features", FEATURES))
        if kept["features"] != FEATURES:
            return None                          # saved by another version: calibrate again
        return cls(**kept)

    @property
    def threshold(self) -> float:
        """The cut-off (on the log-odds), for display next to `score`."""
        return float(self.cutoff)

    def log_odds(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, dtype=np.float64) - np.asarray(self.mean)) / np.asarray(self.scale)
        return z @ np.asarray(self.coef) + float(self.intercept)

    def decide(self, scores: np.ndarray, labels: np.ndarray, density: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
        """(close [m] bool, log-odds [m]) for queries' best scores / labels / densities [m, k]."""
        scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
        z = self.log_odds(query_features(scores, np.atleast_2d(np.asarray(labels, dtype=object)),
                                         np.atleast_2d(np.asarray(density, dtype=np.float64)),
                                         self.fill_density))
        exact = np.nan_to_num(scores[:, 0], nan=-np.inf, neginf=-np.inf) >= EXACT
        return exact | (z >= self.cutoff), z


def _fit(x: np.ndarray, y: np.ndarray):
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    clf = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000)
    clf.fit((x - mean) / scale, y)
    return clf.coef_[0], float(clf.intercept_[0]), mean, scale


def calibration_queries(vectors: np.ndarray, labels: np.ndarray, density: np.ndarray,
                        sample: int, seed: int, k: int, fill: float):
    """Features of the simulated in-catalog (leave one out) and off-catalog (leave the type out)
    queries of a catalog: (x_in, x_off)."""
    n = len(vectors)
    rng = np.random.default_rng(seed)
    q_in = rng.choice(n, size=min(sample, n), replace=False)
    typed = np.flatnonzero(labels != "")
    q_off = rng.choice(typed, size=min(sample, len(typed)), replace=False)

    def leave_one_out(a, b):
        rows = q_in[a:b]
        mask = np.zeros((len(rows), n), bool)
        mask[np.arange(len(rows)), rows] = True
        return mask

    def without_type(a, b):
        return labels[None, :] == labels[q_off[a:b]][:, None]

    feats = []
    for q, exclude in ((q_in, leave_one_out), (q_off, without_type)):
        s, r = top_k(vectors[q], vectors, exclude, k)
        lab = np.where(r >= 0, labels[np.maximum(r, 0)], "")
        den = np.where(r >= 0, density[np.maximum(r, 0)], np.nan)
        x = query_features(s, lab, den, fill)
        feats.append(x[np.isfinite(s[:, 0])])
    return feats[0], feats[1]


def calibrate_match_model(vectors: np.ndarray, labels: Sequence[str],
                          false_alarm: float = DEFAULT_FALSE_ALARM,
                          sample: int = DEFAULT_SAMPLE, seed: int = 0, k: int = K,
                          density: np.ndarray | None = None) -> MatchModel | None:
    """The catalog's decision from its photo vectors [n, d] (unit rows) and article types (see
    the module docstring); None when the catalog has fewer than `MIN_ITEMS` photos or fewer
    than two types. `density`: the catalog's `type_density` when already computed."""
    vectors = np.asarray(vectors, dtype=np.float32)
    labels = np.asarray([str(x) if x is not None else "" for x in labels], dtype=object)
    n = len(vectors)
    if n < MIN_ITEMS or len({t for t in labels if t}) < 2:
        return None
    density = type_density(vectors, labels, k) if density is None else np.asarray(density)
    fill = float(np.nanmedian(density)) if np.isfinite(density).any() else 0.0
    x_in, x_off = calibration_queries(vectors, labels, density, sample, seed, k, fill)
    if len(x_in) < 2 or len(x_off) < 2:
        return None
    x = np.vstack([x_in, x_off])
    y = np.r_[np.ones(len(x_in)), np.zeros(len(x_off))]
    coef, intercept, mean, scale = _fit(x, y)
    model = MatchModel(coef=[float(c) for c in coef], intercept=intercept,
                       mean=[float(m) for m in mean], scale=[float(s) for s in scale],
                       cutoff=0.0, false_alarm=float(false_alarm), in_fire_rate=0.0,
                       off_fire_rate=0.0, n_in=int(len(x_in)), n_off=int(len(x_off)),
                       n_items=int(n), fill_density=fill, k=k)
    z_in, z_off = model.log_odds(x_in), model.log_odds(x_off)
    model.cutoff = float(np.quantile(z_in, false_alarm))
    model.in_fire_rate = float((z_in < model.cutoff).mean())
    model.off_fire_rate = float((z_off < model.cutoff).mean())
    model.in_quantiles, model.off_quantiles = _quantiles(z_in), _quantiles(z_off)
    return model
