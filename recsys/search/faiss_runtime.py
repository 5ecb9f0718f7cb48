"""faiss as the search index runs it: one OpenMP thread per query, more for a build, and a
boolean mask as a faiss id selector.

A single query is memory-bound: on 2 busy cores, 2 threads made a 10k-item search 25 ms instead
of 2 ms, so faiss is set to one thread on first use; builds (k-means, adding rows) raise the
count inside `faiss_threads(build_threads())`.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np

CHUNK = 65_536
"""Rows handed to faiss (added, or read back) at a time: a bounded temporary copy."""

_QUERY_THREADS_SET = False


def load_faiss():
    """The faiss module, set to one OpenMP thread for queries on first use."""
    global _QUERY_THREADS_SET
    import faiss

    if not _QUERY_THREADS_SET:
        faiss.omp_set_num_threads(1)
        _QUERY_THREADS_SET = True
    return faiss


@contextmanager
def faiss_threads(n: int) -> Iterator[None]:
    """Run faiss (OpenMP) with `n` threads in a block, then restore the previous setting."""
    faiss = load_faiss()
    before = faiss.omp_get_max_threads()
    if n != before:
        faiss.omp_set_num_threads(max(1, n))
    try:
        yield
    finally:
        if n != before:
            faiss.omp_set_num_threads(before)


def build_threads() -> int:
    """Threads for building (k-means, adding): $RECSYS_INDEX_THREADS, else the idle cores."""
    from recsys.core.threads import thread_count

    return thread_count("RECSYS_INDEX_THREADS")


def mask_selector(mask: np.ndarray):
    """A faiss ``IDSelectorBitmap`` keeping the ids whose entry of the boolean `mask` is set
    (ids are positions in the mask); the search then reads only those rows."""
    faiss = load_faiss()
    bits = np.packbits(mask, bitorder="little")
    selector = faiss.IDSelectorBitmap(len(mask), faiss.swig_ptr(bits))
    selector._bits = bits                 # keep the buffer alive as long as the selector
    return selector
