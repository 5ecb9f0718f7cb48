"""The first upload of a session does not pay what a process pays once (the decoding worker's
first photo, OpenCV's crop code, the encoder's first pass at that size, pandas' string
kernels): opening the search page (`prepare_search`) runs one made-up photo query through
every step, once per index."""

from __future__ import annotations

from recsys import usecases
from recsys.store import Store
from recsys.usecases import _cache
from recsys.usecases import search as search_module


def test_prepare_search_warms_the_whole_photo_path_once_per_index(ready_store: Store,
                                                                    monkeypatch):
    _cache.clear()
    seen = []
    original = search_module.search_similar

    def watched(*args, **kwargs):
        hits = original(*args, **kwargs)
        seen.append(hits)
        return hits

    monkeypatch.setattr(search_module, "search_similar", watched)
    usecases.prepare_search(ready_store, "demo")
    assert len(seen) == 1
    warm = seen[0]
    assert warm.exact_match is None                        # not a catalog photo...
    assert {"decode", "encode", "crop", "exact_match", "close_match", "join"} <= \
        set(warm.timings)                                  # ...so every step of an upload ran
    assert len(warm.results) == 10
    usecases.prepare_search(ready_store, "demo")           # every rerun of the page: no query
    assert len(seen) == 1
