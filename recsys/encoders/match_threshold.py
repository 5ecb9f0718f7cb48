""""No close match": when a photo query's best catalog scores say the catalog has nothing like it.

Visual search always returns its top 10, even for a photo of something the shop does not sell
(a drawn blue shoe in a catalog without shoes returned 12 wallets at 0.655). A fixed cut-off
does not travel between catalogs and encoders, so the threshold is **calibrated per catalog,
from the catalog's own photo vectors** (`calibrate_match_threshold`):

- *in-catalog* queries: catalog photos searched against the catalog without their own product
  (leave one out). Their best score is what "a product of a kind the shop sells, though not
  this one" looks like;
- *off-catalog* queries: catalog photos of one article type searched against the catalog with
  that whole type removed: "something the shop does not sell at all";
- the statistic is the **mean of the query's `K` (10) best scores** (`match_score`), not the
  best one alone: a product of a kind the shop sells has several close neighbours, an
  off-catalog one at most a stray one (on Myntra it caught more off-catalog queries at the same
  false-alarm rate than the best score: 0.57 vs 0.53 of held-out queries, and fewer phone shots
  of catalog products fell under it);
- the threshold is the `false_alarm` quantile (default 5%) of the in-catalog statistic: at
  most that share of in-catalog queries would be called "no close match" (on the calibration
  sample), and `off_fire_rate` says how many simulated off-catalog queries it catches.

A query whose statistic is below the threshold is "no close match" (`MatchThreshold.
is_close_match`; a best score of at least `EXACT`, the catalog photo itself, always matches): the
page says that nothing in the catalog matches closely and labels the results "similar
styles". Plain numpy; the vectors are the encoder's photo vectors (unit length) as searched.
The statistic must be computed on a photo-only search of the whole catalog (no filters), the
same way the threshold was.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

DEFAULT_SAMPLE = 2000        # queries per kind used to calibrate (bounded cost on big catalogs)
K = 10                       # the statistic: mean of the K best scores
EXACT = 0.95                 # a best score this high is the product itself: always a match
DEFAULT_FALSE_ALARM = 0.04
"""Share of a sold kind's photos the calibration may call "no close match". The cut-off is a
quantile of a few hundred validation photos, so the rate on new photos lands near it: at 0.05
it was 0.051-0.053 on Myntra's held-out photos (over the 5% asked), at 0.04 it was 0.043, with
0.880 of off-catalog photos caught instead of 0.890 (docs/encoders.md)."""
MIN_ITEMS = 20


@dataclass
class MatchThreshold:
    """A catalog's "close match" threshold on a photo query's `match_score` (the mean of its
    `k` best cosine scores)."""

    threshold: float
    false_alarm: float                       # share of in-catalog queries below it (target)
    in_fire_rate: float                      # measured on the calibration sample
    off_fire_rate: float                     # share of simulated off-catalog queries below it
    n_in: int
    n_off: int
    n_items: int
    in_quantiles: dict[str, float] = field(default_factory=dict)
    off_quantiles: dict[str, float] = field(default_factory=dict)
    k: int = K
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "MatchThreshold | None":
        if not data:
            return None
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    def is_close_match(self, scores: Sequence[float]) -> bool:
        """`scores`: the query's best scores against the catalog's photos. A best score of
        at least `EXACT` is the product itself (a catalog photo): always a match."""
        best = np.nanmax(np.asarray(scores, dtype=np.float64)) if len(scores) else float("nan")
        if best == best and best >= EXACT:
            return True
        return is_close_match(match_score(scores, self.k), self.threshold)


def match_score(scores: Sequence[float], k: int = K) -> float:
    """The statistic: mean of the `k` best scores (`scores` best first, or any order)."""
    s = np.sort(np.asarray(scores, dtype=np.float64)[np.isfinite(scores)])[::-1][:k]
    return float(s.mean()) if len(s) else float("nan")


def is_close_match(score: float | None, threshold: float | None) -> bool:
    """True when `score` (a `match_score`) reaches the threshold, or there is no threshold (a
    catalog too small to calibrate never says "no close match")."""
    if threshold is None or score is None or score != score:
        return True
    return float(score) >= float(threshold)


def top_k_mean(queries: np.ndarray, gallery: np.ndarray, exclude, k: int = K,
               chunk: int = 1024) -> np.ndarray:
    """`match_score` of each query against the gallery, ignoring gallery rows where
    `exclude(start, stop)` ([queries, gallery] bool for that chunk of queries) is True."""
    out = np.empty(len(queries), dtype=np.float64)
    for start in range(0, len(queries), chunk):
        sims = queries[start:start + chunk] @ gallery.T
        sims = np.where(exclude(start, start + len(sims)), -np.inf, sims)
        kk = min(k, sims.shape[1])
        top = -np.partition(-sims, kk - 1, axis=1)[:, :kk]
        top = np.where(np.isfinite(top), top, np.nan)
        out[start:start + len(sims)] = np.nanmean(top, axis=1)
    return out


def _quantiles(x: np.ndarray) -> dict[str, float]:
    if len(x) == 0:
        return {}
    return {f"q{int(q * 100):02d}": float(np.quantile(x, q)) for q in (0.05, 0.25, 0.5, 0.75,
                                                                      0.95)}


def simulated_queries(labels: np.ndarray, sample: int, seed: int):
    """The calibration's simulated queries over a catalog whose article types are `labels`
    (object array, "" for none): (q_in, q_off, leave_one_out, without_type). `q_in`: up to
    `sample` catalog photos searched without themselves (in-catalog queries); `q_off`: up to
    `sample` typed photos searched with their whole type removed (off-catalog queries); the two
    functions give the exclusion mask of rows [a, b) of each (for `top_k`)."""
    n = len(labels)
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

    return q_in, q_off, leave_one_out, without_type


def calibrate_match_threshold(vectors: np.ndarray, labels: Sequence[str],
                              false_alarm: float = DEFAULT_FALSE_ALARM,
                              sample: int = DEFAULT_SAMPLE, seed: int = 0, k: int = K
                              ) -> MatchThreshold | None:
    """The catalog's threshold from its own photo vectors [n, d] (unit rows) and their
    article types (see the module docstring); None when the catalog has fewer than
    `MIN_ITEMS` photos or fewer than two types (nothing to simulate off-catalog queries with).
    At most `sample` in-catalog and `sample` off-catalog queries are scored against the
    whole catalog (cost: 2 x sample x n dot products)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    labels = np.asarray([str(x) if x is not None else "" for x in labels], dtype=object)
    n = len(vectors)
    types = sorted({t for t in labels if t})
    if n < MIN_ITEMS or len(types) < 2:
        return None
    q_in, q_off, leave_one_out, without_type = simulated_queries(labels, sample, seed)
    s_in = top_k_mean(vectors[q_in], vectors, leave_one_out, k)
    s_off = top_k_mean(vectors[q_off], vectors, without_type, k)
    s_off = s_off[np.isfinite(s_off)]
    threshold = float(np.quantile(s_in, false_alarm))
    return MatchThreshold(threshold=threshold, false_alarm=float(false_alarm),
                          in_fire_rate=float((s_in < threshold).mean()),
                          off_fire_rate=float((s_off < threshold).mean()) if len(s_off) else 0.0,
                          n_in=int(len(s_in)), n_off=int(len(s_off)), n_items=int(n),
                          in_quantiles=_quantiles(s_in), off_quantiles=_quantiles(s_off), k=k)
