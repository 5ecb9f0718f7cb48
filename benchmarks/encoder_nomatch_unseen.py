""""No close match" for kinds of product the encoder never saw: align without 10 whole types.

`eval-encoder --no-match` removes a type from the *index* but the encoder was aligned on every
type, the removed one included, so its photos and name are well placed: a flattering test for
any feature that uses the encoder's knowledge of the type (its name among the catalog's or a
broad list of names). In the shop, a photo of something it does not sell shows a kind the
encoder was never aligned on. This benchmark measures that case: the encoder is aligned over
the frozen-tower cache (`benchmarks/phone_cache.py`) without 10 whole article types (the
leak-free draw of `eval-encoder --unseen-types 10 --seed S`, shipped settings except
`augment_views=0` (the cache holds no training views) and no calibration draws); the shop's
catalog is every photo of the other types. The shipped decision (`match_decision` with the
type names and the open vocabulary `product_types.PRODUCT_TYPES`) and the decision without
the open vocabulary ("names only") are calibrated on the catalog's non-held-out photos (cut-off
on its validation photos) and scored on:

- *off-catalog*: every photo of the 10 unseen types (never aligned on, names never aligned);
- *new product of a sold type*: the catalog's held-out photos, each searched without itself;
- *phone shots* (first 500 held-out products x 5 families, shot + crop): of sold types (should
  not fire) and of unseen types (should).

    python benchmarks/encoder_nomatch_unseen.py --db data/recsys.duckdb --seeds 0 1
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


def aligned_without(store, dataset: str, cached, seed: int):
    """(encoder aligned without the seed's 10 leak-free unseen types, the unseen types)."""
    from recsys.encoders.alignment import align
    from recsys.encoders.captions import item_caption
    from recsys.encoders.checkpoints import wrap_model
    from recsys.encoders.clip_config import CatalogClipConfig
    from recsys.encoders.evaluate_unseen import draw_clean_unseen_types
    from recsys.encoders.training_data import training_items

    cfg = CatalogClipConfig.from_dict({"augment_views": 0, "calibration_types": 0})
    items = training_items(store, dataset, cfg.holdout)
    labels = [str(x).strip() if isinstance(x, str) else "" for x in items["article_type"]]
    items["label"] = labels
    captions = [item_caption(r) for r in items.to_dict("records")]
    unseen, _ = draw_clean_unseen_types(labels, captions, 10, seed,
                                        train_mask=(items["split"] != "heldout"))
    train = items[~items["label"].isin(unseen) & (items["split"] != "heldout")]
    result = align(train.reset_index(drop=True), cfg, None, features=cached)
    return wrap_model(result.model, cfg.tower, "catalog-clip", f"unseen-{seed}",
                      "catalog-clip", None, {}), unseen


def measure(enc, cached, unseen, seed: int, false_alarm: float) -> dict:
    from phone_crop import crop_features

    from recsys.encoders.evaluate_nomatch import decide, paired_difference
    from recsys.encoders.evaluate_phone import head_vectors
    from recsys.encoders.match_decision import TypeCentroids, calibrate_match_model
    from recsys.encoders.type_names import type_texts_of
    from recsys.encoders.query_photo import fuse

    vec = head_vectors(enc.model, cached.studio)
    vec = vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12)
    labels = np.asarray([str(t) for t in cached.meta["article_type"]], dtype=object)
    splits = np.asarray(cached.meta["splits"])
    sold = (labels != "") & ~np.isin(labels, unseen)
    cat = np.flatnonzero(sold)
    gallery, glab, gsplit = vec[cat], labels[cat], splits[cat]
    texts = type_texts_of(enc, sorted(set(glab)))
    known = gsplit != "heldout"
    val = (gsplit == "val")[known]
    decisions = {
        "shipped": calibrate_match_model(gallery[known], glab[known], false_alarm, seed=seed,
                                         texts=texts, validation=val),
        "names only": calibrate_match_model(gallery[known], glab[known], false_alarm,
                                            seed=seed, texts=texts.without_open(),
                                            validation=val)}
    cent = TypeCentroids.of(gallery, glab)
    new = np.flatnonzero(gsplit == "heldout")
    itself = lambda a, b: np.arange(len(gallery))[None, :] == new[a:b, None]  # noqa: E731
    off = vec[np.flatnonzero(~sold & (labels != ""))]
    rows = np.flatnonzero(splits == "heldout")[:500]
    row_sold = sold[rows]
    shots = {f: fuse(head_vectors(enc.model, cached.view[f][rows]),
                     head_vectors(enc.model, crop_features(cached, "grabcut", f, rows)[0]))
             for f in cached.families}
    out: dict = {"unseen": list(unseen), "n_catalog": int(len(cat)), "n_off": int(len(off)),
                 "n_new": int(len(new))}
    fires = {}
    for name, model in decisions.items():
        fires[name] = {
            "off_catalog": ~decide(model, gallery, glab, cent, off, None, texts=texts),
            "catalog_new_product": ~decide(model, gallery, glab, cent, gallery[new], itself,
                                           leave_out=glab[new], texts=texts)}
        phone_in = [float((~decide(model, gallery, glab, cent, q[row_sold], None,
                                   texts=texts)).mean()) for q in shots.values()]
        phone_off = [float((~decide(model, gallery, glab, cent, q[~row_sold], None,
                                    texts=texts)).mean()) for q in shots.values()]
        out[name] = {k: float(v.mean()) for k, v in fires[name].items()}
        out[name].update({"phone_sold": float(np.mean(phone_in)),
                          "phone_off_catalog": float(np.mean(phone_off)),
                          "phone_sold_by_family": dict(zip(shots, phone_in))})
    for key in ("off_catalog", "catalog_new_product"):
        out[f"shipped_minus_names:{key}"] = paired_difference(
            fires["shipped"][key], fires["names only"][key], seed)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--dataset", default="myntra")
    parser.add_argument("--cache", default=str(ROOT / "data/cache/phone"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--false-alarm", type=float, default=0.05)
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/"
                                              "encoders-myntra-nomatch-unseen.json"))
    args = parser.parse_args()

    import torch

    from recsys.store import Store

    torch.set_num_threads(int(os.environ.get("RECSYS_ENCODER_THREADS", "2")))
    t0, load0 = time.perf_counter(), os.getloadavg()
    cached = CachedFeatures(args.cache)
    results = {}
    for seed in args.seeds:
        store = Store(args.db)
        try:
            enc, unseen = aligned_without(store, args.dataset, cached, seed)
        finally:
            store.close()
        r = results[seed] = measure(enc, cached, unseen, seed, args.false_alarm)
        print(f"seed {seed}: aligned without {', '.join(unseen)}; catalog {r['n_catalog']:,} "
              f"photos, {r['n_off']:,} off-catalog photos, {r['n_new']:,} new products")
        print(f"  {'share told no close match':<34}{'shipped':>9}{'names only':>12}")
        for key in ("off_catalog", "catalog_new_product", "phone_sold", "phone_off_catalog"):
            print(f"  {key:<34}{r['shipped'][key]:>9.3f}{r['names only'][key]:>12.3f}")
        for key in ("off_catalog", "catalog_new_product"):
            d, lo, hi = r[f"shipped_minus_names:{key}"]
            print(f"  shipped minus names only, {key}: {d:+.3f} [{lo:+.3f}, {hi:+.3f}]")
    load1 = os.getloadavg()
    print(f"{time.perf_counter() - t0:.0f} s, load {load0[0]:.1f} -> {load1[0]:.1f}")
    Path(args.out).write_text(json.dumps({"seeds": results, "load_start": load0,
                                          "load_end": load1}, indent=1, default=float))
    print("wrote", args.out)


if __name__ == "__main__":
    main()
