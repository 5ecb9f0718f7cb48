"""Picks that cross a shopper's gender, before and after the segment rule (issue 24).

For the simulated shoppers who shop for themselves only (no partner, no children), the mean
number of their top-12 live picks (history left out, re-ranked for variety as on the User
picks page) made for another gender (unisex items never count): `before` = the model alone,
`after` = with the segment business rule that `recommend_for` applies by default. Target:
<= 1 of 12. Also the share of those shoppers' history events on another gender's items
(0 by the simulator's construction). Prints one line per model and the machine load.

    # the full demo (320 products, 600 shoppers) in a scratch database, set up as on a first
    # start (aligned encoder, vectors, the default model), plus EASE
    python benchmarks/gender_picks.py
    # an existing database (e.g. the Myntra sample loaded in the app)
    python benchmarks/gender_picks.py --db data/recsys.duckdb --dataset myntra --models ease
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from recsys import usecases  # noqa: E402
from recsys.store import Store  # noqa: E402
from recsys.usecases.segments import segment_crossing  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="an existing database (default: a scratch demo)")
    parser.add_argument("--dataset", default=None)
    parser.add_argument("--models", default="default,ease",
                        help="comma-separated model names; 'default' = the app's default")
    parser.add_argument("--k", type=int, default=12)
    args = parser.parse_args()
    scratch = None
    if args.db:
        store = Store(args.db)
    else:
        scratch = tempfile.mkdtemp(prefix="gender-picks-")
        store = Store(Path(scratch) / "recsys.duckdb")
        t = time.time()
        usecases.set_up(store)
        print(f"set up the demo in {time.time() - t:.0f} s")
    dataset = store.resolve_dataset(args.dataset)
    for name in args.models.split(","):
        model = None if name == "default" else name
        try:
            r = segment_crossing(store, dataset, model, args.k)
        except Exception as exc:      # not trained yet: train it, then measure
            print(f"({name}: {exc.__class__.__name__}; training it)")
            usecases.train(store, dataset, model or usecases.default_model(store, dataset))
            r = segment_crossing(store, dataset, model, args.k)
        print(f"{dataset} · {r['model']} (run {r['run_id']}) · {r['shoppers']} single-segment "
              f"shoppers: other-gender picks in top-{r['k']}: {r['before']:.2f} by the model "
              f"alone, {r['after']:.2f} with the segment rule; history events on another "
              f"gender: {r['history_share']:.1%}")
    print("load:", os.getloadavg())
    store.close()


if __name__ == "__main__":
    main()
