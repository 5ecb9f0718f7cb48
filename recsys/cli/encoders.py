"""Encoder commands: train-encoder, embed, search, eval-encoder, encoders."""

from __future__ import annotations

import argparse
import json
from typing import Any

from . import Context, Result, add_command
from ..errors import RecsysError

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

    p = add_command(sub, "search", search,
                    "Find the products nearest to a photo and/or a text query.")
    p.add_argument("--image", metavar="FILE", help="query photo")
    p.add_argument("--text", metavar="QUERY", help="query text")
    p.add_argument("--k", type=int, default=10, help="number of results (default 10)")
    p.add_argument("--image-weight", type=float, default=None,
                   help="weight of the products' photo vectors vs their text vectors, 0..1 "
                        "(default 1 for a photo alone, so an identical photo comes first; "
                        "else 0.5)")
    p.add_argument("--encoder", help="encoder whose vectors to search (default: the newest "
                                     "vectors of the dataset)")

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
                   help="instead: N held-out products as phone-style photos -> exact item "
                        "among the whole catalog, with and without the product crop")
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
    from ..encoders.catalog_clip import CatalogClipConfig, train_catalog_clip

    a = ctx.args
    cfg = CatalogClipConfig().to_dict()
    for key, value in (("epochs", a.epochs), ("image_trainable", a.image_trainable),
                       ("text_trainable", a.text_trainable), ("batch_size", a.batch_size),
                       ("max_items", a.max_items), ("seed", a.seed)):
        if value is not None:
            cfg[key] = value
    cfg.update(_set_values(a.set))
    dataset = ctx.dataset()
    with ctx.progress(f"align catalog-clip on {dataset}") as bar:
        info = train_catalog_clip(ctx.store(), dataset, CatalogClipConfig.from_dict(cfg), bar)
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


def _check_openclip_first(spec: str | None) -> None:
    """Missing OpenCLIP weights: fail before the heavy imports (well under 2 s in all)."""
    from ..encoders.registry import parse_spec

    parsed = parse_spec(spec)
    if parsed.kind == "openclip" and not parsed.version:
        from ..encoders.openclip_pretrained import resolve
        resolve(parsed)


def embed(ctx: Context) -> Result:
    _check_openclip_first(ctx.args.encoder)
    from ..embedding import embed_items

    dataset = ctx.dataset()
    with ctx.progress(f"embed {dataset}") as bar:
        rep = embed_items(ctx.store(), dataset, ctx.args.encoder, progress=bar,
                          batch_size=ctx.args.batch_size, force=ctx.args.force)
    return Result(rep.to_dict(), rep.summary())


def _search_encoder(store, dataset: str, spec: str | None):
    """The encoder whose stored vectors a search uses (and which encodes the query)."""
    from ..encoders import get_encoder
    from ..index import latest_encoder

    if spec is None:
        found = latest_encoder(store, dataset)
        if found is None:
            raise RecsysError(f"Dataset '{dataset}' has no item vectors yet: run "
                              f"`python -m recsys embed --dataset {dataset}` first.")
        spec = f"{found[0]}@{found[1]}"
    enc = get_encoder(spec, store, dataset)
    sets = store.embedding_sets(dataset)
    if not ((sets["encoder"] == enc.name) & (sets["version"] == enc.version)).any():
        raise RecsysError(f"Dataset '{dataset}' has no vectors from {enc.spec}: run "
                          f"`python -m recsys embed --dataset {dataset} --encoder {enc.spec}`.")
    return enc


def search(ctx: Context) -> Result:
    from ..catalog import item_category, with_items
    from ..index import ItemIndex

    a = ctx.args
    if not a.image and not a.text:
        raise RecsysError("Give a query: --image FILE, --text \"QUERY\", or both.")
    if a.k < 1:
        raise RecsysError("--k must be at least 1")
    if a.image_weight is None:
        a.image_weight = 1.0 if a.image and not a.text else 0.5
    if not 0.0 <= a.image_weight <= 1.0:
        raise RecsysError("--image-weight must be between 0 and 1")
    if a.encoder:
        _check_openclip_first(a.encoder)
    store = ctx.store()
    dataset = ctx.dataset()
    enc = _search_encoder(store, dataset, a.encoder)
    qi = enc.encode_image(a.image) if a.image else None
    qt = enc.encode_text(a.text) if a.text and a.text.strip() else None
    if qi is None and qt is None:
        raise RecsysError("The text query is empty.")
    index = ItemIndex.from_store(store, dataset, enc.name, enc.version)
    res = index.search(image=qi, text=qt, k=a.k, image_weight=a.image_weight)
    hits = with_items(store.items(dataset, res.item_ids), res)
    def num(v):
        return None if v is None or v != v else float(v)

    rows = [{"rank": int(h["rank"]), "item_id": h["item_id"], "score": num(h["score"]),
             "image_score": num(h["image_score"]), "text_score": num(h["text_score"]),
             "title": h.get("title"), "category": item_category(h),
             "image_path": h.get("image_path")} for h in hits.to_dict("records")]
    query = {"image": a.image, "text": a.text, "image_weight": a.image_weight}
    lines = [f"Top {len(rows)} of {len(index):,} products in '{dataset}' for "
             + " + ".join(x for x in (f"photo {a.image}" if a.image else "",
                                      f"text {a.text!r}" if a.text else "") if x)
             + f" ({enc.spec}):"]
    for r in rows:
        parts = []
        if r["image_score"] is not None:
            parts.append(f"photo {r['image_score']:.3f}")
        if r["text_score"] is not None:
            parts.append(f"text {r['text_score']:.3f}")
        cat = f" [{r['category']}]" if r["category"] else ""
        lines.append(f"{r['rank']:>3}. {r['score']:.3f}  {r['item_id']:<10} {r['title']}{cat}"
                     f"  ({', '.join(parts)})")
    return Result({"dataset": dataset, "encoder": enc.spec, "query": query, "results": rows},
                  "\n".join(lines))


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
               ("i2i_precision@10", "photo -> photo same-category P@10"))


def eval_encoder(ctx: Context) -> Result:
    a = ctx.args
    if a.unseen_types is not None:
        return _eval_unseen(ctx)
    if a.phone_shots is not None:
        return _eval_phone(ctx)
    _check_openclip_first(ctx.args.encoder)
    from ..encoders.evaluate import evaluate_encoder

    baseline = None if (ctx.args.baseline or "").lower() in ("none", "") else ctx.args.baseline
    dataset = ctx.dataset()
    with ctx.progress(f"evaluate on {dataset}") as bar:
        ev = evaluate_encoder(ctx.store(), dataset, ctx.args.encoder, baseline=baseline,
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
               ("seen_wf1", "seen types (held-out items): wF1"),
               ("t2i_recall@10_seen", "name -> photo R@10, seen types"),
               ("t2i_recall@10_unseen", "name -> photo R@10, unseen types"))


def _eval_unseen(ctx: Context) -> Result:
    from ..encoders.evaluate_unseen import evaluate_unseen_types

    a = ctx.args
    if a.unseen_types < 1:
        raise RecsysError("--unseen-types must be at least 1")
    baseline = None if (a.baseline or "").lower() in ("none", "") else a.baseline
    config = _set_values(a.set)
    if a.max_items is not None:
        config["max_items"] = a.max_items
    dataset = ctx.dataset()
    with ctx.progress(f"held-out types on {dataset}") as bar:
        ev = evaluate_unseen_types(ctx.store(), dataset, a.unseen_types, a.seed, config,
                                   baseline=baseline, progress=bar)
    base = ev.baseline_metrics
    lines = [f"{ev.k} article types held out (seed {ev.seed}): {', '.join(ev.unseen_types)}",
             f"aligned on {ev.n_train:,} items without them; scored on "
             f"{int(ev.metrics.get('n_unseen_items', 0)):,} unseen-type items and "
             f"{int(ev.metrics.get('n_seen_items', 0)):,} held-out seen-type items",
             f"{'metric':<44}{'aligned':>9}" + (f"{'baseline':>10}" if base else "")]
    for key, label in UNSEEN_ROWS:
        if key in ev.metrics:
            lines.append(f"{label:<44}{ev.metrics[key]:>9.3f}"
                         + (f"{base[key]:>10.3f}" if key in base else ""))
    lines.append(f"(baseline {ev.baseline or 'none'}; {ev.seconds:.0f} s; run #{ev.run_id})")
    return Result(ev.to_dict(), "\n".join(lines))


def _eval_phone(ctx: Context) -> Result:
    _check_openclip_first(ctx.args.encoder)
    from ..encoders.evaluate_phone import evaluate_phone_shots

    a = ctx.args
    if a.phone_shots < 1:
        raise RecsysError("--phone-shots must be at least 1")
    dataset = ctx.dataset()
    with ctx.progress(f"phone shots on {dataset}") as bar:
        ev = evaluate_phone_shots(ctx.store(), dataset, a.encoder, a.phone_shots, a.seed,
                                  progress=bar)
    m = ev.metrics
    lines = [f"{ev.encoder}: {ev.n_queries} held-out products as phone-style photos (seed "
             f"{ev.seed}) searched among {ev.n_gallery:,} catalog photos",
             f"{'query':<26}{'exact R@1':>10}{'exact R@10':>11}{'same-type P@10':>16}"]
    for name, label in (("studio", "studio photo (ceiling)"), ("phone", "phone shot"),
                        ("phone_crop", "phone shot, cropped")):
        lines.append(f"{label:<26}{m[name + '_exact_recall@1']:>10.3f}"
                     f"{m[name + '_exact_recall@10']:>11.3f}"
                     f"{m[name + '_same_type_precision@10']:>16.3f}")
    lines.append(f"({ev.seconds:.0f} s; run #{ev.run_id})")
    return Result(ev.to_dict(), "\n".join(lines))


def list_encoders(ctx: Context) -> Result:
    store = ctx.store()
    frame = store.encoders()
    data: dict[str, Any] = {"encoders": frame.drop(columns=["config"]).to_dict("records"),
                            "vectors": {}}
    lines = ["Registered encoders (newest first):" if len(frame) else
             "No encoder registered yet: run `python -m recsys train-encoder`."]
    for r in frame.itertuples():
        lines.append(f"  {r.name}@{r.version:<28} {r.kind:<13} dataset {r.dataset or '-':<10} "
                     f"{r.created_at:%Y-%m-%d %H:%M}")
    for name in store.dataset_names():
        sets = store.embedding_sets(name)
        data["vectors"][name] = sets.to_dict("records")
        for s in sets.itertuples():
            lines.append(f"  vectors in '{name}': {s.encoder}@{s.version} {s.modality}: "
                         f"{s.n_items:,}")
    return Result(data, "\n".join(lines))
