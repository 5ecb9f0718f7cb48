"""What the fuzz tests share: the hypothesis settings (derandomized in the default run;
`RECSYS_FUZZ_SCALE=10` explores ten times more with fresh randomness) and the damage done to a
valid seed file (bytes flipped, a cut, an insertion)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

SCALE = float(os.environ.get("RECSYS_FUZZ_SCALE", "1"))
FUZZ = settings(deadline=None, derandomize=SCALE == 1, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


def examples(n: int) -> settings:
    """The shared settings with `n` examples (times `RECSYS_FUZZ_SCALE`)."""
    return settings(FUZZ, max_examples=max(1, int(n * SCALE)))


def flip_cut_insert(draw, data: bytearray, flips: int) -> bytes:
    """`data` with up to `flips` bytes changed, then maybe cut short, then maybe with up to 40
    bytes inserted somewhere (inside a `st.composite` strategy: `draw` is its draw)."""
    for _ in range(draw(st.integers(0, flips))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[:draw(st.integers(0, len(data)))]
    if draw(st.booleans()):
        at = draw(st.integers(0, len(data)))
        data[at:at] = draw(st.binary(max_size=40))
    return bytes(data)
