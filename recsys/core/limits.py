"""The sizes a person may ask for, in one place (listed in docs/reliability.md, round 2).

Two kinds of numbers come from the command line and the pages:

* **result sizes** (top-k, a search's pool, clusters, shoppers in a test, held-out users):
  asking for more than there is gives what there is, with a note saying so. `clamp` returns
  the number used and the note; a result carries its notes (`notes` in its data, a "note:"
  line on the command line). Result lists are also capped at `MAX_RESULTS`, metrics at
  `MAX_METRIC_K`, so a billion never reaches an allocation;
* **work sizes** (simulated shoppers, visits per shopper, demo products, epochs, batch sizes,
  list lengths): outside their documented range the request is refused with a `LimitError`
  that says the range (`check_range`) - the work would otherwise run for hours or allocate
  gigabytes before failing.

Seeds are checked too (`check_seed`): numpy takes 0 .. 2**32 - 1 and raised a `ValueError`
traceback for a negative one. Every check turns floats that are whole numbers (1e9 from a
JSON body or a page) into ints and refuses NaN, infinities and fractions.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Iterable

from recsys.core.errors import RecsysError

MAX_RESULTS = 10_000
"""Most products a search, a personalised search's pool or a recommendation list returns."""
MAX_PICKS = 1_000
"""Most picks of a recommendation list or a new shopper's picks (each one is explained)."""
MAX_METRIC_K = 100
"""Largest K of an offline metric (Recall@K, NDCG@K; the Evaluate page offers up to 100), of an
A/B test's list and of a benchmark's top-K: the intra-list diversity of every list compares its
K items pairwise (users x K x K similarities; K = 320 took 2.6 GB and 30 s on the 600-shopper
demo)."""
MAX_LIST = 50
"""Most values in a list option (--k 10 20 ..., tastes, history lengths, clusters,
diversity levels)."""
MAX_SIMULATED_USERS = 100_000
"""Most shoppers `simulate`, `init-demo` and `load-myntra` draw (the Data page's maximum;
~8 minutes on Myntra's 9,583 products, and the A/B test replays them)."""
MAX_DEMO_ITEMS = 5_000
"""Most products the built-in demo draws (~30 drawings a second)."""
MIN_DEMO_ITEMS = 24
"""Fewest demo products (the simulator needs several article types)."""
MAX_VISITS = 1_000
"""Most visits per shopper in a simulated A/B test."""
MAX_CLUSTERS = 200
"""Most k-means clusters of the catalog map and the purity table."""
MAX_EPOCHS = 1_000
"""Most training epochs of the encoder alignment (the recommenders check theirs alike)."""
MAX_BATCH = 4_096
"""Largest batch of photos embedded or of photo-text pairs aligned at once."""
MAX_WORKERS = 256
"""Most Ray encoder workers."""
MAX_QUERIES = 10_000
"""Most generated queries of an encoder evaluation (phone-style shots)."""
MAX_SEED = 2**32 - 1


class LimitError(RecsysError):
    """A number outside the range the app accepts; the message says the range."""


def as_int(value: object, name: str) -> int:
    """`value` as an int: ints, and floats or strings that are whole numbers; else a
    `LimitError` naming `name`."""
    if isinstance(value, bool):
        raise LimitError(f"{name} must be a whole number, got {value!r}.")
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise LimitError(f"{name} must be a whole number, got {value!r}.") from None
    if isinstance(value, Real):
        f = float(value)
        if math.isfinite(f) and f == int(f):
            return int(f)
    raise LimitError(f"{name} must be a whole number, got {value!r}.")


def check_range(value: object, name: str, low: int, high: int, why: str = "") -> int:
    """`value` as an int within low..high, else a `LimitError` that states the range (and
    `why`, when given)."""
    n = as_int(value, name)
    if not low <= n <= high:
        reason = f" ({why})" if why else ""
        raise LimitError(f"{name} must be between {low:,} and {high:,}, got {n:,}{reason}.")
    return n


def clamp(value: object, name: str, available: int, maximum: int | None = None,
          what: str = "", notes: list[str] | None = None) -> int:
    """A result size: at least 1 (else a `LimitError`), at most `available` (what there is,
    e.g. the catalog's products) and `maximum`. When it is lowered, a note (appended to
    `notes` when given) says to what and why: "k 1,000,000,000 was lowered to 320: there are
    320 products with vectors."."""
    n = as_int(value, name)
    if n < 1:
        raise LimitError(f"{name} must be at least 1, got {n:,}.")
    cap = max(1, int(available))
    reason = f"there are {available:,} {what}".rstrip() if what else f"there are {available:,}"
    if maximum is not None and maximum <= cap:
        cap, reason = int(maximum), f"the maximum is {maximum:,}"
    if n <= cap:
        return n
    if notes is not None:
        notes.append(f"{name} {n:,} was lowered to {cap:,}: {reason}.")
    return cap


def check_seed(value: object, name: str = "seed") -> int:
    """A random seed: a whole number from 0 to 2**32 - 1."""
    return check_range(value, name, 0, MAX_SEED)


def check_list(values: Iterable[object] | None, name: str, maximum: int = MAX_LIST) -> list:
    """A list option with at most `maximum` values (the values are checked by the caller)."""
    out = list(values or [])
    if len(out) > maximum:
        raise LimitError(f"{name}: at most {maximum} values, got {len(out):,}.")
    return out
