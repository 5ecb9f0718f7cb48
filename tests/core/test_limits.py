"""Unbounded sizes (issue 19, item 7): a billion results, visits, shoppers, clusters or epochs
asked through the command line, the use cases the pages call, and the pages themselves.

Result sizes are lowered to what there is (the catalog) or to their documented maximum, with a
note; work sizes beyond their maximum are refused with a message that says the range; seeds
outside numpy's range are refused instead of a `ValueError` traceback. Before the fix
`search --k 1000000000` and `abtest --visits 1000000000` died allocating 3.7 / 7.5 GB,
`abtest --k 1000000000` and `bench --k ...` peaked at 2.6-2.7 GB, `evaluate --k ...` asked
for 3.7 TB and `simulate --users 1000000000` ran until killed.
"""

from __future__ import annotations

import math

import pytest

from recsys.core import limits
from recsys.core.limits import LimitError


# -- the rules ------------------------------------------------------------------------------------
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
