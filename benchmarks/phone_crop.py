"""The product crop, measured per phone-shot family and chosen without the family it is scored on.

Over the cache of `benchmarks/phone_cache.py` (its saved shots of the validation and held-out
items, and the product's true box in each):

1. every crop variant is run once over every saved shot and its crop goes through the frozen
   tower (saved under <cache>/crops/, reused): `none` (the shot as it is), `border` (border
   colours only), `grabcut` (the default), `grabcut_m15` (15% margin), `oracle` (the true box
   plus 8%: what a perfect crop would give);
2. per family F, the heads are aligned without F's augmented views (the shipped settings, or
   --set) and every variant is scored as a query on its own, fused with the uncropped shot by
   the mean of the two vectors (`+mean`), or by the better of the two scores per catalog item
   (`+max`);
3. per fold the variant with the best exact R@10 on the OTHER families' validation shots is
   chosen and its held-out-item score on F reported.

Also: the crop's decision and exact R@10 on catalog photos (the studio queries), for every
catalog photo the crop touches.

    python benchmarks/phone_crop.py --db data/recsys.duckdb --set '{"augment_views": 2}'
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

MARGIN = 0.08


def crop_settings():
    from recsys.encoders.crop import DEFAULT
    return {"border": replace(DEFAULT, method="border"), "grabcut": DEFAULT,
            "grabcut_m15": replace(DEFAULT, margin=0.15)}


def _oracle(img, box):
    x0, y0, x1, y1 = (int(v) for v in box)
    mx, my = MARGIN * (x1 - x0), MARGIN * (y1 - y0)
    b = (max(0, int(x0 - mx)), max(0, int(y0 - my)), min(img.width, int(x1 + mx)),
         min(img.height, int(y1 + my)))
    return img.crop(b)


def crop_features(cached: CachedFeatures, variant: str, family: str, rows: np.ndarray):
    """[len(rows), 1280] features of the variant's query images (cached on disk) and the share
    of shots the crop changed."""
    import torch
    from PIL import Image

    from recsys.encoders.clip_encoder import normalise_pixels, prepare_image
    from recsys.encoders.crop import locate_product
    from recsys.encoders.towers import IMAGE_MEAN, IMAGE_STD

    folder = cached.folder / "crops"
    folder.mkdir(exist_ok=True)
    key = f"{variant}_{family}_{rows[0]}_{rows[-1]}_{len(rows)}"
    if (folder / f"{key}.npy").is_file():
        meta = json.loads((folder / f"{key}.json").read_text())
        return torch.from_numpy(np.load(folder / f"{key}.npy").astype(np.float32)).to(
            torch.bfloat16), meta["changed"]
    model = _trunk()
    settings = crop_settings()
    arrays, changed = [], []
    for r in rows:
        img = Image.open(cached.shot_path(family, int(r))).convert("RGB")
        if variant == "none":
            out, ch = img, False
        elif variant == "oracle":
            out, ch = _oracle(img, cached.box[family][r]), True
        else:
            res = locate_product(img, settings[variant])
            out, ch = res.image, res.box is not None
        arrays.append(prepare_image(out, 224))
        changed.append(ch)
    feats = []
    with torch.inference_mode():
        for s in range(0, len(arrays), 64):
            x = normalise_pixels(arrays[s:s + 64], IMAGE_MEAN, IMAGE_STD)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                feats.append(model.visual.trunk(x).to(torch.bfloat16))
    feats = torch.cat(feats)
    np.save(folder / f"{key}.npy", feats.float().numpy().astype(np.float16))
    (folder / f"{key}.json").write_text(json.dumps({"changed": float(np.mean(changed))}))
    return feats, float(np.mean(changed))


_TRUNK = {}


def _trunk():
    if "m" not in _TRUNK:
        from recsys.encoders.clip_config import CatalogClipConfig
        from recsys.encoders.hybrid import build_catalog_model
        tower = replace(CatalogClipConfig().tower, conse_residual=False)
        _TRUNK["m"] = build_catalog_model(tower, pretrained=True, instance=False).eval()
    return _TRUNK["m"]


def studio_check(cached: CachedFeatures, models: dict) -> dict:
    """The crop on every catalog photo: how many it changes, and whether those still find
    their own product in the top 10 (with each fold's heads)."""
    import torch
    from PIL import Image

    from recsys.encoders.clip_encoder import normalise_pixels, prepare_image
    from recsys.encoders.crop import locate_product
    from recsys.encoders.evaluate_phone import head_vectors
    from recsys.encoders.towers import IMAGE_MEAN, IMAGE_STD

    from phone_variants import recall10

    reasons: dict = {}
    changed = []
    for r, path in enumerate(cached.meta["paths"]):
        res = locate_product(Image.open(path))
        reasons[res.reason] = reasons.get(res.reason, 0) + 1
        if res.box is not None:
            changed.append((r, res.image))
    out = {"n": len(cached.meta["paths"]), "reasons": reasons, "changed": len(changed)}
    if changed:
        x = normalise_pixels([prepare_image(im, 224) for _, im in changed], IMAGE_MEAN, IMAGE_STD)
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            feats = _trunk().visual.trunk(x).to(torch.bfloat16)
        rows = np.array([r for r, _ in changed])
        from recsys.encoders.query_photo import fuse
        out["changed_recall@10"] = {
            fold: recall10(head_vectors(m, feats), head_vectors(m, cached.studio), rows)
            for fold, m in models.items()}
        out["changed_recall@10_fused"] = {
            fold: recall10(fuse(head_vectors(m, cached.studio[rows]), head_vectors(m, feats)),
                           head_vectors(m, cached.studio), rows)
            for fold, m in models.items()}
        # every other catalog photo is its own query unchanged: found first
        out["studio_crop_recall@10"] = {
            fold: 1.0 - (1.0 - v) * len(changed) / out["n"]
            for fold, v in out["changed_recall@10"].items()}
        out["studio_fused_recall@10"] = {
            fold: 1.0 - (1.0 - v) * len(changed) / out["n"]
            for fold, v in out["changed_recall@10_fused"].items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--dataset", default="myntra")
    parser.add_argument("--cache", default=str(ROOT / "data/cache/phone"))
    parser.add_argument("--set", help="CatalogClipConfig fields as JSON")
    parser.add_argument("--n-test", type=int, default=500)
    parser.add_argument("--variants", nargs="*",
                        default=["none", "border", "grabcut", "grabcut_m15", "oracle"])
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/"
                                              "encoders-myntra-phone-crop.json"))
    args = parser.parse_args()

    import torch
    torch.set_num_threads(int(os.environ.get("RECSYS_ENCODER_THREADS", "1")))
    from recsys.encoders.alignment import align
    from recsys.encoders.clip_config import CatalogClipConfig
    from recsys.encoders.evaluate_phone import head_vectors
    from recsys.encoders.training_data import training_items

    from phone_variants import recall10

    cached = CachedFeatures(args.cache)
    fams = cached.families
    store = Store(args.db)
    items = training_items(store, args.dataset, CatalogClipConfig().holdout)
    store.close()
    train = items[items["split"] != "heldout"].reset_index(drop=True)
    val_rows, test_rows = cached.rows("val"), cached.rows("heldout")[:args.n_test]
    out: dict = {"load_start": os.getloadavg(), "settings": json.loads(args.set or "{}"),
                 "n_val": len(val_rows), "n_test": len(test_rows), "crop_rate": {}}
    t0 = time.perf_counter()
    feats: dict = {}
    for v in args.variants:
        for fam in fams:
            for split, rows in (("val", val_rows), ("test", test_rows)):
                feats[(v, fam, split)], rate = crop_features(cached, v, fam, rows)
                out["crop_rate"][f"{v}:{fam}:{split}"] = rate
        print(f"features of {v} ready ({time.perf_counter() - t0:.0f} s, load "
              f"{os.getloadavg()[0]:.1f})", flush=True)
    base = replace(CatalogClipConfig.from_dict(out["settings"]), calibration_types=0)
    models = {}
    scores: dict = {}
    for fold in fams:
        cfg = replace(base, augment_exclude=[fold]) if base.augment_views > 0 else base
        model = models.get("all") if base.augment_views <= 0 else None
        if model is None:
            model = align(train, cfg, features=cached).model
        models["all" if base.augment_views <= 0 else fold] = model
        g = head_vectors(model, cached.studio)
        for fam in fams:
            for split, rows in (("val", val_rows), ("test", test_rows)):
                full = head_vectors(model, feats[("none", fam, split)])
                for v in args.variants:
                    q = head_vectors(model, feats[(v, fam, split)])
                    scores[(fold, fam, split, v)] = recall10(q, g, rows)
                    if v == "none":
                        continue
                    mean = full + q
                    mean /= np.linalg.norm(mean, axis=1, keepdims=True)
                    scores[(fold, fam, split, v + "+mean")] = recall10(mean, g, rows)
                    sims = np.maximum(full @ g.T, q @ g.T)
                    own = sims[np.arange(len(rows)), rows][:, None]
                    scores[(fold, fam, split, v + "+max")] = float(((sims > own).sum(1) < 10)
                                                                   .mean())
        print(f"fold {fold}: test " + ", ".join(
            f"{v} {scores[(fold, fold, 'test', v)]:.3f}" for v in
            sorted({k[3] for k in scores if k[0] == fold})), flush=True)
    names = sorted({k[3] for k in scores})
    table = {}
    chosen = {}
    for fold in fams:
        val_other = {v: float(np.mean([scores[(fold, f, "val", v)] for f in fams if f != fold]))
                     for v in names}
        table[fold] = {"test": {v: scores[(fold, fold, "test", v)] for v in names},
                       "val_other": val_other}
        best = max((v for v in names if v != "oracle" and not v.startswith("oracle")),
                   key=lambda v: val_other[v])
        chosen[fold] = {"variant": best, "test": scores[(fold, fold, "test", best)]}
    out["table"] = table
    out["chosen"] = chosen
    out["chosen_test_mean"] = float(np.mean([c["test"] for c in chosen.values()]))
    out["test_mean"] = {v: float(np.mean([table[f]["test"][v] for f in fams])) for v in names}
    out["studio"] = studio_check(cached, models)
    out["load_end"] = os.getloadavg()
    out["seconds"] = time.perf_counter() - t0
    print(f"{'variant':<18}" + "".join(f"{f:>9}" for f in fams) + f"{'mean':>9}")
    for v in names:
        print(f"{v:<18}" + "".join(f"{table[f]['test'][v]:>9.3f}" for f in fams)
              + f"{out['test_mean'][v]:>9.3f}")
    print("chosen per fold on the other families' validation shots:",
          {f: c["variant"] for f, c in chosen.items()}, f"-> {out['chosen_test_mean']:.3f}")
    print("studio:", out["studio"])
    Path(args.out).write_text(json.dumps(out, indent=1, default=float))
    print("wrote", args.out)


if __name__ == "__main__":
    main()
