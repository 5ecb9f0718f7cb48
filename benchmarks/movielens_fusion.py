"""Real users with item text: does fusion beat the best tuned collaborative model on MovieLens?

MovieLens-100k (943 real users; `python ../shared/datasets/get_movielens100k.py DIR`, never
committed), ratings >= 4 as positives, item text = title + "Genres: ..." through the project's
pretrained text tower (all-MiniLM-L6-v2, offline). Random 8:1:1 split per user (seed 0), every
item ranked, training items excluded.

Every model is first tuned on the validation split (`recsys.usecases.tune`: optuna TPE, the
defaults as the first trial, bounded by trials and a time budget; the test split is never
read): the collaborative models (EASE, item k-NN and the peer library's ALS and BPR) and the
fusion models listed in `--fusion`. The best collaborative model and the best fusion model are
each chosen by their validation NDCG@20, then every tuned run is evaluated once on test
(`recsys.usecases.evaluate`): NDCG@10, NDCG@20 with its 95% bootstrap interval over users,
Recall@20, and each model's paired comparison with the best tuned CF model (relative gain,
paired-bootstrap 95% interval, paired t-test p).

    python benchmarks/movielens_fusion.py --movielens DIR
    python benchmarks/movielens_fusion.py --movielens DIR --budget 120 --trials 15 \
        --fusion late-fusion attention-fusion

The database is kept under the worktree's ignored `data/bench/` folder. Timings on a busy box
are upper bounds; the machine load is printed with the table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from machine import machine_state
from new_items import DATASET, open_movielens

CF_MODELS = ("ease", "itemknn", "als", "bpr-implicit")
FUSION_MODELS = ("late-fusion",)


def tune_all(store, models, trials: int, budget: float, reuse: bool = False
             ) -> dict[str, dict]:
    from recsys import usecases

    out = {}
    known = {r["model"]: r for r in usecases.tuned_runs(store, DATASET)
             if r["protocol"] == "random" and r["split_seed"] == 0} if reuse else {}
    for name in models:
        if name in known:              # --reuse: the newest tuned run of this split
            run = known[name]
            out[name] = {"val_ndcg20": run["val_ndcg"], "params": run["params"],
                         "trials": "reused", "stopped": "reused", "seconds": None,
                         "run_id": run["run_id"]}
            print(f"reused the tuned {name} (run {run['run_id']}): val NDCG@20 "
                  f"{run['val_ndcg']:.4f} with {run['params']}", flush=True)
            continue
        t0 = time.perf_counter()
        result = usecases.tune(store, DATASET, name, trials=trials, budget_seconds=budget,
                               protocol="random", split_seed=0)
        found = result.tuning
        out[name] = {"val_ndcg20": float(found.best_value), "params": found.best_params,
                     "trials": len(found.trials), "stopped": found.stopped_by,
                     "seconds": round(time.perf_counter() - t0, 1),
                     "run_id": result.run.run_id}
        print(f"tuned {name}: val NDCG@20 {found.best_value:.4f} with {found.best_params} "
              f"({len(found.trials)} trials, {found.stopped_by}; {out[name]['seconds']:.0f} s)",
              flush=True)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--movielens", type=Path,
                        default=Path(os.environ.get("RECSYS_MOVIELENS100K",
                                                    "/work/datasets-extra/movielens100k")))
    parser.add_argument("--db", type=Path,
                        default=ROOT / "data" / "bench" / "movielens-random.duckdb")
    parser.add_argument("--cf", nargs="+", default=list(CF_MODELS))
    parser.add_argument("--fusion", nargs="+", default=list(FUSION_MODELS))
    parser.add_argument("--trials", type=int, default=15)
    parser.add_argument("--budget", type=float, default=120.0, help="seconds per model")
    parser.add_argument("--reuse", action="store_true",
                        help="re-use a model's newest tuned run of this split instead of "
                             "tuning it again")
    parser.add_argument("--out", type=Path, help="write the table and machine state as JSON")
    args = parser.parse_args(argv)
    before = machine_state()
    store = open_movielens(args.movielens, args.db)
    if store is None:
        return 2
    from recsys import usecases
    from recsys.models import get_spec

    try:
        tuned = tune_all(store, [*args.cf, *args.fusion], args.trials, args.budget,
                         args.reuse)
        best_cf = max(args.cf, key=lambda m: tuned[m]["val_ndcg20"])
        best_fusion = max(args.fusion, key=lambda m: tuned[m]["val_ndcg20"])
        frame = usecases.evaluate(store, DATASET, [*args.cf, *args.fusion], ks=(10, 20),
                                  protocol="random", split_seed=0, baseline=best_cf,
                                  diversity=())
    finally:
        store.close()
    after = machine_state(sample_cpu=False)
    sel = frame[frame["slice"] == "all"]

    def row(model, metric, k):
        r = sel[(sel["model"] == model) & (sel["metric"] == metric) & (sel["k"] == k)]
        return r.iloc[0]

    print(f"\nMovieLens-100k, random split (seed 0), ratings >= 4 as positives, item text = "
          f"title + genres (all-MiniLM-L6-v2); every model tuned on validation ({args.trials} "
          f"trials or {args.budget:.0f} s each); best CF chosen on validation: {best_cf}; best "
          f"fusion chosen on validation: {best_fusion}\n")
    print("| model | chosen on validation | val NDCG@20 | test NDCG@10 | test NDCG@20 [95% CI] "
          f"| Recall@20 | NDCG@20 vs {best_cf} (paired 95% CI, p) |")
    print("|---|---|---:|---:|---|---:|---|")
    table = []
    for m in [*args.cf, *args.fusion]:
        n10, n20, r20 = row(m, "ndcg", 10), row(m, "ndcg", 20), row(m, "recall", 20)
        gain = "(baseline)" if m == best_cf else \
            f"{n20['gain']:+.1%} [{n20['gain_low']:+.1%}, {n20['gain_high']:+.1%}] " \
            f"p={n20['p_value']:.2g}"
        params = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                           for k, v in tuned[m]["params"].items()) or "defaults"
        trials = tuned[m]["trials"]
        print(f"| {get_spec(m).name} | {params} ({trials}{'' if trials == 'reused' else ' trials'}) | "
              f"{tuned[m]['val_ndcg20']:.4f} | {n10['value']:.4f} | {n20['value']:.4f} "
              f"[{n20['ci_low']:.4f}, {n20['ci_high']:.4f}] | {r20['value']:.4f} | {gain} |")
        table.append({"model": m, **tuned[m], "ndcg10": float(n10["value"]),
                      "ndcg20": float(n20["value"]), "ndcg20_low": float(n20["ci_low"]),
                      "ndcg20_high": float(n20["ci_high"]), "recall20": float(r20["value"]),
                      "gain": None if m == best_cf else float(n20["gain"]),
                      "gain_low": None if m == best_cf else float(n20["gain_low"]),
                      "gain_high": None if m == best_cf else float(n20["gain_high"]),
                      "p_value": None if m == best_cf else float(n20["p_value"])})
    fusion_row = next(t for t in table if t["model"] == best_fusion)
    within = fusion_row["gain_high"] >= 0
    print(f"\ntarget: best fusion ({best_fusion}) >= best tuned CF ({best_cf}) within its CI: "
          f"{'met' if within else 'NOT met'} (NDCG@20 gain {fusion_row['gain']:+.1%} "
          f"[{fusion_row['gain_low']:+.1%}, {fusion_row['gain_high']:+.1%}])")
    print(f"machine: {before['cpu']} x{before['cores']}; load (1 min) {before['load_1min']} "
          f"before, {after['load_1min']} after; {before['memory_available_gb']} GB available")
    if args.out:
        args.out.write_text(json.dumps({"rows": table, "best_cf": best_cf,
                                        "best_fusion": best_fusion,
                                        "machine": {"before": before, "after": after}},
                                       indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
