"""Benchmark collaborative filtering against catalog size: EASE dense vs sparse, time and memory.

Synthetic catalogs as many users as items (1k ... 100k): items belong to taste clusters of ~50
and have a log-normal popularity; each user follows 1-3 clusters and has 5 + Poisson(10)
interactions, 80% inside their clusters, 20% anywhere (both by popularity); per-user random
8:1:1 split. Each (size, variant) runs in its own process, so its peak resident memory
(ru_maxrss) is its own: fit, full evaluation (every test user ranked against every item, in
batches of 512 users) and a single user's top-20 (the "serve picks" latency).

`--e2e N` also writes an N-item, N-user catalog into a DuckDB file and runs the project's own
path on it: the `train` (EASE, auto mode) and `evaluate` use cases and `load_model(...).recommend`.
`--clothing` runs the same path on Amazon Clothing (imported with `python -m recsys
import-interactions --format mmrec`), reporting Recall@20 and peak memory.

`--compare DB:DATASET ...` instead compares EASE variants (dense, sparse with support 128 and
256) on real data: Recall@20 and fit time (benchmarks/results/cf-variants.json).

Writes benchmarks/results/cf-scale.json and the log-log chart docs/scale-cf.png.

    python benchmarks/cf_scale.py --sizes 1000 3000 10000 30000 100000 --e2e 100000 \\
        --clothing data/clothing.duckdb
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from machine import peak_rss_mb  # noqa: E402

from recsys.data.interactions import InteractionData, assign_split  # noqa: E402

DENSE_LIMIT = 12_000        # dense EASE is timed up to here (O(n^3): ~1 min at 12k, 2 cores)


def synthetic_pairs(n_items: int, n_users: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    clusters = max(1, n_items // 50)
    item_cluster = rng.integers(0, clusters, n_items)
    pop = np.exp(rng.normal(0, 1.0, n_items))
    members = [np.flatnonzero(item_cluster == c) for c in range(clusters)]
    cum = np.cumsum(pop / pop.sum())
    rows_u, rows_i = [], []
    for u in range(n_users):
        n = 5 + rng.poisson(10)
        own = rng.choice(clusters, rng.integers(1, 4), replace=False)
        pool = np.concatenate([members[c] for c in own])
        k_in = min(len(pool), int(round(0.8 * n)))
        if len(pool):
            w = pop[pool] / pop[pool].sum()
            rows_i.append(rng.choice(pool, k_in, replace=False, p=w))
        else:
            k_in = 0
        rows_i.append(np.minimum(np.searchsorted(cum, rng.random(n - k_in)), n_items - 1))
        rows_u.append(np.full(len(rows_i[-1]) + (k_in if len(pool) else 0), u))
    pairs = pd.DataFrame({"user_id": np.concatenate(rows_u), "item_id": np.concatenate(rows_i)})
    pairs = pairs.drop_duplicates().sort_values(["user_id", "item_id"]).reset_index(drop=True)
    pairs["user_id"] = pairs["user_id"].map(lambda u: f"u{u:06d}")
    pairs["item_id"] = pairs["item_id"].map(lambda i: f"i{i:06d}")
    return pairs


def interaction_data(pairs: pd.DataFrame, n_items: int) -> InteractionData:
    pairs = pairs.assign(ts=pd.NaT, split_code=np.nan)
    codes = assign_split(pairs, "random", 0)
    users = np.array(sorted(pairs["user_id"].unique()), dtype=object)
    items = np.array([f"i{i:06d}" for i in range(n_items)], dtype=object)
    r = pd.Index(users).get_indexer(pairs["user_id"])
    c = pd.Index(items).get_indexer(pairs["item_id"])

    def mat(code):
        sel = codes == code
        return sp.csr_matrix((np.ones(sel.sum(), np.float32), (r[sel], c[sel])),
                             shape=(len(users), len(items)))

    return InteractionData("synthetic", "random", users, items, mat(0), mat(1), mat(2))


# -- one measured run in its own process ---------------------------------------------------------
def phase_synthetic(n: int, variant: str) -> dict:
    import torch  # noqa: F401  (imported by every fit: counted in the baseline, not the model)

    from recsys.evaluation.ranking import evaluate_model
    from recsys.models import create_model

    data = interaction_data(synthetic_pairs(n, n), n)
    base = peak_rss_mb()
    params = {"mode": variant} if variant in ("dense", "sparse") else {}
    if variant.startswith("sparse-"):
        params = {"mode": "sparse", "support": int(variant.split("-")[1])}
    name = "itemknn" if variant == "itemknn" else "ease"
    model = create_model(name, **params)
    t0 = time.perf_counter()
    model.fit(data)
    fit_s = time.perf_counter() - t0
    fit_peak = peak_rss_mb()
    t0 = time.perf_counter()
    frame = evaluate_model(model, data, ks=(20,))
    eval_s = time.perf_counter() - t0
    all_ = frame[frame.slice == "all"].set_index(["metric", "k"])["value"]
    user = str(data.user_ids[0])
    model.recommend(user, 20)
    t0 = time.perf_counter()
    for u in data.user_ids[:20]:
        model.recommend(str(u), 20)
    rec_ms = 1000 * (time.perf_counter() - t0) / 20
    return {"items": n, "users": n, "interactions": int(data.train.nnz + data.valid.nnz +
                                                        data.test.nnz),
            "variant": variant, "mode": getattr(model, "variant", name),
            "fit_s": round(fit_s, 2), "evaluate_s": round(eval_s, 2),
            "recommend_ms": round(rec_ms, 2), "recall@20": round(float(all_[("recall", 20)]), 4),
            "ndcg@20": round(float(all_[("ndcg", 20)]), 4),
            "rss_data_mb": round(base), "peak_fit_mb": round(fit_peak),
            "peak_mb": round(peak_rss_mb())}


def phase_store(db: str, dataset: str) -> dict:
    """The project's own path: the train and evaluate use cases, load_model().recommend."""
    import torch  # noqa: F401

    from recsys import usecases
    from recsys.recommend.training import load_model
    from recsys.store import Store

    store = Store(db)
    base = peak_rss_mb()
    t0 = time.perf_counter()
    run = usecases.train(store, dataset, "ease", keep_models=1).run
    train_s = time.perf_counter() - t0
    train_peak = peak_rss_mb()
    t0 = time.perf_counter()
    frame = usecases.evaluate(store, dataset, ["ease"], ks=(10, 20))
    eval_s = time.perf_counter() - t0
    all_ = frame[frame.slice == "all"].set_index(["metric", "k"])["value"]
    trained = load_model(store, dataset, "ease")
    user = str(trained.model.user_ids[0])
    t0 = time.perf_counter()
    picks = trained.model.recommend(user, 20)
    rec_ms = 1000 * (time.perf_counter() - t0)
    out = {"dataset": dataset, "items": int(trained.config["items"]),
           "users": int(trained.config["users"]), "mode": trained.model.variant,
           "train_s": round(train_s, 1), "evaluate_s": round(eval_s, 1),
           "recommend_ms": round(rec_ms, 1), "picks": len(picks),
           "recall@10": round(float(all_[("recall", 10)]), 4),
           "recall@20": round(float(all_[("recall", 20)]), 4),
           "ndcg@20": round(float(all_[("ndcg", 20)]), 4),
           "model_file_mb": round(Path(run.artifact_path).stat().st_size / 2**20, 1),
           "rss_after_imports_mb": round(base), "peak_train_mb": round(train_peak),
           "peak_mb": round(peak_rss_mb())}
    store.close()
    return out


def compare_on(db: str, dataset: str, specs: list[str]) -> list[dict]:
    """Recall@20 / NDCG@20 of EASE variants on a real dataset (its stored or random split)."""
    from recsys.data.interactions import load_data
    from recsys.evaluation.ranking import evaluate_model
    from recsys.models import create_model
    from recsys.store import Store

    store = Store(db, read_only=True)
    data = load_data(store, dataset)
    store.close()
    out = []
    for spec in specs:
        mode, _, support = spec.partition(":")
        params = {"mode": mode, **({"support": int(support)} if support else {})}
        model = create_model("ease", **params)
        t0 = time.perf_counter()
        model.fit(data)
        fit_s = time.perf_counter() - t0
        frame = evaluate_model(model, data, ks=(20,))
        all_ = frame[frame.slice == "all"].set_index(["metric", "k"])["value"]
        row = {"dataset": dataset, "items": data.n_items, "variant": spec,
               "fit_s": round(fit_s, 1), "recall@20": round(float(all_[("recall", 20)]), 4),
               "ndcg@20": round(float(all_[("ndcg", 20)]), 4)}
        print(json.dumps(row), flush=True)
        out.append(row)
    return out


def write_synthetic_store(db: Path, n: int) -> None:
    from recsys.store import Store

    for p in (db, Path(f"{db}.wal")):
        p.unlink(missing_ok=True)
    pairs = synthetic_pairs(n, n)
    store = Store(db)
    items = pd.DataFrame({"dataset": "synthetic", "item_id": [f"i{i:06d}" for i in range(n)]})
    users = pd.DataFrame({"dataset": "synthetic", "user_id": sorted(pairs["user_id"].unique())})
    inter = pairs.assign(dataset="synthetic", event="purchase", weight=1.0)
    with store.transaction() as cur:
        store.upsert_dataset(cur, "synthetic", "interactions")
        for table, frame in (("items", items), ("users", users), ("interactions", inter)):
            store.insert_frame(cur, table, frame)
    store.close()


def run_phase(args: list[str]) -> dict:
    cmd = [sys.executable, __file__, "--phase", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        tail = proc.stderr.strip().splitlines()[-3:]
        print("  failed:", " | ".join(tail), flush=True)
        return {"phase": args, "error": tail}
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    print(json.dumps(line), flush=True)
    return line


# -- chart ---------------------------------------------------------------------------------------
def chart(rows: list[dict], path: Path) -> str:
    """Log-log chart: fit + evaluate time, and the memory fit + evaluate add on top of the
    process with its data loaded (torch and the interaction matrices: 0.6-0.9 GB)."""
    ok = [r for r in rows if "error" not in r]
    frame = pd.DataFrame(ok)
    frame["seconds"] = frame["fit_s"] + frame["evaluate_s"]
    frame["added_mb"] = (frame["peak_mb"] - frame["rss_data_mb"]).clip(lower=1)
    colours = {"dense": "#d62728", "sparse": "#1f77b4", "sparse-256": "#2ca02c",
               "itemknn": "#9467bd"}
    try:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        fig = make_subplots(rows=1, cols=2, subplot_titles=(
            "fit + full evaluation time (s)", "memory added by fit + evaluation (MB)"))
        for variant, part in frame.groupby("variant"):
            part = part.sort_values("items")
            style = dict(color=colours.get(variant))
            fig.add_trace(go.Scatter(x=part["items"], y=part["seconds"], mode="lines+markers",
                                     name=f"EASE {variant}", line=style, marker=style), 1, 1)
            fig.add_trace(go.Scatter(x=part["items"], y=part["added_mb"], mode="lines+markers",
                                     name=f"EASE {variant}", line=style, marker=style,
                                     showlegend=False), 1, 2)
        fig.update_xaxes(type="log", title="items (= users)")
        fig.update_yaxes(type="log")
        fig.update_layout(width=1000, height=420, template="plotly_white",
                          title="EASE dense vs sparse against catalog size (2 busy cores)")
        fig.write_image(str(path))
        return "plotly+kaleido"
    except Exception as exc:                         # kaleido or its browser unavailable
        print(f"plotly export failed ({exc}); using matplotlib")
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
        for variant, part in frame.groupby("variant"):
            part = part.sort_values("items")
            axes[0].loglog(part["items"], part["seconds"], "o-", label=f"EASE {variant}",
                           color=colours.get(variant))
            axes[1].loglog(part["items"], part["added_mb"], "o-", color=colours.get(variant))
        axes[0].set_title("fit + full evaluation time (s)")
        axes[1].set_title("memory added by fit + evaluation (MB)")
        for ax in axes:
            ax.set_xlabel("items (= users)")
            ax.grid(True, which="both", alpha=0.3)
        axes[0].legend()
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        return "matplotlib"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+",
                        default=[1000, 3000, 10_000, 30_000, 100_000])
    parser.add_argument("--variants", nargs="+", default=["dense", "sparse", "sparse-256"])
    parser.add_argument("--e2e", type=int, default=0, metavar="N",
                        help="also run train/evaluate/recommend through DuckDB at N items")
    parser.add_argument("--e2e-db", default=str(ROOT / "data" / "bench_cf.duckdb"))
    parser.add_argument("--clothing", metavar="DB", help="DuckDB with the Clothing dataset")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cf-scale.json"))
    parser.add_argument("--chart", default=str(ROOT / "docs" / "scale-cf.png"))
    parser.add_argument("--compare", nargs="+", metavar="DB:DATASET",
                        help="only compare EASE variants (--compare-variants) on real data")
    parser.add_argument("--compare-variants", nargs="+", default=["dense", "sparse:128",
                                                                   "sparse:256"])
    parser.add_argument("--chart-only", action="store_true",
                        help="redraw the chart from the saved JSON")
    parser.add_argument("--phase", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.compare:
        rows = []
        for target in args.compare:
            db, _, dataset = target.rpartition(":")
            rows += compare_on(db, dataset, args.compare_variants)
        out = Path(args.out).with_name(Path(args.out).stem.replace("cf-scale", "cf-variants")
                                       + ".json")
        out.write_text(json.dumps(rows, indent=1) + "\n")
        print(f"Saved to {out}")
        return
    if args.chart_only:
        print(chart(json.loads(Path(args.out).read_text())["synthetic"], Path(args.chart)))
        return
    if args.phase:
        kind = args.phase[0]
        out = phase_synthetic(int(args.phase[1]), args.phase[2]) if kind == "synthetic" \
            else phase_store(args.phase[1], args.phase[2])
        print(json.dumps(out))
        return
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from machine import machine_state

    state = machine_state()
    print("machine:", json.dumps(state), flush=True)
    rows = []
    for n in args.sizes:
        for variant in args.variants:
            if variant == "dense" and n > DENSE_LIMIT:
                continue
            print(f"== {n:,} items, {variant} ==", flush=True)
            rows.append(run_phase(["synthetic", str(n), variant]))
    result: dict = {"machine": state, "synthetic": rows}
    if args.e2e:
        print(f"== end to end through DuckDB at {args.e2e:,} items and users ==", flush=True)
        t0 = time.perf_counter()
        write_synthetic_store(Path(args.e2e_db), args.e2e)
        print(f"  written in {time.perf_counter() - t0:.0f} s", flush=True)
        result["e2e"] = run_phase(["store", args.e2e_db, "synthetic"])
    if args.clothing:
        print("== Amazon Clothing through DuckDB ==", flush=True)
        result["clothing"] = run_phase(["store", args.clothing, "clothing"])
    result["machine_after"] = machine_state()
    result["chart"] = chart(rows, Path(args.chart))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"Saved to {args.out} and {args.chart}")


if __name__ == "__main__":
    main()
