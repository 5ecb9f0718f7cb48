"""The size rules (`recsys.core.limits`): whole numbers in range, results lowered with a note,
work sizes and seeds refused with the range. Through the commands: tests/cli/test_limits.py;
through the use cases: tests/usecases/test_limits.py; the pages: tests/app/test_app.py."""

from __future__ import annotations

import math

import pytest

from recsys.core import limits
from recsys.core.limits import LimitError


def test_sizes_are_whole_numbers_in_range():
    assert limits.as_int(1e9, "k") == 1_000_000_000 and limits.as_int("12", "k") == 12
    for bad in (math.nan, math.inf, 2.5, True, "ten", None):
        with pytest.raises(LimitError, match="whole number"):
            limits.as_int(bad, "k")
    notes: list[str] = []
    assert limits.clamp(10**9, "k", 320, limits.MAX_RESULTS, "products", notes) == 320
    assert notes == ["k 1,000,000,000 was lowered to 320: there are 320 products."]
    assert limits.clamp(10**9, "k", 10**6, limits.MAX_RESULTS, notes=notes) == \
        limits.MAX_RESULTS and "the maximum is 10,000" in notes[-1]
    assert limits.clamp(7, "k", 320, notes=notes) == 7 and len(notes) == 2
    with pytest.raises(LimitError, match="at least 1"):
        limits.clamp(0, "k", 320)
    with pytest.raises(LimitError, match=r"visits must be between 1 and 1,000, got 1,000,000,000"):
        limits.check_range(10**9, "visits", 1, limits.MAX_VISITS)
    with pytest.raises(LimitError, match="between 0 and 4,294,967,295"):
        limits.check_seed(-1)
    with pytest.raises(LimitError, match="at most 50 values"):
        limits.check_list(range(51), "K")
