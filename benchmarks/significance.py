"""Benchmark the fusion gain with its uncertainty: is fusion better than the best single signal?

Evaluates the models (training those without a finished run on the split) through the same
`evaluate` use case as the app and `python -m recsys evaluate`, then prints for NDCG@20 and
recall@20 every model's value with its 95% bootstrap interval over test users, and the gain of
the best fusion model over the best single-signal model (behaviour, photo or text alone) with
its paired-bootstrap interval and paired t-test p-value. Issue 12's target on Myntra with
simulated shoppers: a gain of at least 10% NDCG@20 whose interval's lower bound is above 0.
With `--folds K` the same comparison runs on K-fold cross-validation (mean ± std over folds).

Numbers, not assertions: they depend on the data, the split and the seeds. Writes JSON to
benchmarks/results/significance-<dataset>.json (or --out).

    python benchmarks/significance.py --db data/myntra.duckdb [--folds 5] [--models ...]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from recsys.core.progress import console_progress  # noqa: E402
from recsys.evaluation.summary import summarize  # noqa: E402
from recsys.models import display_name, get_spec  # noqa: E402
from recsys.store import Store  # noqa: E402
from recsys.usecases import evaluate  # noqa: E402

TARGET_GAIN = 0.10


def _fmt(row) -> str:
    ci = f"[{row['ci_low']:.4f}, {row['ci_high']:.4f}]" if row["ci_low"] == row["ci_low"] \
        else ""
    std = f" ± {row['std']:.4f}" if row.get("std") == row.get("std") and row.get("std") \
        else ""
    return f"{row['value']:.4f}{std} {ci}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="DuckDB file (default: $RECSYS_DB)")
    parser.add_argument("--dataset", help="dataset (default: the active one)")
    parser.add_argument("--models", nargs="+", help="models (default: all that apply)")
    parser.add_argument("--k", type=int, default=20, help="the cut-off compared (default 20)")
    parser.add_argument("--folds", type=int, help="K-fold cross-validation instead of one split")
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--out", help="JSON file (default: benchmarks/results/...)")
    args = parser.parse_args()
    store = Store(args.db)
    dataset = store.resolve_dataset(args.dataset)
    t0 = time.perf_counter()
    with console_progress("evaluate") as bar:
        frame = evaluate(store, dataset, args.models, sorted({10, args.k}),
                         split_seed=args.split_seed, progress=bar, folds=args.folds,
                         diversity=())
    seconds = time.perf_counter() - t0
    protocol = frame["protocol"].iloc[0]
    k = args.k
    all_ = frame[(frame["slice"] == "all") & (frame["k"] == k)]
    how = f"{protocol} cross-validation (mean ± std over folds)" if args.folds else \
        f"{protocol} split"
    w = 42 if args.folds else 32
    lines = [f"{dataset}: {how}, all items ranked, training items excluded; "
             f"95% bootstrap intervals over {int(all_['users'].max())} test users",
             f"{'model':<33}{'family':<14}{'NDCG@' + str(k):<{w}}{'recall@' + str(k):<{w}}"
             f"{'NDCG gain vs baseline':<32}{'p':>8}"]
    rows = []
    for model in frame["model"].unique():
        ndcg = all_[(all_["model"] == model) & (all_["metric"] == "ndcg")].iloc[0]
        recall = all_[(all_["model"] == model) & (all_["metric"] == "recall")].iloc[0]
        gain = "" if ndcg["gain"] != ndcg["gain"] else \
            f"{ndcg['gain']:+.1%} [{ndcg['gain_low']:+.1%}, {ndcg['gain_high']:+.1%}]"
        p = "" if ndcg["p_value"] != ndcg["p_value"] else f"{ndcg['p_value']:.2g}"
        lines.append(f"{display_name(model):<33}{get_spec(model).family:<14}{_fmt(ndcg):<{w}}"
                     f"{_fmt(recall):<{w}}{gain:<32}{p:>8}")
        rows.append({"model": model, "family": get_spec(model).family,
                     **{f"{m}@{k}": {c: (None if r[c] != r[c] else r[c]) for c in
                                     ("value", "ci_low", "ci_high", "std", "baseline", "gain",
                                      "gain_low", "gain_high", "p_value")}
                        for m, r in (("ndcg", ndcg), ("recall", recall))}})
    summary = summarize(frame, dataset, protocol, k)
    fusion = [r for r in rows if r["family"] == "fusion"]
    verdict = None
    if fusion:
        best = max(fusion, key=lambda r: r[f"ndcg@{k}"]["value"])
        n = best[f"ndcg@{k}"]
        if n["gain"] is not None:
            reached = n["gain"] >= TARGET_GAIN and (n["gain_low"] or 0) > 0
            verdict = {"model": best["model"], "baseline": n["baseline"], "gain": n["gain"],
                       "gain_low": n["gain_low"], "gain_high": n["gain_high"],
                       "p_value": n["p_value"], "target": TARGET_GAIN, "reached": reached}
            lines += ["", f"Fusion gain over the best single signal "
                          f"({display_name(n['baseline'])}), NDCG@{k}: "
                          f"{display_name(best['model'])} {n['gain']:+.1%} "
                          f"(95% CI {n['gain_low']:+.1%} to {n['gain_high']:+.1%}, "
                          f"p = {n['p_value']:.2g}); target >= {TARGET_GAIN:.0%} with the lower "
                          f"bound above 0: {'reached' if reached else 'NOT reached'}"]
    if summary is not None:
        lines += ["", summary.sentence]
    lines.append(f"({seconds:.0f} s on {platform.node()}, training included where needed)")
    print("\n".join(lines))
    out = Path(args.out) if args.out else \
        ROOT / "benchmarks" / "results" / f"significance-{dataset}" \
        f"{'-' + protocol if args.folds else ''}.json"
    out.write_text(json.dumps({"dataset": dataset, "protocol": protocol, "k": k,
                               "seconds": round(seconds, 1), "models": rows,
                               "fusion_gain": verdict,
                               "sentence": None if summary is None else summary.sentence,
                               "machine": {"platform": platform.platform(),
                                           "python": platform.python_version(),
                                           "note": "shared 2-core machine"}},
                              indent=2, default=float) + "\n")
    print(f"Saved to {out}")


if __name__ == "__main__":
    main()
