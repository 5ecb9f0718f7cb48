"""Uncertainty of evaluation numbers: bootstrap confidence intervals over users and paired tests.

A model's test metric is a mean over users, and a few hundred users leave a wide margin: a
"+14% NDCG" claim means little without an interval. Everything here works on per-user values
(users x metrics matrices, rows aligned between the models compared) and is vectorised:

* `bootstrap_ci` - percentile intervals of the mean: the users are resampled with replacement
  `n_boot` times, every metric of a matrix at once (one matrix product per chunk of resamples
  with multinomial count weights), seeded, so the same numbers come back on every run;
* `paired_comparison` - model A against a baseline B on the same users: the relative gain
  mean(A) / mean(B) - 1 with its paired-bootstrap interval (both means from the same
  resamples), and the two-sided p-value of a paired t-test on the per-user differences
  (`scipy.stats.ttest_rel`: with a few hundred users the mean difference is close to normal);
* `fold_summary` - mean and standard deviation of a metric over cross-validation folds;
* `is_significant` - the one rule that calls a difference significant (p-value below `ALPHA`),
  used by the summary sentence, the tables and charts of the Evaluate page, the command line
  and the A/B test.

Pure numpy/scipy, no store: the evaluate use case stores what these return next to each metric.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterator

import numpy as np

N_BOOT = 1000
"""Bootstrap resamples: the 2.5% and 97.5% percentiles move by well under 1% of the interval
width between seeds at this size."""

LEVEL = 0.95
ALPHA = 0.05
"""A difference is called significant when the paired test's p-value is below this (the
default significance level of the A/B test too)."""

_CHUNK_CELLS = 4_000_000       # resamples x users held in memory at once (float32: 16 MB)


def _weights(n_users: int, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """Chunks of bootstrap weights (resamples x users; each row counts how often every user is
    drawn, summing to n_users). Same seed and sizes, same chunks (cached for small sizes, as
    every metric and model of one evaluation reuses them)."""
    if n_users * n_boot <= _CHUNK_CELLS:
        yield from _cached_weights(n_users, n_boot, seed)
    else:
        yield from _draw_weights(n_users, n_boot, seed)


@lru_cache(maxsize=4)
def _cached_weights(n_users: int, n_boot: int, seed: int) -> tuple[np.ndarray, ...]:
    chunks = tuple(_draw_weights(n_users, n_boot, seed))
    for chunk in chunks:
        chunk.setflags(write=False)
    return chunks


def _draw_weights(n_users: int, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    rng = np.random.default_rng(seed)
    rows = max(1, _CHUNK_CELLS // max(n_users, 1))
    for start in range(0, n_boot, rows):
        size = min(rows, n_boot - start)
        draws = rng.integers(0, n_users, size=(size, n_users))
        draws += (np.arange(size) * n_users)[:, None]
        yield np.bincount(draws.ravel(), minlength=size * n_users).reshape(
            size, n_users).astype(np.float32)


def bootstrap_means(values: np.ndarray, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """Means of `n_boot` resamples of the users (rows): n_boot x metrics (columns)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    n = values.shape[0]
    if n == 0:
        return np.full((n_boot, values.shape[1]), np.nan)
    parts = [w @ values / n for w in _weights(n, n_boot, seed)]
    return np.vstack(parts)


def bootstrap_ci(values: np.ndarray, n_boot: int = N_BOOT, level: float = LEVEL,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile `level` interval of the mean of each column of `values` (users x metrics),
    resampling users: (low, high), one entry per column. NaN for an empty matrix."""
    means = bootstrap_means(values, n_boot, seed)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail], axis=0)
    return low, high


@dataclass
class Comparison:
    """Model A against a baseline B on the same users, one entry per metric (column)."""

    mean_a: np.ndarray
    mean_b: np.ndarray
    gain: np.ndarray          # mean_a / mean_b - 1 (NaN when mean_b is 0)
    gain_low: np.ndarray      # paired-bootstrap interval of the gain
    gain_high: np.ndarray
    p_value: np.ndarray       # two-sided paired t-test on per-user differences
    users: int


def is_significant(p_value: Any, alpha: float = ALPHA) -> Any:
    """Whether a test's p-value calls the difference significant: below `alpha`. A missing
    p-value (None or NaN: no test was possible) is not significant. One value gives a bool,
    an array (or a column) a bool array."""
    p = np.asarray(np.nan if p_value is None else p_value, dtype=np.float64)
    below = np.nan_to_num(p, nan=1.0) < alpha
    return bool(below) if below.ndim == 0 else below


def paired_comparison(a: np.ndarray, b: np.ndarray, n_boot: int = N_BOOT, level: float = LEVEL,
                      seed: int = 0) -> Comparison:
    """Compare per-user values `a` and `b` (users x metrics, rows = the same users).

    The gain interval comes from resampling users (the same resamples for A and B, so what
    both models find easy or hard cancels out); the p-value from `scipy.stats.ttest_rel`
    (1.0 when every difference is zero, NaN with fewer than 2 users).
    """
    from scipy.stats import ttest_rel

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim == 1:
        a, b = a[:, None], b[:, None]
    if a.shape != b.shape:
        raise ValueError(f"paired values need the same shape, got {a.shape} and {b.shape}")
    n = a.shape[0]
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        gain = np.where(mean_b != 0, mean_a / mean_b - 1.0, np.nan)
        both = bootstrap_means(np.hstack([a, b]), n_boot, seed)
        m = a.shape[1]
        ratios = np.where(both[:, m:] != 0, both[:, :m] / both[:, m:] - 1.0, np.nan)
    tail = (1.0 - level) / 2 * 100
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)       # all-NaN columns give NaN
        low, high = np.nanpercentile(ratios, [tail, 100 - tail], axis=0)
    diff = a - b
    same = np.all(diff == 0, axis=0)
    if n >= 2:
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            # near-identical columns: scipy warns of precision loss; those p-values are set below
            warnings.simplefilter("ignore", RuntimeWarning)
            p = np.asarray(ttest_rel(a, b, axis=0).pvalue, dtype=np.float64)
        p = np.where(same, 1.0, p)
    else:
        p = np.full(m, np.nan)
    return Comparison(mean_a, mean_b, gain, np.asarray(low), np.asarray(high), p, n)


def fold_summary(fold_means: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample standard deviation over folds (rows) of each metric (columns); NaN
    folds (a metric a fold could not measure) are left out."""
    fold_means = np.asarray(fold_means, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)       # all-NaN columns give NaN
        mean = np.nanmean(fold_means, axis=0)
        std = np.nanstd(fold_means, axis=0, ddof=1) if fold_means.shape[0] > 1 \
            else np.zeros(fold_means.shape[1:])
    return mean, std
