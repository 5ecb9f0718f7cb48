"""Our collaborative models next to the peer library (implicit ALS / BPR) on real Amazon users.

Amazon Baby and Clothing (5-core reviews, MMRec's own train/validation/test split, from
`../shared/datasets/amazon_mmrec`; interactions only). Each model runs in its own process, so
its peak resident memory (VmHWM, after the data is loaded) is its own: fit on train, then every
test user ranked against every item with their training items excluded (MMRec's protocol),
Recall@20 / NDCG@20 with a 95% bootstrap interval over users, and a paired comparison (gain
with its paired-bootstrap interval and the paired t-test p-value) of each model against the
first one listed (dense EASE by default, the exact model the sparse one approximates).

    python benchmarks/peers.py                       # Baby and Clothing, the default models
    python benchmarks/peers.py --datasets baby --models ease:mode=dense ease:mode=sparse als
    python benchmarks/peers.py --split valid ...     # the same on the validation split

A model is `NAME[:param=value,...]` (the registry's names and hyperparameters);
`tuned-NAME[:budget=SECONDS,trials=N,param=value...]` first tunes NAME on the validation split
(`recsys.recommend.tuning`, fixed params kept), then fits the chosen settings; among the tuned
models of a dataset the one with the best validation NDCG@20 is named the default, and its test
Recall@20 is printed (the model is never chosen on test). The machine load is printed with the
table: timings on a busy box are upper bounds.

    python benchmarks/peers.py --datasets baby clothing --models ease:mode=dense \
        tuned-ease:budget=600 tuned-als:budget=900 tuned-itemknn:budget=300
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from machine import machine_state, peak_rss_mb  # noqa: E402

AMAZON = ROOT.parent / "shared" / "datasets" / "amazon_mmrec"
DEFAULT_MODELS = ["ease:mode=dense", "ease", "ease:mode=sparse", "als",
                  "als:factors=256,alpha=10", "bpr-implicit", "itemknn"]
K = 20


def load_mmrec(name: str, root: Path = AMAZON):
    """An MMRec set as `InteractionData` with its own train / validation / test split."""
    from recsys.data.interactions import InteractionData

    folder = root / name
    triples = []                      # (user, item, split code)
    if (folder / "train.json").exists():
        for code, part in enumerate(("train", "val", "test")):
            for user, items in json.loads((folder / f"{part}.json").read_text()).items():
                triples += [(int(user), int(i), code) for i in items]
        arr = np.array(triples, dtype=np.int64)
    else:
        inter = next(folder.glob("*.inter"))
        arr = np.loadtxt(inter, dtype=np.int64, skiprows=1, usecols=(0, 1, 2), delimiter="\t")
    users, u = np.unique(arr[:, 0], return_inverse=True)
    items, i = np.unique(arr[:, 1], return_inverse=True)

    def part(code: int) -> sp.csr_matrix:
        sel = arr[:, 2] == code
        return sp.csr_matrix((np.ones(sel.sum(), np.float32), (u[sel], i[sel])),
                             shape=(len(users), len(items)))

    return InteractionData(f"amazon-{name}", "stored", users.astype(str).astype(object),
                           items.astype(str).astype(object), part(0), part(1), part(2))


def parse_model(spec: str) -> tuple[str, dict[str, str]]:
    name, _, rest = spec.partition(":")
    params = dict(kv.split("=", 1) for kv in rest.split(",") if kv)
    return name, params


def per_user(model, data, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Recall@K and NDCG@K of every user with held-out items, in user order."""
    from recsys.evaluation.metrics import mask_seen, ranking_metrics, top_k

    truth = data.test if split == "test" else data.valid
    users = np.flatnonzero(truth.getnnz(axis=1) > 0)
    recall, ndcg = [], []
    for start in range(0, len(users), 1024):
        batch = users[start:start + 1024]
        scores = mask_seen(model.score(batch).astype(np.float32, copy=True), data.train[batch])
        m = ranking_metrics(top_k(scores, K), truth[batch], (K,))
        recall.append(m[("recall", K)])
        ndcg.append(m[("ndcg", K)])
    return np.concatenate(recall), np.concatenate(ndcg)


def phase(dataset: str, spec: str, split: str, out: str) -> None:
    """One model in this process: fit, evaluate, write per-user values and a summary line."""
    import torch  # noqa: F401  (imported by every fit: in the baseline, not the model)

    from recsys.models import create_model

    data = load_mmrec(dataset)
    base = peak_rss_mb()
    name, params = parse_model(spec)
    tuning = {}
    if name.startswith("tuned-"):
        # tune on the validation split (recsys.recommend.tuning), then fit the chosen settings
        from recsys.recommend.tuning import tune_model

        name = name[len("tuned-"):]
        budget = float(params.pop("budget", 600))
        trials = int(params.pop("trials", 20))
        t0 = time.perf_counter()
        found = tune_model(data, name, params, trials=trials, budget_seconds=budget)
        params = found.best_params
        tuning = {"val_ndcg": round(found.best_value, 4), "trials": len(found.trials),
                  "tune_s": round(time.perf_counter() - t0, 1),
                  "chosen": {k: (round(v, 4) if isinstance(v, float) else v)
                             for k, v in params.items()}}
    model = create_model(name, **params)
    t0 = time.perf_counter()
    model.fit(data)
    fit_s = time.perf_counter() - t0
    recall, ndcg = per_user(model, data, split)
    np.savez(out, recall=recall, ndcg=ndcg)
    variant = getattr(model, "variant", "")
    print(json.dumps({"fit_s": round(fit_s, 1), "peak_gb": round(peak_rss_mb() / 1024, 2),
                      "data_gb": round(base / 1024, 2), "items": data.n_items,
                      "variant": variant, **tuning}), flush=True)


def run(dataset: str, models: list[str], split: str) -> list[dict]:
    from recsys.evaluation.stats import bootstrap_ci, paired_comparison

    rows, values = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for n, spec in enumerate(models):
            out = str(Path(tmp) / f"{n}.npz")
            proc = subprocess.run([sys.executable, __file__, "--phase", dataset, spec, split,
                                   out], capture_output=True, text=True)
            if proc.returncode:
                tail = " | ".join(proc.stderr.strip().splitlines()[-2:])
                print(f"{dataset} {spec}: failed: {tail}", flush=True)
                continue
            info = json.loads(proc.stdout.strip().splitlines()[-1])
            with np.load(out) as f:
                vals = np.column_stack([f["recall"], f["ndcg"]])
            low, high = bootstrap_ci(vals)
            row = {"dataset": dataset, "model": spec, **info, "users": len(vals),
                   "recall": float(vals[:, 0].mean()), "recall_ci": (low[0], high[0]),
                   "ndcg": float(vals[:, 1].mean()), "ndcg_ci": (low[1], high[1])}
            if values:
                cmp = paired_comparison(vals, values[0])
                row["vs_first"] = {"recall_gain": float(cmp.gain[0]),
                                   "recall_ci": (float(cmp.gain_low[0]),
                                                 float(cmp.gain_high[0])),
                                   "ndcg_gain": float(cmp.gain[1]),
                                   "ndcg_ci": (float(cmp.gain_low[1]), float(cmp.gain_high[1])),
                                   "p_recall": float(cmp.p_value[0]),
                                   "p_ndcg": float(cmp.p_value[1])}
            values.append(vals)
            rows.append(row)
            print(line(row, models[0]), flush=True)
    return rows


def line(row: dict, first: str) -> str:
    r, n = row["recall_ci"], row["ndcg_ci"]
    text = (f"| {row['dataset']} | {row['model']}{' (' + row['variant'] + ')' if row['variant'] else ''} "
            f"| {row['recall']:.4f} [{r[0]:.4f}, {r[1]:.4f}] "
            f"| {row['ndcg']:.4f} [{n[0]:.4f}, {n[1]:.4f}] | {row['fit_s']:.1f} s "
            f"| {row['peak_gb']:.2f} GB |")
    if "val_ndcg" in row:
        text += (f" tuned: val NDCG@20 {row['val_ndcg']:.4f}, {row['trials']} trials in "
                 f"{row['tune_s']:.0f} s, {row['chosen']} |")
    cmp = row.get("vs_first")
    if cmp:
        text += (f" {cmp['recall_gain']:+.1%} [{cmp['recall_ci'][0]:+.1%}, "
                 f"{cmp['recall_ci'][1]:+.1%}] p={cmp['p_recall']:.3g} / "
                 f"{cmp['ndcg_gain']:+.1%} [{cmp['ndcg_ci'][0]:+.1%}, "
                 f"{cmp['ndcg_ci'][1]:+.1%}] p={cmp['p_ndcg']:.3g} |")
    else:
        text += " (reference) |"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["baby", "clothing"])
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS)
    parser.add_argument("--split", choices=("test", "valid"), default="test")
    parser.add_argument("--out", help="write the rows as JSON here")
    parser.add_argument("--phase", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        phase(*args.phase)
        return
    if not AMAZON.exists():
        sys.exit(f"{AMAZON} is absent: these benchmarks need the MMRec Amazon sets.")
    print(json.dumps({"machine": machine_state()}), flush=True)
    print(f"| data | model | Recall@{K} [95% CI] | NDCG@{K} [95% CI] | fit | peak memory "
          f"| vs {args.models[0]}: Recall gain [paired CI] p / NDCG gain [paired CI] p |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for dataset in args.datasets:
        rows += run(dataset, args.models, args.split)
        tuned = [r for r in rows if r["dataset"] == dataset and "val_ndcg" in r]
        if tuned:
            pick = max(tuned, key=lambda r: r["val_ndcg"])
            print(f"{dataset}: the model chosen on validation is {pick['model']} (val NDCG@20 "
                  f"{pick['val_ndcg']:.4f}): test Recall@{K} {pick['recall']:.4f} "
                  f"[{pick['recall_ci'][0]:.4f}, {pick['recall_ci'][1]:.4f}]", flush=True)
    print(json.dumps({"machine_after": machine_state(sample_cpu=False)}), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
