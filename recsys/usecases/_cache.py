"""A small process-wide cache for the heavy objects use cases load more than once.

A search index, a query encoder (with its first forward pass done) and the split a run was
trained on cost from tens of milliseconds to seconds to build; the app asks for them on every
rerun of a page, from several sessions (threads) at once. Each entry is keyed by the database
file and by cheap version tokens read from the store (`Store.items_version`,
`Store.interactions_version`, the embedding sets), so an import, a new embedding or new
interactions make a new key and the stale entry ages out. Values are shared: callers must not
change them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Hashable, TypeVar

T = TypeVar("T")

LIMITS = {"index": 4, "facets": 4, "sets": 8, "encoder": 2, "data": 6, "tastes": 2,
          "map": 6}
"""How many entries of each kind are kept (least recently used ones are dropped)."""

_lock = threading.Lock()
_entries: dict[str, OrderedDict[Hashable, Any]] = {}


def cached(kind: str, key: Hashable, make: Callable[[], T]) -> T:
    """The cached value of `kind` for `key`, made with `make()` on a miss.

    Two threads missing the same key at once may both build it; the last one is kept (each
    caller still gets a correct value). `make` runs outside the lock, so a slow build never
    blocks other lookups.
    """
    with _lock:
        bucket = _entries.setdefault(kind, OrderedDict())
        if key in bucket:
            bucket.move_to_end(key)
            return bucket[key]
    value = make()
    with _lock:
        bucket[key] = value
        bucket.move_to_end(key)
        while len(bucket) > LIMITS.get(kind, 4):
            bucket.popitem(last=False)
    return value


def clear() -> None:
    """Forget every cached object (tests; or to free memory)."""
    with _lock:
        _entries.clear()


def vectors_version(store: Any, dataset: str, sets: Any = None) -> str:
    """A token that changes whenever a dataset's item vectors change (new encoder version,
    items embedded or re-embedded, vectors removed); "none" when it has none. `sets`: the
    dataset's `Store.embedding_sets`, when the caller has read them already."""
    sets = store.embedding_sets(dataset) if sets is None else sets
    if sets.empty:
        return "none"
    return "|".join(f"{r.encoder}@{r.version}:{r.modality}:{r.n_items}:{r.updated_at}"
                    for r in sets.itertuples())


def db_key(store: Any) -> str:
    """The database part of a cache key: the resolved file (one per in-memory database)."""
    path = str(store.path)
    return f":memory:{id(store)}" if path == ":memory:" else str(Path(path).resolve())
