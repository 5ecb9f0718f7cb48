"""How many torch threads to use, decided per request, and a context manager that sets them.

On a shared CPU several OpenMP workers spin-wait on busy cores, and one thread is several times
faster (measured on 2 busy cores: 64 vs 33 photos/s encoding, 24 vs 250 ms per BPR batch; one
uploaded photo 26-43 ms with one thread against 300 ms median and up to 1.2 s with two while
one other process competed); on idle cores every core helps a batch (104 vs 65 photos/s).

So the count follows the work and the load *now* (not the load when the process started):

- a single photo or a few texts (a search query) always runs on one thread: that costs ~2 ms
  on an idle machine and saves hundreds under load, so one photo stays well under 100 ms
  whatever else runs;
- a batch gets the cores that are idle at this moment (the 1-minute load average, read at each
  call), unless an environment setting fixes the count.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from functools import lru_cache
from typing import Iterator

SMALL_REQUEST = 8      # at most this many items: one thread (latency first)


def idle_cores_now() -> int:
    """Cores to use for a batch, judged from the current 1-minute load average: all of them
    when at most half are busy, else the idle ones (at least one)."""
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):       # not on every platform
        return cores
    if load <= cores / 2:
        return cores
    return max(1, int(cores - load + 0.5))


@lru_cache(maxsize=1)
def idle_cores() -> int:
    """`idle_cores_now()` judged once per process (for long jobs that set threads once)."""
    return idle_cores_now()


def thread_count(env: str, default: int | None = None) -> int:
    """`$env` if set, else `default`, else the idle cores (judged once per process)."""
    raw = os.environ.get(env, "")
    try:
        return max(1, int(raw)) if raw.strip() else (default or idle_cores())
    except ValueError:
        return default or idle_cores()


def threads_for(n_items: int, env: str | None = None) -> int:
    """Torch threads for one request of `n_items` photos or texts (see the module docstring):
    1 for a small request; for a batch `$env` if set, else the cores idle right now."""
    if n_items <= SMALL_REQUEST:
        return 1
    raw = os.environ.get(env, "") if env else ""
    if raw.strip():
        try:
            return max(1, int(raw))
        except ValueError:
            pass
    return idle_cores_now()


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block with `n` intra-op torch threads, then restore the previous setting."""
    import torch

    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(max(1, n))
    try:
        yield
    finally:
        if n != before:
            torch.set_num_threads(before)
