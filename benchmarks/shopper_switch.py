"""Benchmark switching shopper on the User picks page: what one switch costs, server side.

Times, on a database that has shoppers and a trained model (`RECSYS_DB`, default
data/recsys.duckdb):

* the page's use cases for one shopper (`usecases.shopper` + `usecases.recommend_for` with the
  page's defaults), for the first shopper (the model, its data and the catalog's attribute
  codes are loaded: a server's first switch) and then for `--shoppers` others (a switch);
* the whole User picks script in Streamlit's AppTest: open the page, then choose other
  shoppers in the selectbox (each a rerun, as a click in the browser);
* `--profile`: the functions a warm switch spends its time in (cProfile, top 25).

    python benchmarks/shopper_switch.py --dataset demo --shoppers 10
    RECSYS_DB=path/to/other.duckdb python benchmarks/shopper_switch.py --profile

Numbers, not assertions: they depend on the machine and what else runs on it (the load is
printed).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def switch(store, dataset: str, user_id: str) -> None:
    """What the page runs for one shopper (its defaults: 12 picks, diversity default)."""
    from recsys import usecases

    usecases.recommend_for(store, dataset, user_id, None, 12, train_if_missing=False)
    usecases.shopper(store, dataset, user_id)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", help="dataset (default: the active one)")
    ap.add_argument("--shoppers", type=int, default=10, help="shoppers to switch to")
    ap.add_argument("--profile", action="store_true", help="profile the warm switches")
    ap.add_argument("--no-apptest", action="store_true", help="skip the AppTest part")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from recsys.core import config
    from recsys.store import Store

    db = config.db_path()
    out: dict = {"db": str(db), "load_average_at_start": list(os.getloadavg())}
    store = Store(db)
    dataset = store.resolve_dataset(args.dataset)
    users = store.users(dataset)
    ids = [str(u) for u in users.sort_values("n_interactions", ascending=False)["user_id"]]
    step = max(1, len(ids) // (args.shoppers + 1))
    chosen = ids[::step][: args.shoppers + 1]
    out.update(dataset=dataset, shoppers_in_dataset=len(ids), items=store.item_count(dataset))
    t = time.perf_counter()
    switch(store, dataset, chosen[0])
    out["first_shopper_s"] = time.perf_counter() - t
    times = []
    profiler = cProfile.Profile() if args.profile else None
    for user in chosen[1:]:
        t = time.perf_counter()
        if profiler:
            profiler.enable()
        switch(store, dataset, user)
        if profiler:
            profiler.disable()
        times.append(time.perf_counter() - t)
    out["switch_s"] = times
    print(f"{dataset}: {len(ids):,} shoppers, {out['items']:,} products")
    print(f"use cases, first shopper (loads the model and its data): "
          f"{out['first_shopper_s'] * 1000:.0f} ms")
    print(f"use cases, switch to another shopper: median {statistics.median(times) * 1000:.0f} "
          f"ms (min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}, {len(times)} shoppers)")
    if profiler:
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(25)
        print(text.getvalue())
    store.close()
    if not args.no_apptest:       # the page lists the first 2,000 shoppers by id
        listed = sorted(ids)[:2000]
        apptest(db, dataset, listed[:: max(1, len(listed) // (args.shoppers + 1))]
                [: args.shoppers + 1], out)
    out["load_average_1_5_15_min"] = list(os.getloadavg())
    print(f"machine: {os.cpu_count()} CPUs, load average {out['load_average_1_5_15_min']}")
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / f"shopper-switch-{dataset}.json").write_text(json.dumps(out, indent=2))


def apptest(db: Path, dataset: str, chosen: list[str], out: dict) -> None:
    """The User picks page's script in AppTest: opened, then each shopper chosen in turn."""
    from streamlit.testing.v1 import AppTest

    os.environ["RECSYS_DB"] = str(db)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    at.run()
    t = time.perf_counter()
    at.switch_page("app_pages/user_picks.py")
    at.run()
    out["page_open_s"] = time.perf_counter() - t
    times = []
    for user in chosen[1:]:
        t = time.perf_counter()
        at.selectbox(key="up_user").set_value(user).run()
        times.append(time.perf_counter() - t)
    errors = [str(e.value) for e in at.exception]
    out["page_switch_s"] = times
    if times:
        print(f"User picks script (AppTest, server side): open {out['page_open_s']:.2f} s; "
              f"shopper switch median {statistics.median(times) * 1000:.0f} ms "
              f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f})"
              + (f"; errors: {errors}" if errors else ""))


if __name__ == "__main__":
    main()
