"""EASE under a memory limit: which variant the planner picks and whether the fit finishes.

Synthetic interactions from `cf_scale.synthetic_pairs` (taste clusters, log-normal popularity);
EASE with the given hyperparameters; prints the memory budget the planner saw, its plan, the
fit time and the peak resident memory. Run it under a limit to see the budget follow it:

    ulimit -v 6000000
    python benchmarks/ease_under_limit.py --items 40000 --users 20000 \\
        -p memory_fraction=0.5 -p dense_max_items=50000

(issue 19: before the memory budget this planned dense from the machine's free RAM and died
with `_ArrayMemoryError: Unable to allocate 5.96 GiB`; now it plans sparse and finishes.)
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from cf_scale import interaction_data, synthetic_pairs  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=40_000)
    ap.add_argument("--users", type=int, default=20_000)
    ap.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE")
    args = ap.parse_args()

    from recsys.core.memory import memory_budget
    from recsys.models import create_model

    t0 = time.perf_counter()
    data = interaction_data(synthetic_pairs(args.items, args.users), args.items)
    print(f"data: {data.n_users:,} users x {data.n_items:,} items, {data.train.nnz:,} training "
          f"interactions ({time.perf_counter() - t0:.1f} s)")
    params = dict(p.split("=", 1) for p in args.param)
    model = create_model("ease", **params)
    print(f"budget: {memory_budget().describe()}")
    t0 = time.perf_counter()
    model.fit(data)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"plan: {model.plan.mode} ({model.plan.reason})")
    print(f"fit: {time.perf_counter() - t0:.1f} s, peak RSS {peak:,.0f} MB")


if __name__ == "__main__":
    main()
