"""Phone shots, leave one family out: the shipped protocol over the cached frozen-tower features.

`train-encoder` then `eval-encoder --phone-shots N` run the towers over every photo and every
augmented view (tens of minutes on a busy 2-core box). This script runs the same two package
functions (`train_catalog_clip`, `evaluate_phone_shots`: the same alignments, the same held-out
families, the same crop) but passes them the disk cache of `benchmarks/phone_cache.py` as
`features=`, so only the heads are trained here. The query shots are rendered and encoded here
(as the command does). Prints a table per family and writes JSON with the machine load.

    python benchmarks/encoder_phone.py --db data/recsys.duckdb --cache data/cache/phone \
        --n 500 --set '{"augment_views": 2, "instance_epochs": 10}'
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

from phone_cache import CachedFeatures  # noqa: E402

from recsys.core.progress import console_progress  # noqa: E402
from recsys.store import Store  # noqa: E402

SETS = (("phone_", "held-out family, uncropped"), ("phone_crop_", "held-out family, crop"),
        ("noaug_phone_", "no augmentation, uncropped"), ("noaug_phone_crop_", "no augmentation, crop"),
        ("conse_phone_", "ConSE (untrained), uncropped"), ("conse_phone_crop_", "ConSE, crop"),
        ("trained_phone_crop_", "aligned with it (not held out), crop"))


def table(ev) -> str:
    fams = ev.families
    m = ev.metrics
    lines = [f"exact R@10 per family ({ev.n_queries} held-out products each; gallery "
             f"{ev.n_gallery:,}; protocol: {ev.protocol})",
             f"{'query set':<40}" + "".join(f"{f:>9}" for f in fams) + f"{'mean':>9}"]
    for prefix, label in SETS:
        key = f"{prefix}exact_recall@10"
        if key not in m:
            continue
        lines.append(f"{label:<40}" + "".join(f"{m.get(f'family:{f}:{key}', float('nan')):>9.3f}"
                                              for f in fams) + f"{m[key]:>9.3f}")
    lines.append(f"{'crop rate':<40}" + "".join(f"{m[f'family:{f}:crop_rate']:>9.2f}" for f in fams))
    lines.append(f"studio exact R@10: {m['studio_exact_recall@10']:.3f} as it is, "
                 f"{m['studio_crop_exact_recall@10']:.3f} through the crop (cropped "
                 f"{m['studio_crop_rate']:.1%} of them)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--dataset", default="myntra")
    parser.add_argument("--cache", default=str(ROOT / "data/cache/phone"))
    parser.add_argument("--n", type=int, default=500, help="held-out products per family")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", help="CatalogClipConfig fields as JSON (the encoder trained)")
    parser.add_argument("--families", nargs="*")
    parser.add_argument("--encoder", help="score this registered encoder instead of training")
    parser.add_argument("--in-distribution", action="store_true",
                        help="also eval-encoder on the held-out 20%% (no baseline)")
    parser.add_argument("--check", action="store_true", help="compare cache and towers first")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/encoders-myntra-phone.json"))
    args = parser.parse_args()

    import torch
    torch.set_num_threads(int(os.environ.get("RECSYS_ENCODER_THREADS", "1")))
    from recsys.encoders.catalog_clip import train_catalog_clip
    from recsys.encoders.evaluate import evaluate_encoder
    from recsys.encoders.evaluate_phone import evaluate_phone_shots

    out: dict = {"load_start": os.getloadavg(), "settings": json.loads(args.set or "{}")}
    cached = CachedFeatures(args.cache)
    if args.check:
        out["check_max_abs_diff"] = cached.check()
        print("cache vs towers, max |diff|:", out["check_max_abs_diff"])
    store = Store(args.db)
    t0 = time.perf_counter()
    spec = args.encoder
    if spec is None:
        with console_progress("train-encoder (cached features)") as bar:
            info = train_catalog_clip(store, args.dataset, out["settings"], bar, features=cached)
        spec = info.spec
        out["train"] = {"spec": spec, "metrics": info.metrics, "seconds": info.seconds}
        print(f"trained {spec} in {info.seconds:.0f} s:",
              {k: round(v, 4) for k, v in info.metrics.items() if isinstance(v, float)})
    if args.in_distribution:
        with console_progress("eval-encoder") as bar:
            ev = evaluate_encoder(store, args.dataset, spec, baseline=None, progress=bar,
                                  record=False)
        out["in_distribution"] = ev.metrics
        print("in-distribution:", {k: round(v, 4) for k, v in ev.metrics.items()})
    with console_progress("eval-encoder --phone-shots") as bar:
        ev = evaluate_phone_shots(store, args.dataset, spec, n=args.n, seed=args.seed,
                                  progress=bar, record=False, families=args.families,
                                  features=cached)
    out["phone"] = ev.to_dict()
    out["seconds"] = time.perf_counter() - t0
    out["load_end"] = os.getloadavg()
    print(table(ev))
    print(f"({out['seconds']:.0f} s; load {out['load_start'][0]:.1f} -> {out['load_end'][0]:.1f})")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1, default=float))
    print("wrote", args.out)
    store.close()


if __name__ == "__main__":
    main()
