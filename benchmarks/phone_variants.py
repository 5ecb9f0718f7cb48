"""Choosing the robust-alignment settings without looking at the family being scored.

Nested leave-one-family-out over the cached features (`benchmarks/phone_cache.py`): for every
variant (CatalogClipConfig overrides) and every family F, align without F's augmented views and
score two things with that one alignment:

- *validation*: the phone shots of the 370 validation items (never trained on) made by the
  OTHER families, mean exact R@10 — what a fold may use to choose;
- *test*: the shots of the held-out items made by F — what the fold reports.

Per fold the variant with the best validation number is chosen and its test number reported
(`chosen`); if every fold chooses the same variant, that variant is one setting that no family's
own score chose. Queries are uncropped here (the crop is chosen separately,
`benchmarks/phone_crop.py`). Gallery: every catalog photo.

    python benchmarks/phone_variants.py --db data/recsys.duckdb \
        --variant noaug '{"augment_views": 0}' \
        --variant aug2 '{"augment_views": 2}' \
        --variant aug2_inst10 '{"augment_views": 2, "instance_epochs": 10}'
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
from phone_cache import CachedFeatures  # noqa: E402

from recsys.store import Store  # noqa: E402


def recall10(q, g, own) -> float:
    from recsys.encoders.evaluate_phone import exact_item_metrics
    return exact_item_metrics(q, g, own, np.zeros(len(g), dtype=object))["exact_recall@10"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--dataset", default="myntra")
    parser.add_argument("--cache", default=str(ROOT / "data/cache/phone"))
    parser.add_argument("--variant", nargs=2, action="append", metavar=("NAME", "JSON"),
                        required=True)
    parser.add_argument("--families", nargs="*")
    parser.add_argument("--n-test", type=int, default=None, help="held-out items per family")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/"
                                              "encoders-myntra-phone-variants.json"))
    args = parser.parse_args()

    import torch
    torch.set_num_threads(int(os.environ.get("RECSYS_ENCODER_THREADS", "1")))
    from recsys.encoders.alignment import align
    from recsys.encoders.clip_config import CatalogClipConfig
    from recsys.encoders.evaluate_phone import head_vectors
    from recsys.encoders.training_data import training_items

    cached = CachedFeatures(args.cache)
    fams = args.families or cached.families
    store = Store(args.db)
    items = training_items(store, args.dataset, CatalogClipConfig().holdout)
    store.close()
    assert [str(i) for i in items["item_id"]] == cached.meta["item_ids"], "cache is stale"
    train = items[items["split"] != "heldout"].reset_index(drop=True)
    val_rows, test_rows = cached.rows("val"), cached.rows("heldout")
    if args.n_test:
        test_rows = test_rows[:args.n_test]
    out: dict = {"load_start": os.getloadavg(), "families": fams, "n_val": len(val_rows),
                 "n_test": len(test_rows), "variants": {}}
    for name, raw in args.variant:
        settings = json.loads(raw)
        base = replace(CatalogClipConfig.from_dict(settings), calibration_types=0)
        folds = [(f, replace(base, augment_exclude=[f])) for f in fams] \
            if base.augment_views > 0 else [("all", base)]
        res: dict = {"settings": settings, "folds": {}}
        for fold, cfg in folds:
            t0 = time.perf_counter()
            result = align(train, cfg, features=cached)
            model = result.model
            g = head_vectors(model, cached.studio)
            scores = {}
            for fam in fams:
                for split, rows in (("val", val_rows), ("test", test_rows)):
                    scores[f"{split}:{fam}"] = recall10(head_vectors(model, cached.view[fam][rows]),
                                                        g, rows)
            scores["studio_val_zeroshot_acc"] = result.metrics.get("val_zeroshot_acc")
            scores["val_t2i_r10"] = result.metrics.get("val_t2i_r10")
            scores["seconds"] = time.perf_counter() - t0
            res["folds"][fold] = scores
            print(name, fold, {k: round(v, 3) for k, v in scores.items() if v is not None},
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
        for fam in fams:
            sc = res["folds"].get(fam) or res["folds"]["all"]
            res.setdefault("test", {})[fam] = sc[f"test:{fam}"]
            res.setdefault("val_other", {})[fam] = float(np.mean(
                [sc[f"val:{g}"] for g in fams if g != fam]))
        res["test_mean"] = float(np.mean(list(res["test"].values())))
        out["variants"][name] = res
        print(f"== {name}: held-out family test R@10 "
              + ", ".join(f"{f} {v:.3f}" for f, v in res["test"].items())
              + f"; mean {res['test_mean']:.3f}", flush=True)
    chosen = {}
    for fam in fams:
        best = max(out["variants"], key=lambda v: out["variants"][v]["val_other"][fam])
        chosen[fam] = {"variant": best, "test": out["variants"][best]["test"][fam],
                       "val_other": out["variants"][best]["val_other"][fam]}
    out["chosen"] = chosen
    out["chosen_test_mean"] = float(np.mean([c["test"] for c in chosen.values()]))
    out["load_end"] = os.getloadavg()
    print("chosen per fold on the other families' validation shots:",
          {f: c["variant"] for f, c in chosen.items()},
          f"-> held-out test mean {out['chosen_test_mean']:.3f}")
    Path(args.out).write_text(json.dumps(out, indent=1, default=float))
    print("wrote", args.out)


if __name__ == "__main__":
    main()
