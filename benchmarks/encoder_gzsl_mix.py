"""Held-out types: the aligned encoder's names mixed with the frozen MiniLM names (a probe).

Issue 22 item 5, not shipped (see docs/encoders.md "Held-out types: what the literature's fixes
measure"). Aligns catalog-clip without the seed's held-out types over the disk cache of
`benchmarks/phone_cache.py` (the no-augmentation settings: the cache holds no training views),
then names the pool's photos among all types with score = alpha * aligned cosine + (1 - alpha) *
cosine of the photo mapped by ridge regression (frozen photo features -> frozen MiniLM title
space, `encoder_gzsl_ridge.py`) to the frozen prompt-ensemble name vectors. Prints, per alpha,
the raw accuracies and the best calibrated-stacking gamma *on the test draw itself* (an upper
bound, not a result), the unseen photos' accuracy among the unseen names only (the ceiling of
any calibration), and name -> photo R@10 with the same mix.

    python benchmarks/encoder_gzsl_mix.py --db data/recsys.duckdb --seed 0
"""
import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ALPHAS = (1.0, 0.8, 0.6, 0.4)
RIDGE_LAMBDA = 1000.0


def main() -> None:
    import encoder_gzsl_ridge as R
    import torch
    from phone_cache import CachedFeatures

    from recsys.encoders.alignment import align
    from recsys.encoders.captions import ZERO_SHOT_TEMPLATES, item_caption
    from recsys.encoders.checkpoints import wrap_model
    from recsys.encoders.clip_config import CatalogClipConfig
    from recsys.encoders.evaluate import class_vectors
    from recsys.encoders.evaluate_unseen import _pool_images, draw_clean_unseen_types
    from recsys.encoders.training_data import training_items
    from recsys.store import Store

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--dataset", default="myntra")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--cache", default=str(ROOT / "data/cache/phone"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    folder = Path(args.cache)
    print("load", os.getloadavg())
    cached = CachedFeatures(args.cache)
    store = Store(args.db)
    cfg = CatalogClipConfig.from_dict({"augment_views": 0, "instance_epochs": 0})
    items = training_items(store, args.dataset, cfg.holdout)
    items["label"] = [str(x).strip() for x in items["article_type"]]
    unseen, _ = draw_clean_unseen_types(
        list(items["label"]), [item_caption(r) for r in items.to_dict("records")], args.k,
        args.seed, train_mask=(items["split"] != "heldout"))
    print("seed", args.seed, "held out:", ", ".join(unseen))
    is_u = items["label"].isin(unseen)
    in_pool = is_u | (items["split"] == "heldout")
    train = items[~is_u & (items["split"] != "heldout")].reset_index(drop=True)
    pool = items[in_pool].reset_index(drop=True)
    result = align(train, cfg, None, features=cached)
    store.close()
    enc = wrap_model(result.model, cfg.tower, "catalog-clip", "probe", "catalog-clip", None, {})
    types = sorted(set(items["label"]))
    photos = _pool_images(enc, list(pool["image_path"]), None, cached)
    type_vecs = class_vectors(enc, types, ZERO_SHOT_TEMPLATES)
    title_vecs = enc.encode_texts([str(t) for t in pool["title"]])
    # the frozen side: ridge from the cached photo features into the frozen MiniLM title space
    meta = cached.meta
    path_row = {p: i for i, p in enumerate(meta["paths"])}
    feats = np.load(folder / "studio.npy").astype(np.float32)
    texts = json.loads((folder / "texts.json").read_text())
    tv = R._norm(np.load(folder / "texts.npy").astype(np.float32))
    text_row = {t: i for i, t in enumerate(texts)}
    fit = np.asarray(meta["splits"]) != "heldout"
    mu, sd = feats[fit].mean(0), feats[fit].std(0) + 1e-3

    def photo_x(df):
        return (feats[[path_row[str(p)] for p in df["image_path"]]] - mu) / sd

    def frozen_titles(df):
        return tv[[text_row[str(t)] for t in df["title"]]]

    frozen_names = R._norm(np.stack([R._norm(tv[[text_row[t.format(n)] for t in R.TEMPLATES]])
                                     .mean(0) for n in types]))
    mapped = R._norm(photo_x(pool) @ R.ridge(photo_x(train), frozen_titles(train), RIDGE_LAMBDA))
    labels = pool["label"].to_numpy(dtype=object)
    pool_unseen = is_u[in_pool].to_numpy()
    unseen_type = np.isin(types, unseen)
    aligned, frozen = photos @ type_vecs.T, mapped @ frozen_names.T
    print("gamma chosen by the alignment", result.calibration.gamma if result.calibration else None)
    for a in ALPHAS:
        scores = a * aligned + (1 - a) * frozen
        sw = R.sweep(scores, types, labels, unseen_type, pool_unseen)
        best = max(sw, key=lambda r: r[3])
        pick = scores[pool_unseen][:, unseen_type].argmax(1)
        among = float((np.asarray(types, dtype=object)[unseen_type][pick]
                       == labels[pool_unseen]).mean())
        print(f"alpha {a}: raw seen {sw[0][1]:.3f} unseen {sw[0][2]:.3f}; best-on-test gamma "
              f"{best[0]} seen {best[1]:.3f} unseen {best[2]:.3f} H {best[3]:.3f}; "
              f"among unseen {among:.3f}")
    for a in (1.0, 0.7, 0.5):
        sim = a * (title_vecs @ photos.T) + (1 - a) * (frozen_titles(pool) @ mapped.T)
        rank = (sim > np.diag(sim)[:, None]).sum(1)
        print(f"name->photo alpha {a}: R@10 unseen {(rank[pool_unseen] < 10).mean():.3f} "
              f"seen {(rank[~pool_unseen] < 10).mean():.3f}")
    print("load", os.getloadavg())


if __name__ == "__main__":
    main()
