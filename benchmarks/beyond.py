"""Numbers of the features beyond ranked lists (issue 13), on one database (Myntra by default).

    python benchmarks/beyond.py --db data/myntra.duckdb [--only search coldstart purity map ab]

Prints each measurement and writes them all to benchmarks/results/beyond-<dataset>.json:

* search:    personalised search NDCG@20 from query only to taste only (article-type queries
             and "gender colour type" queries), `usecases.evaluate_personal_search`;
* coldstart: new shoppers (held-out users, models fitted without them) at 1/3/5 liked
             products, `usecases.evaluate_cold_start`;
* purity:    k-means purity / NMI against article type for photo, text and fused vectors,
             `usecases.cluster_purity`;
* map:       UMAP vs t-SNE on the fused vectors, timed side by side in fresh subprocesses
             (UMAP's numba compilation included, as a first map in the app pays it);
* ab:        simulated A/B tests of model pairs with the offline NDCG next to them,
             `usecases.ab_test`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SECTIONS = ("search", "coldstart", "purity", "map", "ab")
AB_PAIRS = (("popularity", "late-fusion"), ("ease", "late-fusion"),
            ("late-fusion", "attention-fusion"), ("content", "ease"))

MAP_SCRIPT = """
import json, sys, time
t0 = time.perf_counter()
from recsys.store import Store
from recsys.vectors.loading import load_item_vectors
from recsys.explore.projection import item_matrix, project
store = Store(sys.argv[1], read_only=True)
vec = load_item_vectors(store, sys.argv[2])
x = item_matrix(vec.image, vec.text, "fused")
t1 = time.perf_counter()
coords = project(x, sys.argv[3], 0)
print(json.dumps({"method": sys.argv[3], "items": len(x), "seconds": time.perf_counter() - t1,
                  "with_imports": time.perf_counter() - t0}))
"""


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", default="data/myntra.duckdb")
    parser.add_argument("--dataset", default=None)
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--users", type=int, default=300, help="cold-start held-out users")
    args = parser.parse_args()

    from recsys import usecases
    from recsys.store import Store

    store = Store(args.db)
    dataset = store.resolve_dataset(args.dataset)
    out_path = ROOT / "benchmarks" / "results" / f"beyond-{dataset}.json"
    results = json.loads(out_path.read_text()) if out_path.exists() else {}
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "load_average_at_start": load_average()}

    def save() -> None:
        out_path.write_text(json.dumps(results, indent=2, default=str) + "\n")

    if "search" in args.only:
        results["search"] = {}
        for source in ("type", "words"):
            t0 = time.perf_counter()
            r = usecases.evaluate_personal_search(
                store, dataset, query_from=source,
                tastes=(0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.75, 1.0))
            r["seconds"] = time.perf_counter() - t0
            results["search"][source] = r
            print(f"personalised search ({source} queries, {r['cases']} cases, "
                  f"{r['model']}):")
            for name, value in r["ndcg"].items():
                print(f"  {name:<28}{value:.4f}")
        save()

    if "coldstart" in args.only:
        t0 = time.perf_counter()
        frame = usecases.evaluate_cold_start(store, dataset, users=args.users)
        results["coldstart"] = {"seconds": time.perf_counter() - t0,
                                "rows": frame.to_dict("records")}
        table = frame.pivot_table(index="model", columns=["metric", "history"],
                                  values="value")
        print("new shoppers:\n" + table.round(4).to_string())
        save()

    if "purity" in args.only:
        t0 = time.perf_counter()
        frame = usecases.cluster_purity(store, dataset)
        weights = []
        for w in (0.3, 0.5, 0.6, 0.7, 0.8, 0.9):
            fused = usecases.cluster_purity(store, dataset, [20], image_weight=w)
            weights.append({"image_weight": w, **fused[fused["vectors"] == "fused"]
                            .iloc[0].to_dict()})
        results["purity"] = {"seconds": time.perf_counter() - t0,
                             "rows": frame.to_dict("records"), "fused_weights": weights}
        print("cluster purity:\n" + frame.round(4).to_string(index=False))
        print("fused, k=20, by photo weight:\n" + pd.DataFrame(weights).round(4)
              .to_string(index=False))
        save()

    if "map" in args.only:
        store.close()
        results["map"] = {"load_average": load_average(), "runs": []}
        for method in ("umap", "tsne"):
            proc = subprocess.run([sys.executable, "-c", MAP_SCRIPT, args.db, dataset, method],
                                  capture_output=True, text=True, cwd=ROOT,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)})
            line = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "{}"
            run = json.loads(line) if proc.returncode == 0 else {"method": method,
                                                                 "error": proc.stderr[-500:]}
            results["map"]["runs"].append(run)
            print("map:", run)
        results["map"]["load_average_end"] = load_average()
        save()
        store = Store(args.db)

    if "ab" in args.only:
        results["ab"] = []
        for a, b in AB_PAIRS:
            for visits in (1, 5):
                t0 = time.perf_counter()
                r = usecases.ab_test(store, dataset, a, b, k=10, visits=visits)
                row = r.to_dict()
                row["seconds"] = time.perf_counter() - t0
                results["ab"].append(row)
                c = r.comparisons["click"]
                print(f"A/B {a} vs {b}, {visits} visit(s): CTR {c.a.rate:.4f} vs {c.b.rate:.4f} "
                      f"lift {c.lift:+.3f} [{c.lift_low:+.3f}, {c.lift_high:+.3f}] "
                      f"p={c.p_value:.4f} need/arm={c.needed_per_arm} true lift "
                      f"{c.expected_lift:+.3f}; NDCG@10 {r.offline['A']:.4f} vs "
                      f"{r.offline['B']:.4f}; {r.verdict.summary}")
        save()
    results["machine"]["load_average_at_end"] = load_average()
    save()
    print(f"saved to {out_path}")


if __name__ == "__main__":
    main()
