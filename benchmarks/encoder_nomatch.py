""""No close match": calibrated per catalog, measured on queries it was not calibrated on.

Runs the package's protocol (`recsys.encoders.evaluate_nomatch.nomatch_rates`, the one
`eval-encoder --no-match` prints) on photo vectors computed from the frozen-tower feature cache
(`benchmarks/phone_cache.py`): both decisions (the shipped logistic `match_decision` and the
single threshold `match_threshold` it replaced) are calibrated on the non-held-out photos only
(7,672 on Myntra) and scored on the 1,911 held-out ones, which they never saw:

- *off-catalog*: each held-out photo against the catalog with its own article type removed (the
  shop does not sell that kind of thing): should fire (target >= 80%);
- *catalog, new product*: held-out photos against the whole catalog minus themselves (a new
  product of a kind the shop sells): should not fire (target <= 5%);
- *catalog photo*: a catalog photo with its product in the index;
- *phone shots* of the first 500 held-out products (each family in the cache; visual search's
  vector: the shot fused with its grabcut crop, `benchmarks/phone_crop.py`), product in the
  catalog (should not fire) and its type removed (should): reported.

Columns: the shipped decision (neighbours + type names + open vocabulary), "names only" (the
decision before the open vocabulary) with the paired bootstrap CI of their difference, and the
single threshold.

The encoder is trained here from the cache (shipped settings, or --set) or a registered one is
used (--encoder). `--store-vectors` writes its photo vectors into --db so that
`python -m recsys eval-encoder --no-match --encoder <spec>` reads them (no second tower pass).

    python benchmarks/phone_cache.py --db data/recsys.duckdb --out data/cache/phone \
        --view-splits heldout --view-max 500
    python benchmarks/encoder_nomatch.py --db data/recsys.duckdb --set '{"augment_views": 0}'
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
from recsys.encoders.match_threshold import DEFAULT_FALSE_ALARM  # noqa: E402
from recsys.store import Store  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--dataset", default="myntra")
    parser.add_argument("--cache", default=str(ROOT / "data/cache/phone"))
    parser.add_argument("--set", help="CatalogClipConfig fields as JSON (trained here)")
    parser.add_argument("--encoder", help="a registered catalog-clip instead of training")
    parser.add_argument("--false-alarm", type=float, default=DEFAULT_FALSE_ALARM)
    parser.add_argument("--store-vectors", action="store_true",
                        help="store the encoder's photo vectors (from the cache) in --db, for "
                             "`eval-encoder --no-match`")
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/"
                                              "encoders-myntra-nomatch.json"))
    args = parser.parse_args()

    import torch
    torch.set_num_threads(int(os.environ.get("RECSYS_ENCODER_THREADS", "1")))
    from recsys.encoders import get_encoder
    from recsys.encoders.catalog_clip import train_catalog_clip
    from recsys.encoders.evaluate_phone import head_vectors
    from recsys.encoders.evaluate_nomatch import calibrate_both, decide, nomatch_rates, \
        single_close
    from recsys.encoders.match_decision import calibrate_match_model
    from recsys.encoders.type_names import type_texts_of
    from recsys.encoders.query_photo import fuse

    from phone_crop import crop_features

    cached = CachedFeatures(args.cache)
    out: dict = {"load_start": os.getloadavg()}
    spec = args.encoder
    store = Store(args.db)
    if spec is None:
        with console_progress("train-encoder (cached features)") as bar:
            spec = train_catalog_clip(store, args.dataset, json.loads(args.set or "{}"),
                                      bar, features=cached).spec
    enc = get_encoder(spec, store, args.dataset)
    out["encoder"] = spec
    labels = np.asarray(cached.meta["article_type"], dtype=object)
    splits = np.asarray(cached.meta["splits"])
    vec = head_vectors(enc.model, cached.studio)
    heldout = splits == "heldout"
    validation = splits == "val"           # the shipped decision's cut-off: never trained on
    texts = type_texts_of(enc, sorted({str(t) for t in labels if t}))
    if args.store_vectors:
        # the photo vectors `embed` would store (the same head over the same frozen features),
        # so that `eval-encoder --no-match` reads them instead of running the image tower again
        items = store.items(args.dataset).set_index("item_id")
        ids = [str(i) for i in cached.meta["item_ids"]]
        store.upsert_embeddings(args.dataset, enc.name, enc.version, "image", ids, vec,
                                [items.loc[i, "content_hash"] for i in ids])
        print(f"stored {len(ids):,} photo vectors of {spec}")
    store.close()
    t0 = time.perf_counter()
    metrics, per_type = nomatch_rates(vec, labels, heldout, args.false_alarm, 0, texts,
                                      validation)
    out["seconds_held_out"] = time.perf_counter() - t0
    out["metrics"], out["per_type"] = metrics, per_type
    print(f"{spec}: calibrated on {int((~heldout).sum()):,} photos, scored on "
          f"{int(heldout.sum()):,} held-out ones (false alarm {args.false_alarm}); fire rates:")
    print(f"{'query':<36}{'shipped model':>15}{'names only':>12}{'single threshold':>18}")
    for key in ("off_catalog", "catalog_new_product", "catalog_photo"):
        names = metrics.get("names:" + key, float("nan"))
        print(f"{key:<36}{metrics['model:' + key]:>15.3f}{names:>12.3f}"
              f"{metrics['threshold:' + key]:>18.3f}")
    for key in ("off_catalog", "catalog_new_product"):
        if f"model_vs_names:{key}" in metrics:
            print(f"  shipped minus names only, {key}: {metrics['model_vs_names:' + key]:+.3f} "
                  f"[{metrics['model_vs_names:' + key + '_lo']:+.3f}, "
                  f"{metrics['model_vs_names:' + key + '_hi']:+.3f}] (paired bootstrap 95%)")
    # phone shots of the first 500 held-out products (visual search's vector: the shot fused
    # with its crop), product in the catalog and its type removed
    if cached.families:
        model, _, single, cent = calibrate_both(vec, labels, heldout, args.false_alarm, 0,
                                                texts, validation)
        names = calibrate_match_model(vec[~heldout], labels[~heldout], args.false_alarm,
                                      texts=texts.without_open(),
                                      validation=validation[~heldout])
        rows = np.flatnonzero(heldout)[:500]
        lab_r = labels[rows]
        none = None
        own_type = lambda a, b: labels[None, :] == lab_r[a:b, None]  # noqa: E731
        phone = {}
        for fam in cached.families:
            full = head_vectors(enc.model, cached.view[fam][rows])
            part = head_vectors(enc.model, crop_features(cached, "grabcut", fam, rows)[0])
            q = fuse(full, part)
            typed = lab_r != ""
            phone[fam] = {
                "model:in_catalog": float((~decide(model, vec, labels, cent, q, none,
                                                   texts=texts)).mean()),
                "model:off_catalog": float((~decide(model, vec, labels, cent, q,
                                                    own_type, remove=lab_r,
                                                    texts=texts))[typed].mean()),
                "names:in_catalog": float((~decide(names, vec, labels, cent, q, none,
                                                   texts=texts)).mean()),
                "names:off_catalog": float((~decide(names, vec, labels, cent, q,
                                                    own_type, remove=lab_r,
                                                    texts=texts))[typed].mean()),
                "threshold:in_catalog": float((~single_close(single, vec, q, none)).mean()),
                "threshold:off_catalog": float((~single_close(single, vec, q,
                                                              own_type))[typed].mean())}
        out["phone"] = phone
        print(f"phone shots ({len(rows)} held-out products x {len(phone)} families):")
        for key in ("in_catalog", "off_catalog"):
            print(f"  {key:<34}{np.mean([v['model:' + key] for v in phone.values()]):>15.3f}"
                  f"{np.mean([v['names:' + key] for v in phone.values()]):>12.3f}"
                  f"{np.mean([v['threshold:' + key] for v in phone.values()]):>18.3f}  "
                  + ", ".join(f"{f} {v['model:' + key]:.2f}" for f, v in phone.items()))
    print("  per type (off-catalog, shipped):", {t: round(v, 2) for t, v in per_type.items()})
    out["load_end"] = os.getloadavg()
    print(f"load {out['load_start'][0]:.1f} -> {out['load_end'][0]:.1f} "
          f"(1/5/15-min averages at the end: {', '.join(f'{x:.1f}' for x in out['load_end'])})")
    Path(args.out).write_text(json.dumps(out, indent=1, default=float))
    print("wrote", args.out)


if __name__ == "__main__":
    main()
