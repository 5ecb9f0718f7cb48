"""Align the shipped (augmented) catalog-clip on a big catalog, resumably, over the phone cache.

`train-encoder` with the shipped settings runs the image tower over every training photo, then
renders 2 phone-style views per training and validation photo and runs them through the tower
(on full Myntra: 7,672 photos, 15,344 views; the views are most of the time, and nothing of
them is kept if the process stops). This script computes the same alignment (same code,
`train_catalog_clip` with the default config) but reads the studio photos' and captions' frozen
tower outputs from the phone cache (`benchmarks/phone_cache.py`) and renders the views in
chunks of 512 photos saved to `--parts` (npz, no pickle): run it again after a stop and it
renders only the missing chunks. It registers the encoder in --db and prints its spec, for

    python benchmarks/encoder_nomatch.py --db DB --cache CACHE --encoder SPEC

    python benchmarks/encoder_views_cached.py --db data/views.duckdb \\
        --cache data/cache/phone --parts data/exp/views_parts
"""

from __future__ import annotations

import argparse
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

CHUNK = 512


class CachedWithLiveViews(CachedFeatures):
    """Studio photos and texts from the cache; the views rendered by the shipped code
    (`augment.view_features`), chunk by chunk, each chunk kept on disk."""

    def __init__(self, folder, parts: Path):
        super().__init__(folder)
        self.parts = Path(parts)
        self.parts.mkdir(parents=True, exist_ok=True)

    def views(self, model, cfg, paths, item_ids, plan, pixels, progress, donor_paths):
        import torch

        from recsys.encoders.augment import Views, view_features

        t0 = time.perf_counter()
        feats, tables = [], []
        for k, start in enumerate(range(0, len(paths), CHUNK)):
            stop = min(start + CHUNK, len(paths))
            part = self.parts / f"chunk_{k:04d}_{start}_{stop}.npz"
            ids = [str(i) for i in item_ids[start:stop]]
            if part.is_file():
                with np.load(part, allow_pickle=False) as data:
                    if list(data["ids"]) == ids:
                        feats.append(torch.from_numpy(data["features"]).to(torch.bfloat16))
                        tables.append(plan.table(ids))
                        continue
            got = view_features(model, cfg, paths[start:stop], ids, plan, pixels, None,
                                donor_paths)
            np.savez(part, ids=np.asarray(ids), features=got.features.float().numpy())
            feats.append(got.features)
            tables.append(got.families)
            print(f"views: {stop:,}/{len(paths):,} photos, {time.perf_counter() - t0:.0f} s, "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
        return Views(torch.cat(feats), np.concatenate(tables), time.perf_counter() - t0,
                     {"plan": plan.to_dict()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--dataset", default="myntra")
    parser.add_argument("--cache", default=str(ROOT / "data/cache/phone"))
    parser.add_argument("--parts", default=str(ROOT / "data/cache/views_parts"))
    args = parser.parse_args()

    from recsys.core.progress import console_progress
    from recsys.encoders.catalog_clip import train_catalog_clip
    from recsys.store import Store

    t0, load0 = time.perf_counter(), os.getloadavg()
    store = Store(args.db)
    try:
        features = CachedWithLiveViews(args.cache, Path(args.parts))
        with console_progress("train-encoder (shipped settings, cached photos, live views)") \
                as bar:
            info = train_catalog_clip(store, args.dataset, None, bar, features=features)
    finally:
        store.close()
    print(f"encoder {info.spec}: {time.perf_counter() - t0:.0f} s, load {load0[0]:.1f} -> "
          f"{os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
