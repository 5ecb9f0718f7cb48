"""Encoder commands: train-encoder, embed, search, eval-encoder, encoders."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from recsys.core.errors import RecsysError
from recsys.encoders.match_threshold import DEFAULT_FALSE_ALARM
from recsys.search.vector_index import ANN_MIN_ITEMS, STORAGES
from recsys.vectors.embed_plan import ENGINES

from . import Context, Result, add_command

ENCODER_HELP = ("catalog-clip (default: the dataset's newest aligned checkpoint), "
                "catalog-clip@VERSION, frozen (unaligned towers), or "
                "openclip:ARCH/PRETRAINED_OR_CHECKPOINT_PATH")


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "train-encoder", train_encoder,
                    "Align the default CLIP encoder (EfficientNet-Lite0 + MiniLM) on the "
                    "dataset's photos and texts; saves and registers a checkpoint.")
    p.add_argument("--epochs", type=int, help="training epochs (default 30)")
    p.add_argument("--image-trainable", type=int, metavar="N",
                   help="top EfficientNet stages to train, 0 = projection only (default 0)")
    p.add_argument("--text-trainable", type=int, metavar="N",
                   help="top MiniLM layers to train, 0 = projection only (default 0)")
    p.add_argument("--batch-size", type=int, help="contrastive batch size (default 256)")
    p.add_argument("--max-items", type=int, help="train on at most N items (quick trials)")
    p.add_argument("--seed", type=int)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any CatalogClipConfig field, e.g. --set lr_head=0.001 (JSON values)")

    p = add_command(sub, "embed", embed,
                    "Embed the items' photos and captions (only new or changed items).")
    p.add_argument("--encoder", help=ENCODER_HELP)
    p.add_argument("--force", action="store_true", help="re-embed every item")
    p.add_argument("--batch-size", type=int, default=64, help="photos per batch (default 64)")
    p.add_argument("--videos", metavar="FOLDER",
                   help="folder of product videos named by item id (<item_id>.mp4, .webm...): "
                        "their sampled frames become the video modality")
    p.add_argument("--engine", choices=ENGINES, default="local",
                   help="local: in this process (default); ray: a Ray Data pipeline on local "
                        "Ray or a cluster, resumable, with throughput per worker")
    p.add_argument("--ray-address", metavar="ADDR",
                   help="--engine ray: join the Ray cluster at ADDR (HOST:PORT or auto) "
                        "instead of starting local Ray")
    p.add_argument("--workers", type=int, metavar="N",
                   help="--engine ray: encoder workers, one CPU each (default: every CPU)")

    p = add_command(sub, "search", search,
                    "Find the products nearest to a photo, a catalog product and/or words.")
    p.add_argument("--image", metavar="FILE", help="query photo")
    p.add_argument("--video", metavar="FILE", help="query video (mp4, webm...): a few frames, "
                                                   "pooled, searched like a photo")
    p.add_argument("--item", metavar="ITEM_ID", help="query catalog product (its photo and text)")
    p.add_argument("--text", metavar="QUERY", help="query words (alone, or refining the photo "
                                                   "or product)")
    p.add_argument("--k", type=int, default=10, help="number of results (default 10)")
    p.add_argument("--image-weight", type=float, default=None,
                   help="weight of the products' photo vectors vs their text vectors, 0..1 "
                        "(default 1 for a photo, so an identical photo comes first; else 0.7)")
    p.add_argument("--filter", action="append", default=[], metavar="COLUMN=VALUE",
                   help="only products with this value, e.g. --filter gender=Women "
                        "(repeatable; several values of one column: any of them)")
    p.add_argument("--price", nargs=2, type=float, metavar=("LOW", "HIGH"),
                   help="only products priced LOW..HIGH (products without a price pass)")
    p.add_argument("--encoder", help="encoder whose vectors to search (default: the newest "
                                     "vectors of the dataset)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--exact", dest="method", action="store_const", const="exact",
                     help="score every product (default: the approximate index above "
                          f"{ANN_MIN_ITEMS:,} products, else exact)")
    how.add_argument("--ann", dest="method", action="store_const", const="ann",
                     help="use the approximate index (catalogs above "
                          f"{ANN_MIN_ITEMS:,} products)")
    p.add_argument("--storage", choices=STORAGES,
                   help="index vectors as float32 or float16 (half the memory and time of an "
                        "exact search; default $RECSYS_INDEX_STORAGE or float32)")
    p.add_argument("--no-crop", action="store_true",
                   help="search with the photo as it is (default: cropped to the product first, "
                        "which helps phone photos and leaves studio photos alone)")

    p = add_command(sub, "eval-encoder", eval_encoder,
                    "Score an encoder on the held-out 20%% of the catalog (retrieval, "
                    "category by prompt: in-distribution, the type words occur in training "
                    "captions; image-to-image), next to the untrained ConSE baseline; or on "
                    "held-out types (--unseen-types) or phone-style photos (--phone-shots).")
    p.add_argument("--encoder", help=ENCODER_HELP)
    p.add_argument("--baseline", default="conse",
                   help="encoder to compare with (default conse: untrained top-10 ImageNet "
                        "class names in MiniLM space; frozen; 'none' to skip)")
    p.add_argument("--unseen-types", type=int, metavar="K",
                   help="instead: hold out K whole article types (>= 20 photos each), align "
                        "on the rest and score them (a few minutes)")
    p.add_argument("--phone-shots", type=int, metavar="N",
                   help="instead: N held-out products as phone-style photos of each of five "
                        "independent families -> exact item among the whole catalog, with and "
                        "without the product crop; an aligned encoder is re-aligned once per "
                        "family without that family's augmentation (leave one family out; "
                        "tens of minutes)")
    p.add_argument("--no-match", action="store_true",
                   help="instead: \"no close match\" calibrated on the catalog minus the "
                        "held-out 20%%, scored on those photos with their article type removed "
                        "(off-catalog: should fire) and as new products of a sold type (should "
                        "not); the shipped decision beside the single threshold (seconds with "
                        "stored photo vectors)")
    p.add_argument("--false-alarm", type=float, default=DEFAULT_FALSE_ALARM,
                   help="--no-match: share of products of a sold type the calibration may "
                        f"call \"no close match\" (default {DEFAULT_FALSE_ALARM:g})")
    p.add_argument("--families", nargs="+", metavar="FAMILY",
                   help="--phone-shots: only these families (default all five: collage room "
                        "bokeh noise flatlay)")
    p.add_argument("--seed", type=int, default=0,
                   help="which types are held out / which phone shots (default 0)")
    p.add_argument("--max-items", type=int,
                   help="--unseen-types: align on at most N items (quick trials)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="--unseen-types: CatalogClipConfig field for the alignment")

    add_command(sub, "encoders", list_encoders,
                "List registered encoders and the item vectors stored per dataset.",
                dataset=False)


def _set_values(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise RecsysError(f"--set expects KEY=VALUE, got {pair!r}")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


def train_encoder(ctx: Context) -> Result:
    from ..usecases import train_encoder as run

    args = ctx.args
    settings = {key: value for key, value in (
        ("epochs", args.epochs), ("image_trainable", args.image_trainable),
        ("text_trainable", args.text_trainable), ("batch_size", args.batch_size),
        ("max_items", args.max_items), ("seed", args.seed)) if value is not None}
    settings.update(_set_values(args.set))
    dataset = ctx.dataset()
    with ctx.progress(f"align catalog-clip on {dataset}") as bar:
        info = run(ctx.store(), dataset, settings, bar)
    m = info.metrics
    cfgd = info.config
    lines = [f"Trained {info.spec} on '{dataset}' in {info.seconds:.0f} s "
             f"({cfgd['n_train']:,} training items, {cfgd['n_val']:,} validation, "
             f"{cfgd['n_heldout']:,} held out for eval-encoder).",
             f"  epochs {m['epochs']}, final train loss {m['train_loss']:.3f}, "
             f"val loss {m['val_loss']:.3f}" if m.get("val_loss") is not None else
             f"  epochs {m['epochs']}, final train loss {m['train_loss']:.3f}"]
    if "val_t2i_r10" in m:
        lines.append(f"  validation: name->photo Recall@10 {m['val_t2i_r10']:.3f}"
                     + (f", zero-shot category accuracy {m['val_zeroshot_acc']:.3f}"
                        if "val_zeroshot_acc" in m else ""))
    lines += [f"  checkpoint: {info.path}  (run #{info.run_id})",
              f"Next: python -m recsys embed --dataset {dataset}"]
    return Result(info.to_dict(), "\n".join(lines))


def embed(ctx: Context) -> Result:
    from ..usecases import embed as run

    dataset = ctx.dataset()
    with ctx.progress(f"embed {dataset}") as bar:
        rep = run(ctx.store(), dataset, ctx.args.encoder, progress=bar,
                  batch_size=ctx.args.batch_size, force=ctx.args.force, videos=ctx.args.videos,
                  engine=ctx.args.engine, ray_address=ctx.args.ray_address,
                  workers=ctx.args.workers)
    return Result(rep.to_dict(), rep.summary())


def _filters(pairs: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for pair in pairs:
        column, sep, value = pair.partition("=")
        if not sep or not column.strip():
            raise RecsysError(f"--filter expects COLUMN=VALUE, got {pair!r}")
        out.setdefault(column.strip(), []).append(value.strip())
    return out


def search(ctx: Context) -> Result:
    from ..usecases import search_similar

    args = ctx.args
    hits = search_similar(ctx.store(), args.dataset, photo=args.image, text=args.text,
                          item_id=args.item, image_weight=args.image_weight, k=args.k,
                          filters=_filters(args.filter),
                          price=tuple(args.price) if args.price else None, encoder=args.encoder,
                          method=args.method or "auto", storage=args.storage, crop=not args.no_crop,
                          video=args.video)
    for note in hits.notes:                 # e.g. the index could not be saved: disk full
        print(f"note: {note}", file=sys.stderr)
    rows = hits.rows()
    query = " + ".join(x for x in (f"photo {args.image}" if args.image else "",
                                   f"video {args.video}" if args.video else "",
                                   f"product {args.item}" if args.item else "",
                                   f"text {args.text!r}" if args.text else "") if x)
    took = ", ".join(f"{name} {1000 * sec:.0f} ms" for name, sec in hits.timings.items())
    lines = [f"Top {len(rows)} of {hits.items:,} products in '{hits.dataset}' for {query} "
             f"({hits.encoder}, image weight {hits.image_weight:g}; {hits.method} search: "
             f"{took}):"]
    if hits.crop is not None:
        box = hits.crop["box"]
        lines.insert(0, f"crop: {'box ' + str(tuple(box)) if box else 'none'} "
                        f"({hits.crop['reason']})")
    if hits.close_match is not None:
        c = hits.close_match
        lines.insert(0, ("No close match — similar styles" if not c["close"] else "close match")
                     + f" (closeness {c['score']:.2f} against the catalog's cut-off "
                       f"{c['threshold']:.2f}; mean of the 10 best photo scores "
                       f"{c.get('best10', float('nan')):.3f})")
    for r in rows:
        parts = []
        if r["image_score"] is not None:
            parts.append(f"photo {r['image_score']:.3f}")
        if r["text_score"] is not None:
            parts.append(f"text {r['text_score']:.3f}")
        cat = f" [{r['category']}]" if r["category"] else ""
        lines.append(f"{r['rank']:>3}. {r['score']:.3f}  {r['item_id']:<10} {r['title']}{cat}"
                     f"  ({', '.join(parts)})")
    return Result(hits.to_dict(), "\n".join(lines))


METRIC_ROWS = (("t2i_recall@1", "name -> photo Recall@1"),
               ("t2i_recall@5", "name -> photo Recall@5"),
               ("t2i_recall@10", "name -> photo Recall@10"),
               ("t2i_mrr", "name -> photo MRR"),
               ("i2t_recall@1", "photo -> name Recall@1"),
               ("i2t_recall@5", "photo -> name Recall@5"),
               ("i2t_recall@10", "photo -> name Recall@10"),
               ("i2t_mrr", "photo -> name MRR"),
               ("zeroshot_accuracy", "category by prompt, accuracy (in-dist.)"),
               ("zeroshot_weighted_f1", "category by prompt, weighted F1 (in-dist.)"),
               ("zeroshot_macro_f1", "category by prompt, macro F1 (in-dist.)"),
               ("zeroshot_calibrated_weighted_f1", "  same, calibrated stacking: wF1"),
               ("i2i_precision@10", "photo -> photo same-category P@10"))


def eval_encoder(ctx: Context) -> Result:
    args = ctx.args
    if args.unseen_types is not None:
        return _eval_unseen(ctx)
    if args.phone_shots is not None:
        return _eval_phone(ctx)
    if getattr(args, "no_match", False):
        return _eval_no_match(ctx)
    from ..usecases import eval_encoder as run

    dataset = ctx.dataset()
    with ctx.progress(f"evaluate on {dataset}") as bar:
        ev = run(ctx.store(), dataset, ctx.args.encoder, baseline=ctx.args.baseline,
                 progress=bar)
    base = ev.baseline_metrics
    head = f"{'metric':<36}{'aligned' if base else 'value':>10}"
    if base:
        head += f"{'baseline':>10}{'gain':>9}"
    lines = [f"{ev.encoder} on the held-out {ev.n_items:,} items of '{dataset}' "
             f"({ev.n_classes} categories from {ev.category_field or 'none'}); "
             f"baseline {ev.baseline or 'none'}:", head]
    for key, label in METRIC_ROWS:
        if key not in ev.metrics:
            continue
        line = f"{label:<36}{ev.metrics[key]:>10.3f}"
        if base and key in base:
            line += f"{base[key]:>10.3f}{ev.metrics[key] - base[key]:>+9.3f}"
        lines.append(line)
    lines.append(f"({ev.seconds:.0f} s; run #{ev.run_id})")
    return Result(ev.to_dict(), "\n".join(lines))


UNSEEN_ROWS = (("unseen_wf1", "unseen types, among the unseen names: wF1"),
               ("unseen_vs_all_wf1", "unseen types, against all types: wF1"),
               ("unseen_vs_all_accuracy", "unseen types, against all types: accuracy"),
               ("seen_wf1", "seen types (held-out items): wF1"),
               ("seen_accuracy", "seen types (held-out items): accuracy"),
               ("harmonic_accuracy", "harmonic mean of the two accuracies"),
               ("t2i_recall@10_seen", "name -> photo R@10, seen types"),
               ("t2i_recall@10_unseen", "name -> photo R@10, unseen types"))


def _eval_unseen(ctx: Context) -> Result:
    from ..usecases import eval_encoder_unseen_types as run

    args = ctx.args
    config = _set_values(args.set)
    if args.max_items is not None:
        config["max_items"] = args.max_items
    dataset = ctx.dataset()
    with ctx.progress(f"held-out types on {dataset}") as bar:
        ev = run(ctx.store(), dataset, args.unseen_types, args.seed, config, baseline=args.baseline,
                 progress=bar)
    base, m = ev.baseline_metrics, ev.metrics
    calibrated = "calibration_gamma" in m
    replaced = [f"  replaced draw {', '.join(r['unseen_types'])}: names leak through other "
                "types' texts (" + "; ".join(f"{name} in {sum(v.values())} "
                                              f"{'/'.join(list(v)[:2])} items"
                                              for name, v in r["leaks"].items()) + ")"
                for r in ev.replaced_draws]
    lines = replaced + [
             f"{ev.k} article types held out (seed {ev.seed}): {', '.join(ev.unseen_types)}",
             f"aligned on {ev.n_train:,} items without them; scored on "
             f"{int(m.get('n_unseen_items', 0)):,} unseen-type items and "
             f"{int(m.get('n_seen_items', 0)):,} held-out seen-type items",
             f"{'metric':<44}{'aligned':>9}" + (f"{'calibr.':>9}" if calibrated else "")
             + (f"{'baseline':>10}" if base else "")]
    for key, label in UNSEEN_ROWS:
        if key in m:
            cal = m.get(f"{key}_calibrated")
            lines.append(f"{label:<44}{m[key]:>9.3f}"
                         + ((f"{cal:>9.3f}" if cal is not None else f"{'':>9}")
                            if calibrated else "")
                         + (f"{base[key]:>10.3f}" if key in base else ""))
    calib = ev.calibration or {}
    draws = (calib.get("validation") or {}).get("pseudo_unseen_types") or []
    chosen_on = "; ".join(", ".join(d) for d in draws)
    if calibrated:
        lines.append(f"calibr. = calibrated stacking: {m['calibration_gamma']:.4f} subtracted from "
                     f"the scores of the {len(calib.get('seen_types', []))} types aligned on; "
                     f"chosen on pseudo-unseen validation types ({chosen_on})")
    elif calib.get("note"):
        lines.append(f"no calibrated numbers: {calib['note']}")
    else:
        lines.append("no calibrated numbers: gamma 0 was best on the pseudo-unseen validation "
                     f"types ({chosen_on})")
    lines.append(f"(baseline {ev.baseline or 'none'}; {ev.seconds:.0f} s; run #{ev.run_id})")
    return Result(ev.to_dict(), "\n".join(lines))


PHONE_ROWS = (("phone_", "phone shot"), ("phone_crop_", "phone shot, cropped"),
              ("noaug_phone_", "  no augmentation"), ("noaug_phone_crop_",
                                                      "  no augmentation, cropped"),
              ("conse_phone_", "  ConSE (untrained)"), ("conse_phone_crop_",
                                                        "  ConSE, cropped"),
              ("trained_phone_crop_", "  aligned with it, cropped*"))


def _eval_phone(ctx: Context) -> Result:
    from ..usecases import eval_encoder_phone_shots as run

    args = ctx.args
    dataset = ctx.dataset()
    with ctx.progress(f"phone shots on {dataset}") as bar:
        ev = run(ctx.store(), dataset, args.encoder, args.phone_shots, args.seed, progress=bar,
                 families=args.families)
    m = ev.metrics
    fams = list(ev.families)
    held = ev.protocol == "held-out family"
    lines = [f"{ev.encoder}: {ev.n_queries} held-out products as phone-style photos of "
             f"{len(fams)} families (seed {ev.seed}) searched among {ev.n_gallery:,} catalog "
             f"photos; {ev.protocol}" + (": each family scored by an alignment that never saw "
                                         "its shots" if held else ""),
             "exact-item Recall@10:",
             f"{'query':<30}" + "".join(f"{f:>9}" for f in fams) + f"{'mean':>9}"]
    for prefix, label in PHONE_ROWS:
        key = f"{prefix}exact_recall@10"
        if key not in m:
            continue
        lines.append(f"{label:<30}" + "".join(
            f"{m.get(f'family:{f}:{key}', float('nan')):>9.3f}" for f in fams)
            + f"{m[key]:>9.3f}")
    lines.append(f"{'  share cropped':<30}" + "".join(
        f"{m.get(f'family:{f}:crop_rate', float('nan')):>9.2f}" for f in fams))
    lines.append(f"{'query':<30}{'exact R@1':>10}{'exact R@10':>11}{'same-type P@10':>16}")
    for name, label in (("studio", "studio photo (ceiling)"),
                        ("studio_crop", "studio photo, crop on"), ("phone", "phone shot"),
                        ("phone_crop", "phone shot, cropped")):
        if f"{name}_exact_recall@10" in m:
            lines.append(f"{label:<30}{m[name + '_exact_recall@1']:>10.3f}"
                         f"{m[name + '_exact_recall@10']:>11.3f}"
                         f"{m[name + '_same_type_precision@10']:>16.3f}")
    if "family:" + fams[0] + ":trained_phone_crop_exact_recall@10" in m:
        lines.append("* the encoder itself, aligned with every family's shots: not a held-out "
                     "number")
    lines.append(f"({ev.seconds:.0f} s; run #{ev.run_id})")
    return Result(ev.to_dict(), "\n".join(lines))


NO_MATCH_ROWS = (("off_catalog", "off-catalog (type removed): should fire", "≥ 0.80"),
                 ("catalog_new_product", "new product of a sold type", "≤ 0.05"),
                 ("catalog_photo", "catalog photo (in the index)", "≤ 0.05"))


def _eval_no_match(ctx: Context) -> Result:
    from ..usecases import eval_encoder_no_match as run

    args = ctx.args
    dataset = ctx.dataset()
    with ctx.progress(f"no close match on {dataset}") as bar:
        ev = run(ctx.store(), dataset, args.encoder, args.false_alarm, args.seed, progress=bar)
    m = ev.metrics
    lines = [f"{ev.encoder}: \"no close match\" calibrated on {ev.n_calibration:,} photos of "
             f"'{dataset}' (false alarm {ev.false_alarm:g}), scored on the {ev.n_queries:,} "
             f"held-out photos it never saw; share told \"no close match\":",
             f"{'query':<42}{'shipped':>9}{'names only':>12}{'neighbours':>12}"
             f"{'threshold':>11}{'target':>9}"]
    for key, label, target in NO_MATCH_ROWS:
        cells = [m.get(f"{kind}:{key}") for kind in ("names", "neighbours")]
        lines.append(f"{label:<42}{m['model:' + key]:>9.3f}"
                     + "".join(f"{'-' if c is None else format(c, '.3f'):>12}" for c in cells)
                     + f"{m['threshold:' + key]:>11.3f}{target:>9}")
    for key, label, _ in NO_MATCH_ROWS:
        if f"model_vs_names:{key}" in m:
            diff = [m[f"model_vs_names:{key}{end}"] for end in ("", "_lo", "_hi")]
            lines.append(f"shipped minus names only, {label.lower()}: {diff[0]:+.3f} "
                         f"[{diff[1]:+.3f}, {diff[2]:+.3f}] (paired, 95%)")
    names = " and the encoder's confidence in the photo's type" \
        if m.get("model:uses_type_names") else ""
    if m.get("model:uses_open_vocabulary"):
        names += (" and whether the photo looks more like a product type the catalog lacks "
                  "(a broad list of type names)")
    cut = f"cut-off on {int(m.get('model:n_cutoff', 0)):,} photos the encoder never trained on" \
        if m.get("model:cutoff_on_validation") else "cut-off on the calibration queries"
    lines.append(f"shipped: logistic decision over the 10 best scores, their types, the type "
                 f"centroids{names} ({cut}); "
                 + ("names only: the same without the broad list; "
                    if m.get("model:uses_open_vocabulary") else "")
                 + "neighbours: the same without the type names, "
                 "cut-off on the calibration queries; threshold: mean of the 10 best scores")
    worst = sorted(ev.per_type.items(), key=lambda kv: kv[1])[:5]
    if worst:
        lines.append("off-catalog types caught least: " + ", ".join(f"{t} {v:.2f}"
                                                                    for t, v in worst))
    lines.append(f"({ev.seconds:.0f} s; run #{ev.run_id})")
    return Result(ev.to_dict(), "\n".join(lines))


def list_encoders(ctx: Context) -> Result:
    from ..usecases import list_encoders as run

    data = run(ctx.store())
    lines = ["Registered encoders (newest first):" if data["encoders"] else
             "No encoder registered yet: run `python -m recsys train-encoder`."]
    for r in data["encoders"]:
        lines.append(f"  {r['name']}@{r['version']:<28} {r['kind']:<13} dataset "
                     f"{r['dataset'] or '-':<10} {r['created_at']:%Y-%m-%d %H:%M}")
    for name, sets in data["vectors"].items():
        for s in sets:
            lines.append(f"  vectors in '{name}': {s['encoder']}@{s['version']} "
                         f"{s['modality']}: {s['n_items']:,}")
    return Result(data, "\n".join(lines))
