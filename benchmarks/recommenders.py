"""Benchmark the recommenders: training time, top-K latency and evaluation time.

Prints a table and writes JSON to benchmarks/results/recommenders-<dataset>.json. Numbers, not
assertions; they depend on the machine and on what else runs on it.

    RECSYS_DB=path/to/recsys.duckdb python benchmarks/recommenders.py --dataset myntra
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from recsys.core.progress import console_progress  # noqa: E402
from recsys.evaluation.benchmark import format_table  # noqa: E402
from recsys.store import Store  # noqa: E402
from recsys.usecases import bench  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="DuckDB file (default: $RECSYS_DB)")
    parser.add_argument("--dataset", help="dataset (default: the active one)")
    parser.add_argument("--models", nargs="+", help="models (default: all that apply)")
    parser.add_argument("--users", type=int, default=200, help="users timed for latency")
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--out", help="JSON file (default: benchmarks/results/...)")
    args = parser.parse_args()
    store = Store(args.db, read_only=True)
    dataset = store.resolve_dataset(args.dataset)
    out = Path(args.out) if args.out else \
        ROOT / "benchmarks" / "results" / f"recommenders-{dataset}.json"
    with console_progress("benchmark") as bar:
        result = bench(store, dataset, args.models, args.users, args.k, out=out, progress=bar)
    print(format_table(result))
    print(f"Saved to {result['saved_to']}")


if __name__ == "__main__":
    main()
