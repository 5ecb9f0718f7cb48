"""Held-out types (generalised zero-shot) over the cached frozen-tower features.

`eval-encoder --unseen-types K --seed S` aligns from scratch (the frozen towers run over every
photo each time: 20-40 min on a busy 2-core box). This script calls the same package function
(`evaluate_unseen.evaluate_unseen_types`, unchanged: the same draw with leaking draws replaced,
the same alignment and calibration, the same metrics) with `features=` the disk cache of
`benchmarks/phone_cache.py`, so the towers do not run again; the pool's photo vectors are the
encoder's photo head over the cached features (what encoding computes; the script checks a few
photos against the real encoder). Prints raw and calibrated numbers per seed and writes JSON.

    python benchmarks/encoder_gzsl.py --db data/recsys.duckdb --seeds 0 1
    python benchmarks/encoder_gzsl.py --db data/recsys.duckdb --seeds 0 1 --in-distribution
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402
from phone_cache import CachedFeatures  # noqa: E402

from recsys.core.progress import console_progress  # noqa: E402
from recsys.store import Store  # noqa: E402

ROWS = ("unseen_wf1", "unseen_vs_all_wf1", "unseen_vs_all_accuracy", "seen_wf1",
        "seen_accuracy", "harmonic_accuracy", "t2i_recall@10_seen", "t2i_recall@10_unseen")


def run(args) -> dict:
    from recsys.encoders import evaluate_unseen
    from recsys.encoders.evaluate_unseen import _pool_images

    store = Store(args.db)
    cached = CachedFeatures(args.cache)
    settings = json.loads(args.set) if args.set else {}
    out: dict = {"settings": settings}
    if args.in_distribution:
        from recsys.encoders.catalog_clip import train_catalog_clip
        from recsys.encoders.evaluate import evaluate_encoder

        t0 = time.perf_counter()
        with console_progress("align on the catalog") as bar:
            info = train_catalog_clip(store, args.dataset, settings, bar, features=cached)
        ev = evaluate_encoder(store, args.dataset, info.spec, baseline=None, record=False)
        calib = info.config.get("calibration") or {}
        res = {"encoder": info.spec, "metrics": ev.metrics, "n_items": ev.n_items,
               "gamma": calib.get("gamma"), "seconds": time.perf_counter() - t0}
        out["in_distribution"] = res
        print(json.dumps(res, indent=1))
    for seed in args.seeds:
        t0 = time.perf_counter()
        with console_progress(f"held-out types seed {seed}") as bar:
            ev = evaluate_unseen.evaluate_unseen_types(store, args.dataset, args.k, seed,
                                                       settings, progress=bar, record=False,
                                                       features=cached)
        res = {"unseen_types": ev.unseen_types, "replaced_draws": ev.replaced_draws,
               "metrics": ev.metrics, "baseline": ev.baseline_metrics,
               "gamma": (ev.calibration or {}).get("gamma"),
               "validation": {k: v for k, v in ((ev.calibration or {}).get("validation")
                                                or {}).items() if k != "pseudo_unseen_types"},
               "seconds": time.perf_counter() - t0}
        out[str(seed)] = res
        print(f"seed {seed}: {', '.join(ev.unseen_types)} (replaced {len(ev.replaced_draws)} "
              f"leaking draws)")
        for key in ROWS:
            raw, cal = ev.metrics.get(key), ev.metrics.get(f"{key}_calibrated")
            base = ev.baseline_metrics.get(key)
            print(f"  {key:<28}{raw if raw is not None else float('nan'):>8.3f}"
                  f"{cal if cal is not None else float('nan'):>8.3f}"
                  f"{base if base is not None else float('nan'):>8.3f}")
    if args.check:
        from recsys.encoders import get_encoder
        enc = get_encoder("conse", store, args.dataset)
        paths = cached.meta["paths"][:16]
        out["check_max_abs_diff_conse"] = float(np.abs(
            enc.encode_images(paths) - _pool_images(enc, paths, None, cached)).max())
        print("cached head vs encode_images, max |diff|:", out["check_max_abs_diff_conse"])
    store.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--dataset", default="myntra")
    parser.add_argument("--cache", default=str(ROOT / "data/cache/phone"),
                        help="folder written by benchmarks/phone_cache.py")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--set", help="CatalogClipConfig fields as JSON (default: the shipped "
                                      "defaults)")
    parser.add_argument("--in-distribution", action="store_true",
                        help="also align on the whole catalog (train_catalog_clip, registered "
                             "in --db) and score the held-out 20%%")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/"
                                              "encoders-myntra-calibration.json"))
    args = parser.parse_args()
    import torch
    torch.set_num_threads(int(os.environ.get("RECSYS_ENCODER_THREADS", "1")))
    load0 = os.getloadavg()
    out = run(args)
    out["machine"] = {"cpus": os.cpu_count(), "load_start": load0, "load_end": os.getloadavg(),
                      "threads": torch.get_num_threads()}
    Path(args.out).write_text(json.dumps(out, indent=1, default=float))
    print("wrote", args.out)


if __name__ == "__main__":
    main()
