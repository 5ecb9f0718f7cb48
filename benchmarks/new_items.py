"""New arrivals on real users: can item texts rank items nobody has met yet?

MovieLens-100k (943 real users; `python ../shared/datasets/get_movielens100k.py DIR`, never
committed), ratings >= 4 as positives, item text = title + "Genres: ..." through the project's
pretrained text tower (all-MiniLM-L6-v2, offline; what `embed` gives a catalog without photos).
The new-items protocol (`--protocol new-items`): 20% of the items (seeded) held out with all
their interactions, each test user's held-out items ranked among the held-out items only.
Three seeded item draws; for each, NDCG@10 with its 95% bootstrap interval over users for the
baselines (random order, category popularity, category profile: genres only) and the models
that can score an unseen item (text content, fusion: collaborative-only models are not
applicable), and the paired comparison (relative NDCG@10 gain, paired-bootstrap 95% interval,
paired t-test) of each model against the category profile. The targets of the issue are
checked and printed as met / not met, with the machine load. One more row, `category-knn`,
is the content k-NN scorer fed the genres instead of the texts (measured in memory): the text
k-NN's margin over it is what the texts add beyond the labels.

    python benchmarks/new_items.py --movielens DIR            # DIR with ratings.csv, items.csv
    python benchmarks/new_items.py --movielens DIR --seeds 0 1 2 --models content-text \
        content-knn late-fusion early-fusion attention-fusion

The database (catalog, positives, text vectors, the trained models of each draw) is kept
under the worktree's ignored `data/bench/` folder, so a second run re-uses it (the models are
re-used only when trained on exactly the same split and vectors). Models are trained with
their default settings (no tuning). The targets are checked for one model named before the
run (`--claim`, default late-fusion), not for whichever scored best on test. A JSON copy of the table goes to `--out` when given.
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

DATASET = "movielens"
BASELINES = ("random", "attr-popularity", "attr-profile")
DEFAULT_MODELS = ("content-text", "content-knn", "late-fusion", "early-fusion",
                  "attention-fusion")
K = 10


def movielens_ready(folder: Path) -> bool:
    """Whether MovieLens-100k is in `folder` (else say how to fetch it); sets the offline
    switches the text tower needs."""
    if not (folder / "ratings.csv").is_file():
        print(f"No MovieLens-100k in {folder}: fetch it with `python "
              "../shared/datasets/get_movielens100k.py DIR` and pass --movielens DIR.")
        return False
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    return True


def open_movielens(folder: Path, db: Path):
    """The benchmark's database `db` with MovieLens-100k from `folder` imported and its texts
    embedded (`prepare`); None (after saying how to fetch it) when MovieLens is absent."""
    if not movielens_ready(folder):
        return None
    from recsys.store import Store

    db.parent.mkdir(parents=True, exist_ok=True)
    store = Store(db)
    prepare(store, folder)
    return store


def prepare(store, folder: Path) -> None:
    """Import MovieLens (catalog, positives >= 4 stars) and embed its texts, once."""
    from recsys import usecases

    if DATASET in store.dataset_names() and not store.embedding_sets(DATASET).empty:
        return
    t0 = time.perf_counter()
    usecases.import_catalog(store, folder / "items.csv", dataset=DATASET)
    usecases.import_interactions(store, folder / "ratings.csv", dataset=DATASET, min_rating=4)
    usecases.embed(store, DATASET)
    print(f"prepared '{DATASET}' (import + text vectors) in {time.perf_counter() - t0:.0f} s")


def run(store, seeds, models) -> list[dict]:
    from recsys import usecases

    rows = []
    for seed in seeds:
        t0 = time.perf_counter()
        frame = usecases.evaluate(store, DATASET, list(models), ks=(K, 20),
                                  protocol="new-items", split_seed=seed,
                                  baseline="attr-profile")
        sel = frame[(frame["slice"] == "all") & (frame["metric"] == "ndcg") & (frame["k"] == K)]
        for r in sel.to_dict("records"):
            rows.append({"seed": seed, "model": r["model"], "ndcg": r["value"],
                         "low": r["ci_low"], "high": r["ci_high"], "users": int(r["users"]),
                         "gain": r["gain"], "gain_low": r["gain_low"],
                         "gain_high": r["gain_high"], "p_value": r["p_value"]})
        print(f"seed {seed}: evaluated in {time.perf_counter() - t0:.0f} s; "
              + " ".join(frame.attrs.get("notes", [])))
    return rows


def category_knn(store, seeds) -> list[dict]:
    """The content k-NN model (`content-knn`, default settings) fed the items' category
    vectors (genres, one-hot, L2-normalised) instead of their text vectors, on the same draws:
    what the k-NN scorer gets from the category labels alone, so the text k-NN's margin over it
    is what the texts add. Measured in memory (not stored)."""

    from recsys.core.arrays import normalise_rows
    from recsys.data.attributes import CATEGORY_COLUMNS, category_matrix
    from recsys.data.interactions import InteractionData, load_data
    from recsys.evaluation.ranking import evaluate_users
    from recsys.evaluation.stats import bootstrap_ci
    from recsys.models import create_model

    rows = []
    items = store.item_columns(DATASET, ["description", *CATEGORY_COLUMNS])
    for seed in seeds:
        data = load_data(store, DATASET, "new-items", seed)
        cats, _ = category_matrix(items, list(data.item_ids))
        only = InteractionData(DATASET, "new-items", data.user_ids, data.item_ids, data.train,
                               data.valid, data.test, text=normalise_rows(cats.toarray()),
                               candidates=data.candidates)
        um = evaluate_users(create_model("content-knn").fit(only), only, (K,), seed=seed)[0]
        values = um.values(("all", "ndcg", K))[1]
        low, high = bootstrap_ci(values, seed=seed)
        rows.append({"seed": seed, "model": "category-knn", "ndcg": float(values.mean()),
                     "low": float(low[0]), "high": float(high[0]), "users": len(values),
                     "gain": float("nan"), "gain_low": float("nan"),
                     "gain_high": float("nan"), "p_value": float("nan")})
    return rows


def table(rows: list[dict], seeds, models, claim: str) -> tuple[str, list[str]]:
    names = [*BASELINES, *[m for m in ("category-knn", *models)
                           if any(r["model"] == m for r in rows)]]
    by = {(r["seed"], r["model"]): r for r in rows}
    head = "| model | " + " | ".join(f"draw {s}: NDCG@{K} [95% CI]" for s in seeds) + \
        " | mean |"
    lines = [head, "|---|" + "---|" * (len(seeds) + 1)]
    for name in names:
        cells, values = [], []
        for s in seeds:
            r = by.get((s, name))
            if r is None:
                cells.append("-")
                continue
            values.append(r["ndcg"])
            cells.append(f"{r['ndcg']:.4f} [{r['low']:.4f}, {r['high']:.4f}]")
        mean = sum(values) / len(values) if values else float("nan")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {mean:.4f} |")
    lines += ["", (f"Paired comparison against attr-profile (relative NDCG@{K} gain, paired "
                   "bootstrap 95% CI, paired t-test p):"), ""]
    lines += ["| model | " + " | ".join(f"draw {s}" for s in seeds) + " |",
              "|---|" + "---|" * len(seeds)]
    for name in names:
        if name in ("attr-profile", "category-knn"):      # the baseline; measured unpaired
            continue
        cells = []
        for s in seeds:
            r = by.get((s, name))
            cells.append("-" if r is None or r["gain"] != r["gain"] else
                         f"{r['gain']:+.1%} [{r['gain_low']:+.1%}, {r['gain_high']:+.1%}] "
                         f"p={r['p_value']:.2g}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    # targets, per draw, for the model named before the run (`claim`: never the best on test)
    verdicts = []
    for s in seeds:
        if (s, claim) not in by:
            continue
        best = by[(s, claim)]
        bar = max(by[(s, "random")]["ndcg"], by.get((s, "attr-popularity"), {"ndcg": 0})["ndcg"])
        ratio = best["ndcg"] / bar if bar > 0 else float("inf")
        ahead = best["gain_low"] > 0
        verdicts.append(f"draw {s}: {best['model']} NDCG@{K} {best['ndcg']:.4f} = "
                        f"{ratio:.2f}x the better of random / category popularity "
                        f"({bar:.4f}; target >= 1.5x: {'met' if ratio >= 1.5 else 'NOT met'}); "
                        f"vs category profile {best['gain']:+.1%} [{best['gain_low']:+.1%}, "
                        f"{best['gain_high']:+.1%}] (target: CI above zero: "
                        f"{'met' if ahead else 'NOT met'})")
    return "\n".join(lines), verdicts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--movielens", type=Path,
                        default=Path(os.environ.get("RECSYS_MOVIELENS100K",
                                                    "/work/datasets-extra/movielens100k")),
                        help="folder with ratings.csv and items.csv (default "
                             "$RECSYS_MOVIELENS100K)")
    parser.add_argument("--db", type=Path, default=ROOT / "data" / "bench" / "movielens.duckdb")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--claim", default="late-fusion",
                        help="the content/fusion model the targets are checked for, named "
                             "before the run (default late-fusion, the app's default model "
                             "with item vectors); picking the best on test would flatter it")
    parser.add_argument("--out", type=Path, help="write the rows and the machine state as JSON")
    args = parser.parse_args(argv)
    before = machine_state()
    store = open_movielens(args.movielens, args.db)
    if store is None:
        return 2
    try:
        t0 = time.perf_counter()
        rows = run(store, args.seeds, args.models)
        rows += category_knn(store, args.seeds)
        seconds = time.perf_counter() - t0
    finally:
        store.close()
    after = machine_state(sample_cpu=False)
    text, verdicts = table(rows, args.seeds, args.models, args.claim)
    print(f"\nMovieLens-100k, new-items protocol (20% of the items held out per draw, ratings >= 4"
          f" as positives, item text = title + genres through all-MiniLM-L6-v2), default "
          f"settings, {seconds:.0f} s\n")
    print(text)
    print()
    for v in verdicts:
        print(v)
    print(f"\nmachine: {before['cpu']} x{before['cores']}; load (1 min) {before['load_1min']} "
          f"before, {after['load_1min']} after; {before['memory_available_gb']} GB available")
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "verdicts": verdicts,
                                        "machine": {"before": before, "after": after}},
                                       indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
