"""Fusion over any modalities: a catalog without photos, and Amazon Baby with imported features.

Prints test NDCG@10 / NDCG@20 / Recall@20 per model with 95% bootstrap intervals over users,
and paired differences (with their intervals) of each fusion model against the best
collaborative model and against its own CF part. Numbers, not assertions.

    # Myntra with its photos left out (titles and categories only) and its simulated shoppers:
    # the items and interactions are copied into a new dataset of a scratch database, whose
    # texts `embed` embeds with the pretrained text tower (the default without photos)
    python benchmarks/modalities.py text-only --db data/myntra.duckdb

    # Amazon Baby (real interactions) with features imported in MMRec's layout; the real
    # image_feat.npy / text_feat.npy are not available here, so random vectors stand in:
    # fusion must then do exactly as well as its CF part
    python benchmarks/modalities.py baby --amazon ../shared/datasets/amazon_mmrec/baby

    # explicit ratings: rating-mf (MAE, RMSE, NDCG) on synthetic ratings missing not at random
    python benchmarks/modalities.py ratings
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from recsys import usecases  # noqa: E402
from recsys.data.interactions import InteractionData, load_data  # noqa: E402
from recsys.evaluation.metrics import mask_seen, ranking_metrics, top_k  # noqa: E402
from recsys.models import create_model  # noqa: E402
from recsys.store import Store  # noqa: E402

CF_MODELS = ("itemknn", "userknn", "ease", "bpr", "lightgcn")
KS = (10, 20)
BATCH = 512


def per_user(model, data: InteractionData, users: np.ndarray) -> dict[tuple[str, int], np.ndarray]:
    """Per-user test metrics (ndcg, recall at KS) of a fitted model, training items excluded."""
    out: dict[tuple[str, int], list[np.ndarray]] = {}
    for start in range(0, len(users), BATCH):
        batch = users[start:start + BATCH]
        scores = mask_seen(model.score(batch).astype(np.float32, copy=True), data.train[batch])
        found = ranking_metrics(top_k(scores, max(KS)), data.test[batch], list(KS))
        for key in [("ndcg", 10), ("ndcg", 20), ("recall", 20)]:
            out.setdefault(key, []).append(found[key])
    return {k: np.concatenate(v) for k, v in out.items()}


def bootstrap(values: np.ndarray, n: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean and 95% percentile-bootstrap interval over users."""
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (n, len(values)))].mean(1)
    return float(values.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def fmt(ci: tuple[float, float, float]) -> str:
    return f"{ci[0]:.4f} [{ci[1]:.4f}, {ci[2]:.4f}]"


def run_models(data: InteractionData, names: list[str], params: dict[str, dict]) -> dict:
    users = np.flatnonzero(data.test.getnnz(axis=1) > 0)
    results = {}
    for name in names:
        t0 = time.perf_counter()
        model = create_model(name, **params.get(name, {})).fit(data)
        seconds = time.perf_counter() - t0
        results[name] = {"metrics": per_user(model, data, users), "seconds": seconds,
                         "fallback": bool(getattr(model, "cf_fallback", False)),
                         "modalities": list(getattr(model.config, "modalities", ()) or [])}
        m = results[name]["metrics"]
        print(f"  {name:<18} NDCG@10 {fmt(bootstrap(m[('ndcg', 10)]))}   fit {seconds:6.1f} s"
              + ("   (fell back to its CF part)" if results[name]["fallback"] else ""),
              flush=True)
    return results


def report(results: dict, fusions: list[str], cf_part: dict[str, str], title: str) -> dict:
    print(f"\n{title}")
    print(f"{'model':<18}{'NDCG@10 [95% CI]':>28}{'NDCG@20 [95% CI]':>28}"
          f"{'Recall@20 [95% CI]':>28}")
    out = {}
    for name, r in results.items():
        m = r["metrics"]
        row = {f"{metric}@{k}": bootstrap(m[(metric, k)]) for metric, k in
               [("ndcg", 10), ("ndcg", 20), ("recall", 20)]}
        out[name] = {**row, "seconds": r["seconds"], "cf_fallback": r["fallback"],
                     "modalities": r["modalities"]}
        print(f"{name:<18}{fmt(row['ndcg@10']):>28}{fmt(row['ndcg@20']):>28}"
              f"{fmt(row['recall@20']):>28}")
    cf = [n for n in results if n in CF_MODELS]
    if cf:
        best = max(cf, key=lambda n: results[n]["metrics"][("ndcg", 10)].mean())
        print(f"\nPaired differences in NDCG@10 (fusion minus reference, 95% bootstrap CI over "
              f"users); best CF model: {best}")
        for name in fusions:
            if name not in results:
                continue
            for ref in dict.fromkeys([best, cf_part.get(name)]):
                if ref is None or ref not in results:
                    continue
                diff = results[name]["metrics"][("ndcg", 10)] - results[ref]["metrics"][("ndcg", 10)]
                ci = bootstrap(diff)
                rel = ci[0] / max(results[ref]["metrics"][("ndcg", 10)].mean(), 1e-12)
                verdict = "worse beyond the CI" if ci[2] < 0 else (
                    "better beyond the CI" if ci[1] > 0 else "within the CI")
                print(f"  {name:<18} - {ref:<10} {ci[0]:+.4f} [{ci[1]:+.4f}, {ci[2]:+.4f}] "
                      f"({rel:+.1%}): {verdict}")
                out[name][f"minus_{ref}"] = ci
    return out


# -- text-only Myntra ---------------------------------------------------------------------------
def text_only(args: argparse.Namespace) -> dict:
    """Myntra's items without photos and its shoppers in a new dataset of a scratch database."""
    work = Path(args.work)
    dataset = "myntra-text"
    if args.fresh and work.exists():
        work.unlink()
    store = Store(work)
    if dataset not in store.dataset_names():
        src = Store(args.db, read_only=True)
        source = src.resolve_dataset(args.dataset)
        with tempfile.TemporaryDirectory() as tmp:
            items = src.items(source).drop(columns=["image_path", "content_hash", "extra"])
            items.to_csv(Path(tmp) / "items.csv", index=False)
            events = src.interactions(source)[["user_id", "item_id", "event", "ts", "weight"]]
            events.rename(columns={"ts": "timestamp"}).to_csv(Path(tmp) / "events.csv",
                                                              index=False)
            src.close()
            rep = usecases.import_catalog(store, Path(tmp) / "items.csv", dataset=dataset)
            print(rep.summary())
            rep = usecases.import_interactions(store, Path(tmp) / "events.csv", dataset=dataset)
            print(rep.summary())
    t0 = time.perf_counter()
    rep = usecases.embed(store, dataset)
    print(f"{rep.summary()} ({time.perf_counter() - t0:.0f} s)")
    data = load_data(store, dataset, "auto", args.split_seed)
    store.close()
    print(f"\n'{dataset}': {data.n_users:,} users, {data.n_items:,} items, modalities "
          f"{list(data.modalities)} from {data.sources}, {data.protocol} split "
          f"(seed {args.split_seed}), {int((data.test.getnnz(axis=1) > 0).sum()):,} test users")
    names = list(args.models or [*CF_MODELS, "content-text", "content-knn", "late-fusion",
                                 "attention-fusion"])
    results = run_models(data, names, {})
    fusions = [n for n in names if n.endswith("fusion")]
    return report(results, fusions, {"late-fusion": "ease", "attention-fusion": "ease",
                                     "early-fusion": "itemknn"},
                  "Text-only catalog (Myntra without photos, simulated shoppers), test split")


# -- Amazon Baby with features in the MMRec layout -------------------------------------------------
def baby(args: argparse.Namespace) -> dict:
    source = Path(args.amazon)
    work = Path(args.work)
    if work.exists():
        work.unlink()
    store = Store(work)
    rep = usecases.import_interactions(store, source, fmt="json", dataset="baby")
    print(rep.summary())
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        shutil.copy(source / "i_id_mapping.csv", folder / "i_id_mapping.csv")
        n_items = sum(1 for _ in open(source / "i_id_mapping.csv")) - 1
        for name, dim in (("image_feat", args.image_dim), ("text_feat", args.text_dim)):
            np.save(folder / f"{name}.npy",
                    rng.normal(size=(n_items, dim)).astype(np.float32))
        for modality in ("image", "text"):
            t0 = time.perf_counter()
            rep = usecases.import_features(store, folder / f"{modality}_feat.npy", modality,
                                           "baby")
            print(rep.summary().splitlines()[0], f"({time.perf_counter() - t0:.1f} s)")
    data = load_data(store, "baby")
    store.close()
    print(f"\n'baby': {data.n_users:,} users, {data.n_items:,} items, modalities "
          f"{[(m, data.vectors[m].shape[1]) for m in data.modalities]} (random: no signal), "
          f"{data.protocol} split")
    names = list(args.models or ["ease", "late-fusion"] + (["attention-fusion"]
                                                           if args.attention else []))
    results = run_models(data, names, {"attention-fusion": {"epochs": args.epochs}})
    return report(results, [n for n in names if n.endswith("fusion")],
                  {"late-fusion": "ease", "attention-fusion": "ease"},
                  "Amazon Baby, features imported in the MMRec layout (random vectors), "
                  "stored split")


# -- explicit ratings (synthetic) -----------------------------------------------------------------
def ratings(args: argparse.Namespace) -> dict:
    """Ratings from a known low-rank model, missing not at random (shoppers rate what they
    chose, and choose what they like): rating-mf's MAE / RMSE against the global and item
    means, and its ranking against EASE, for several `missing_weight` settings."""
    import scipy.sparse as sp

    from recsys.data.interactions import Ratings
    from recsys.models.ratings import rating_metrics

    rng = np.random.default_rng(args.seed)
    n_u, n_i, rank = args.users, args.items, 8
    p, q = rng.normal(size=(n_u, rank)) / rank ** 0.5, rng.normal(size=(n_i, rank))
    b_i = rng.normal(scale=0.5, size=n_i)
    affinity = p @ q.T + b_i
    users, items = [], []
    for u in range(n_u):
        w = np.exp(1.5 * affinity[u])
        users += [u] * args.per_user
        items += list(rng.choice(n_i, args.per_user, replace=False, p=w / w.sum()))
    users, items = np.array(users), np.array(items)
    stars = np.clip(np.rint(3.2 + 0.9 * affinity[users, items]
                            + rng.normal(scale=0.5, size=len(users))), 1, 5).astype(np.float32)
    split = np.zeros(len(users), np.int8)
    key = rng.random(len(users))
    split[key < 0.1], split[(key >= 0.1) & (key < 0.2)] = 2, 1
    mats = [sp.csr_matrix((np.ones((split == c).sum(), np.float32),
                           (users[split == c], items[split == c])), shape=(n_u, n_i))
            for c in range(3)]
    data = InteractionData("synthetic-ratings", "random",
                           np.array([f"u{u}" for u in range(n_u)], dtype=object),
                           np.array([f"i{i}" for i in range(n_i)], dtype=object), *mats,
                           ratings=Ratings(users, items, stars, split))
    train, test = split == 0, split == 2
    mean = stars[train].mean()
    item_mean = np.full(n_i, mean)
    sums = np.bincount(items[train], stars[train], n_i)
    counts = np.bincount(items[train], minlength=n_i)
    item_mean[counts > 0] = (sums[counts > 0] + 5 * mean) / (counts[counts > 0] + 5)
    err = {"global mean": stars[test] - mean, "item mean (shrunk)": stars[test]
           - item_mean[items[test]]}
    print(f"{n_u:,} users, {n_i:,} items, {len(stars):,} ratings (mean {stars.mean():.2f}), "
          f"{test.sum():,} test ratings")
    print(f"{'model':<34}{'MAE':>8}{'RMSE':>8}{'NDCG@10 [95% CI]':>28}")
    out = {}
    for name, e in err.items():
        out[name] = {"mae": float(np.abs(e).mean()), "rmse": float(np.sqrt((e ** 2).mean()))}
        print(f"{name:<34}{out[name]['mae']:>8.4f}{out[name]['rmse']:>8.4f}")
    test_users = np.flatnonzero(data.test.getnnz(axis=1) > 0)
    for label, name, params in [("ease (ranking only)", "ease", {})] + [
            (f"rating-mf missing_weight={w:g}", "rating-mf", {"missing_weight": w})
            for w in args.missing_weights]:
        model = create_model(name, **params).fit(data)
        found = rating_metrics(model, data)
        ndcg = bootstrap(per_user(model, data, test_users)[("ndcg", 10)])
        out[label] = {**found, "ndcg@10": ndcg}
        mae = f"{found['mae']:>8.4f}{found['rmse']:>8.4f}" if found else f"{'-':>8}{'-':>8}"
        print(f"{label:<34}{mae}{fmt(ndcg):>28}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("text-only", help="Myntra without photos")
    p.add_argument("--db", default="data/myntra.duckdb", help="database with Myntra and its "
                   "simulated shoppers (read only)")
    p.add_argument("--dataset", default="myntra")
    p.add_argument("--work", default="data/modalities-text.duckdb", help="scratch database")
    p.add_argument("--fresh", action="store_true", help="rebuild the scratch dataset")
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--models", nargs="+")
    p = sub.add_parser("baby", help="Amazon Baby with imported (random) features")
    p.add_argument("--amazon", default=str(ROOT.parent / "shared/datasets/amazon_mmrec/baby"))
    p.add_argument("--work", default="data/modalities-baby.duckdb", help="scratch database")
    p.add_argument("--image-dim", type=int, default=4096, help="as MMRec's VGG features")
    p.add_argument("--text-dim", type=int, default=384, help="as MMRec's sentence vectors")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--attention", action="store_true", help="also attention fusion (memory: "
                   "users x items x 3 floats of priors, 1.6 GB on Baby)")
    p.add_argument("--epochs", type=int, default=30, help="attention fusion's epoch cap")
    p.add_argument("--models", nargs="+")
    p = sub.add_parser("ratings", help="rating prediction on synthetic MNAR ratings")
    p.add_argument("--users", type=int, default=2000)
    p.add_argument("--items", type=int, default=1000)
    p.add_argument("--per-user", type=int, default=25)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--missing-weights", type=float, nargs="+", default=[0.0, 0.05, 0.2])
    parser.add_argument("--out", help="also write the numbers as JSON here")
    args = parser.parse_args()
    t0 = time.perf_counter()
    result = {"text-only": text_only, "baby": baby, "ratings": ratings}[args.what](args)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()
