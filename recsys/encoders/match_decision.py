""""No close match" decided from more than one number: a small logistic model per catalog.

`match_threshold` cuts on one statistic (the mean of a photo query's 10 best scores). On Myntra
that caught 59% of off-catalog queries at a 5% false-alarm rate: a photo of something the shop
does not sell often still has ten fairly close neighbours (heels when the shop sells flats). The
neighbours say more than their scores:

- ``best``, ``mean10``: the best score and the mean of the 10 best (the old statistic);
- ``spread``: best minus 10th best (one stray close neighbour, then nothing);
- ``agree``: the share of the 10 best of the best one's type (a product of a kind the shop sells
  lands among products of that kind; an off-catalog one between several kinds);
- ``centroid_gap``: the query's cosine with the nearest *type centroid* (the mean photo of
  each article type the catalog sells) minus that type's own mean member-to-centroid cosine: how
  much further from the kind it looks most like the query sits than that kind's own products;
- ``centroid_margin``: nearest minus second-nearest type centroid (a query between two kinds).

On Myntra's held-out photos (calibrated on the other 80%, 5% false alarm; see docs/encoders.md)
the centroid features paid most: off-catalog queries caught 0.477 (mean of 10 alone) -> 0.576
(+ best, spread, agree) -> 0.644 (+ the centroid features); a neighbours' density gap (LOF-like,
per type) was tried and dropped (0.562, no gain).

With the catalog's type names through the encoder's text tower (`TypeTexts`), four more:
``text_max`` / ``text_margin`` (the encoder's confidence in the photo's type, a softmax over the
catalog's types), ``text_agree`` (the named type is the best neighbour's) and ``text_raw`` (the
best cosine with a type name); the cut-off is then taken on photos the encoder never trained on
(`validation`): on Myntra's held-out photos 0.712 of off-catalog queries caught at 0.026 false
alarm, against 0.627 / 0.049 without (docs/encoders.md).

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
2 x sample x n dot products; the type centroids are one pass over the vectors.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from .match_threshold import DEFAULT_FALSE_ALARM, DEFAULT_SAMPLE, EXACT, K, MIN_ITEMS, \
    _quantiles, simulated_queries

FEATURES = ("best", "mean10", "spread", "agree", "centroid_gap", "centroid_margin")
TEXT_FEATURES = ("text_max", "text_margin", "text_agree", "text_raw")
"""With the catalog's type names (`TypeTexts`): the encoder's confidence in the photo's type."""
OPEN_FEATURES = ("open_gap", "open_mass")
"""With a broad list of product-type names besides the catalog's (`TypeTexts.open_names`,
`product_types.PRODUCT_TYPES`): whether the photo looks more like a kind the catalog lacks."""
TEXT_SCALE = 50.0            # softmax temperature of the type-name cosines (CLIP-style logit scale)
MIN_VALIDATION = 20          # fewer validation photos: the cut-off is taken on the calibration


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


@dataclass
class TypeCentroids:
    """Per article type of a catalog: the sum of its unit photo vectors, their count and the
    mean cosine of its photos with its (unit) centroid (`spread`)."""

    types: list[str]
    sums: np.ndarray
    counts: np.ndarray
    spread: np.ndarray

    @classmethod
    def of(cls, vectors: np.ndarray, labels: Sequence[str]) -> "TypeCentroids":
        vectors = np.asarray(vectors, dtype=np.float32)
        labels = np.asarray([str(x) if x is not None else "" for x in labels], dtype=object)
        types = sorted(set(labels) - {""})
        sums = np.zeros((len(types), vectors.shape[1]), np.float64)
        counts = np.zeros(len(types))
        spread = np.zeros(len(types))
        for i, t in enumerate(types):
            members = vectors[labels == t]
            sums[i] = members.sum(axis=0)
            counts[i] = len(members)
            unit = sums[i] / max(np.linalg.norm(sums[i]), 1e-12)
            spread[i] = float((members @ unit).mean())
        return cls(types, sums, counts, spread)

    def sims(self, queries: np.ndarray, remove: Sequence[str] | None = None,
             leave_out: Sequence[str] | None = None) -> np.ndarray:
        """[m, types] cosine of each query with each type's centroid. `remove[i]`: a type the
        catalog does not have for query i (its column -inf); `leave_out[i]`: the query's own
        type, whose centroid is taken without the query itself (a query that is a catalog
        photo must not find itself in its type's mean)."""
        q = np.asarray(queries, dtype=np.float64)
        dots = q @ self.sums.T
        norms = np.linalg.norm(self.sums, axis=1)
        out = dots / np.maximum(norms, 1e-12)[None, :]
        col = {t: i for i, t in enumerate(self.types)}
        if leave_out is not None:
            for r, t in enumerate(leave_out):
                j = col.get(str(t))
                if j is None or self.counts[j] < 2:
                    continue
                rest = self.sums[j] - q[r]
                out[r, j] = float(q[r] @ rest) / max(np.linalg.norm(rest), 1e-12)
        if remove is not None:
            for r, t in enumerate(remove):
                j = col.get(str(t))
                if j is not None:
                    out[r, j] = -np.inf
        return out


@dataclass
class TypeTexts:
    """The catalog's article type names through the encoder's text tower: `vectors`
    [types, d] (unit rows, e.g. the mean of a prompt ensemble per type), in the photo vectors'
    space. `features(queries, best)` is the encoder's confidence in a photo's type among the
    catalog's types: ``text_max`` (the softmax's largest probability at `scale`),
    ``text_margin`` (largest minus second), ``text_agree`` (1 when the type it names is the
    type of the query's best photo neighbour `best`) and ``text_raw`` (the largest cosine with
    a type name). A photo of a kind the catalog sells is usually named confidently, as the kind
    of its nearest photo; one of a kind it lacks spreads over the near kinds."""

    types: list[str]
    vectors: np.ndarray
    scale: float = TEXT_SCALE
    open_names: list[str] = field(default_factory=list)
    open_vectors: np.ndarray | None = None

    def __post_init__(self):
        from .product_types import normalise_type

        v = np.asarray(self.vectors, dtype=np.float64)
        if v.ndim != 2 or len(v) != len(self.types):
            raise ValueError("one type-name vector per type")
        self.vectors = _unit_rows(v)
        self.types = [str(t) for t in self.types]
        self.open_names = [str(n) for n in self.open_names]
        if self.open_names:
            o = np.asarray(self.open_vectors, dtype=np.float64)
            if o.ndim != 2 or len(o) != len(self.open_names) or o.shape[1] != v.shape[1]:
                raise ValueError("one vector per open-vocabulary name, as wide as the types'")
            self.open_vectors = _unit_rows(o)
            own = [normalise_type(t) for t in self.types]
            # [open names, types]: the catalog type that open name stands for
            self._same = np.array([[normalise_type(n) == t for t in own]
                                   for n in self.open_names], dtype=bool)
        else:
            self.open_vectors = None

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The columns `features` returns."""
        return TEXT_FEATURES + (OPEN_FEATURES if self.open_names else ())

    def without_open(self) -> "TypeTexts":
        """The same type names without the open vocabulary (the previous decision)."""
        return TypeTexts(self.types, self.vectors, self.scale)

    def features(self, queries: np.ndarray, best: Sequence[str],
                 remove: Sequence[str] | None = None) -> np.ndarray:
        """[m, len(feature_names)]; `best[i]`: the type of query i's best photo neighbour;
        `remove[i]`: a type the catalog lacks for query i (out of its softmax). With
        `open_names`, `OPEN_FEATURES` follow (`open_features`)."""
        closed = self._closed_features(queries, best, remove)
        if not self.open_names:
            return closed
        return np.hstack([closed, self.open_features(queries, remove)])

    def open_features(self, queries: np.ndarray, remove: Sequence[str] | None = None
                      ) -> np.ndarray:
        """[m, 2]: ``open_gap``, the photo's best cosine with an open-vocabulary name the
        catalog does not have minus its best cosine with a catalog type name, and
        ``open_mass``, the probability of those names in one softmax (at `scale`) over both
        lists. An open name the catalog has (same name, `product_types.normalise_type`) counts
        as the catalog's; `remove[i]`: a type the catalog lacks for query i."""
        q = np.atleast_2d(np.asarray(queries, dtype=np.float64))
        cat = q @ self.vectors.T
        opn = q @ self.open_vectors.T
        out = np.zeros((len(q), 2))
        col = {t: i for i, t in enumerate(self.types)}
        gone = [col.get(str(t)) if remove is not None else None
                for t in (remove if remove is not None else [None] * len(q))]
        for key in set(gone):
            rows = np.array([i for i, g in enumerate(gone) if g == key])
            sold = np.ones(len(self.types), bool)
            if key is not None:
                sold[key] = False
            lacks = ~self._same[:, sold].any(axis=1)          # open names the catalog lacks
            c, o = cat[np.ix_(rows, np.flatnonzero(sold))], opn[:, lacks][rows]
            if o.shape[1] == 0 or c.shape[1] == 0:
                continue
            logits = self.scale * np.hstack([c, o])
            logits -= logits.max(axis=1, keepdims=True)
            p = np.exp(logits)
            out[rows, 0] = o.max(axis=1) - c.max(axis=1)
            out[rows, 1] = p[:, c.shape[1]:].sum(axis=1) / p.sum(axis=1)
        return out

    def _closed_features(self, queries: np.ndarray, best: Sequence[str],
                         remove: Sequence[str] | None = None) -> np.ndarray:
        q = np.atleast_2d(np.asarray(queries, dtype=np.float64))
        cos = q @ self.vectors.T
        logits = self.scale * cos
        if remove is not None:
            col = {t: i for i, t in enumerate(self.types)}
            for r, t in enumerate(remove):
                j = col.get(str(t))
                if j is not None:
                    logits[r, j] = -np.inf
        allowed = np.isfinite(logits)
        raw = np.where(allowed, cos, -1.0).max(axis=1)
        named = np.asarray(self.types, dtype=object)[np.argmax(logits, axis=1)]
        agree = (named == np.asarray([str(b) for b in best], dtype=object)).astype(float)
        if logits.shape[1] < 2:
            return np.column_stack([np.ones(len(q)), np.ones(len(q)), agree, raw])
        logits = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        top2 = -np.partition(-p, 1, axis=1)[:, :2]
        return np.column_stack([top2[:, 0], top2[:, 0] - top2[:, 1], agree, raw])


def _unit_rows(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def query_features(scores: np.ndarray, labels: np.ndarray, centroid_sims: np.ndarray,
                   spread: np.ndarray) -> np.ndarray:
    """[m, len(FEATURES)] from each query's best scores [m, k] (best first, -inf padding), the
    labels [m, k] of those neighbours and its cosines with the type centroids [m, types]
    (`TypeCentroids.sims`, -inf for types the catalog lacks) with the types' `spread`."""
    scores = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(scores)
    s = np.where(finite, scores, np.nan)
    with np.errstate(all="ignore"):
        best = s[:, 0]
        mean10 = np.nanmean(s, axis=1)
        last = np.array([row[f][-1] if f.any() else np.nan for row, f in zip(s, finite)])
        spread_k = best - last
        lab = np.asarray(labels, dtype=object)
        agree = ((lab == lab[:, :1]) & finite).sum(axis=1) / np.maximum(finite.sum(axis=1), 1)
        c = np.asarray(centroid_sims, dtype=np.float64)
        if c.shape[1] >= 2:
            top2 = -np.partition(-c, 1, axis=1)[:, :2]
            near = np.argmax(c, axis=1)
            gap = top2[:, 0] - np.asarray(spread, dtype=np.float64)[near]
            margin = np.abs(top2[:, 0] - top2[:, 1])
        elif c.shape[1] == 1:
            gap = c[:, 0] - float(np.asarray(spread)[0])
            margin = np.zeros(len(c))
        else:
            gap = margin = np.zeros(len(c))
    x = np.column_stack([best, mean10, spread_k, agree, gap, margin])
    return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)


@dataclass
class MatchModel:
    """A catalog's "close match" decision: a logistic model over `FEATURES` (standardised with
    `mean`/`scale`), close when its log-odds reach `cutoff`."""

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
    k: int = K
    features: tuple[str, ...] = FEATURES
    in_quantiles: dict[str, float] = field(default_factory=dict)
    off_quantiles: dict[str, float] = field(default_factory=dict)
    cutoff_on: str = "calibration"        # or "validation": photos the encoder never trained on
    n_cutoff: int = 0

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
        if kept["features"] not in (FEATURES, FEATURES + TEXT_FEATURES,
                                    FEATURES + TEXT_FEATURES + OPEN_FEATURES):
            return None                          # saved by another version: calibrate again
        return cls(**kept)

    @property
    def threshold(self) -> float:
        """The cut-off (on the log-odds), for display next to `score`."""
        return float(self.cutoff)

    def log_odds(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, dtype=np.float64) - np.asarray(self.mean)) / np.asarray(self.scale)
        return z @ np.asarray(self.coef) + float(self.intercept)

    @property
    def uses_text(self) -> bool:
        """Whether the decision needs the catalog's type-name vectors (`TypeTexts`)."""
        return len(tuple(self.features)) > len(FEATURES)

    @property
    def uses_open(self) -> bool:
        """Whether it also needs the open-vocabulary names (`TypeTexts.open_names`)."""
        return tuple(self.features)[-len(OPEN_FEATURES):] == OPEN_FEATURES

    def decide(self, scores: np.ndarray, labels: np.ndarray, centroid_sims: np.ndarray,
               spread: np.ndarray, text: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """(close [m] bool, log-odds [m]) for queries' best scores / labels [m, k] and their
        type-centroid cosines [m, types] (see `query_features`); `text` [m, 4]: the queries'
        `TypeTexts.features`, needed when the model `uses_text`."""
        scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
        x = query_features(scores, np.atleast_2d(np.asarray(labels, dtype=object)),
                           np.atleast_2d(centroid_sims), spread)
        if self.uses_text:
            if text is None:
                raise ValueError("this decision needs the type-name features (TypeTexts)")
            x = np.hstack([x, np.atleast_2d(np.asarray(text, dtype=np.float64))])
        z = self.log_odds(x)
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


def _loo_features(vectors: np.ndarray, labels: np.ndarray, cent: TypeCentroids,
                  rows: np.ndarray, k: int, texts: "TypeTexts | None") -> np.ndarray:
    """Features of catalog photos `rows` searched without themselves (in-catalog queries)."""
    n = len(vectors)

    def leave_one_out(a, b):
        mask = np.zeros((b - a, n), bool)
        mask[np.arange(b - a), rows[a:b]] = True
        return mask

    s, r = top_k(vectors[rows], vectors, leave_one_out, k)
    lab = np.where(r >= 0, labels[np.maximum(r, 0)], "")
    x = query_features(s, lab, cent.sims(vectors[rows], leave_out=labels[rows]), cent.spread)
    if texts is not None:
        x = np.hstack([x, texts.features(vectors[rows], lab[:, 0])])
    return x[np.isfinite(s[:, 0])]


def calibration_queries(vectors: np.ndarray, labels: np.ndarray, cent: TypeCentroids,
                        sample: int, seed: int, k: int, texts: "TypeTexts | None" = None):
    """Features of the simulated in-catalog (leave one out) and off-catalog (leave the type out)
    queries of a catalog: (x_in, x_off); with `texts`, `TEXT_FEATURES` appended (the left-out
    type out of the softmax for off-catalog queries)."""
    q_in, q_off, leave_one_out, without_type = simulated_queries(labels, sample, seed)
    feats = []
    for q, exclude, csims in (
            (q_in, leave_one_out, cent.sims(vectors[q_in], leave_out=labels[q_in])),
            (q_off, without_type, cent.sims(vectors[q_off], remove=labels[q_off]))):
        s, r = top_k(vectors[q], vectors, exclude, k)
        lab = np.where(r >= 0, labels[np.maximum(r, 0)], "")
        x = query_features(s, lab, csims, cent.spread)
        if texts is not None:
            x = np.hstack([x, texts.features(vectors[q], lab[:, 0],
                                             None if q is q_in else labels[q])])
        feats.append(x[np.isfinite(s[:, 0])])
    return feats[0], feats[1]


def calibrate_match_model(vectors: np.ndarray, labels: Sequence[str],
                          false_alarm: float = DEFAULT_FALSE_ALARM,
                          sample: int = DEFAULT_SAMPLE, seed: int = 0, k: int = K,
                          texts: TypeTexts | None = None,
                          validation: np.ndarray | None = None) -> MatchModel | None:
    """The catalog's decision from its photo vectors [n, d] (unit rows) and article types (see
    the module docstring); None when the catalog has fewer than `MIN_ITEMS` photos or fewer
    than two types.

    `texts`: the catalog's type names through the encoder's text tower; the model then also
    uses `TEXT_FEATURES`. `validation`: a bool mask [n] of photos the encoder never trained on;
    with at least `MIN_VALIDATION` of them the cut-off is the `false_alarm` quantile of *their*
    log-odds (searched without themselves), not of the sampled calibration queries: an encoder
    is more confident on the photos it was aligned on, so a cut-off taken there fires far more
    often on new products than promised."""
    vectors = np.asarray(vectors, dtype=np.float32)
    labels = np.asarray([str(x) if x is not None else "" for x in labels], dtype=object)
    n = len(vectors)
    if n < MIN_ITEMS or len({t for t in labels if t}) < 2:
        return None
    cent = TypeCentroids.of(vectors, labels)
    x_in, x_off = calibration_queries(vectors, labels, cent, sample, seed, k, texts)
    if len(x_in) < 2 or len(x_off) < 2:
        return None
    x = np.vstack([x_in, x_off])
    y = np.r_[np.ones(len(x_in)), np.zeros(len(x_off))]
    coef, intercept, mean, scale = _fit(x, y)
    model = MatchModel(coef=[float(c) for c in coef], intercept=intercept,
                       mean=[float(m) for m in mean], scale=[float(s) for s in scale],
                       cutoff=0.0, false_alarm=float(false_alarm), in_fire_rate=0.0,
                       off_fire_rate=0.0, n_in=len(x_in), n_off=len(x_off), n_items=n, k=k,
                       features=FEATURES + (texts.feature_names if texts is not None else ()))
    z_in, z_off = model.log_odds(x_in), model.log_odds(x_off)
    val = np.flatnonzero(np.asarray(validation, bool)) if validation is not None else []
    if len(val) >= MIN_VALIDATION:
        z_in = model.log_odds(_loo_features(vectors, labels, cent, val, k, texts))
        model.cutoff_on = "validation"
    model.n_cutoff = len(z_in)
    model.cutoff = float(np.quantile(z_in, false_alarm))
    model.in_fire_rate = float((z_in < model.cutoff).mean())
    model.off_fire_rate = float((z_off < model.cutoff).mean())
    model.in_quantiles, model.off_quantiles = _quantiles(z_in), _quantiles(z_off)
    return model


def name_vectors(encoder, names: Sequence[str]) -> np.ndarray:
    """[names, d] unit vectors of type names through `encoder.encode_texts`: the mean of the
    zero-shot prompt ensemble (`captions.ZERO_SHOT_TEMPLATES`) per name."""
    from .captions import ZERO_SHOT_TEMPLATES, class_prompts
    from .text_cache import cached_text_vectors

    names = [str(t) for t in names]
    prompts = [p for t in names for p in class_prompts(t, ZERO_SHOT_TEMPLATES)]
    kept = cached_text_vectors(encoder, prompts)     # pooled tower outputs kept per machine
    v = _unit_rows(np.asarray(encoder.encode_texts(prompts) if kept is None else kept,
                              dtype=np.float64))
    return _unit_rows(v.reshape(len(names), len(ZERO_SHOT_TEMPLATES), -1).mean(axis=1))
