"""Data commands: init-demo, import-catalog, import-interactions, simulate, load-myntra, status,
use, delete-dataset."""

from __future__ import annotations

import argparse

from recsys.core.errors import RecsysError

from . import Context, Result, add_command


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "init-demo", init_demo,
                    "Generate the built-in demo catalog (drawn products) and simulate its users.",
                    dataset=False)
    p.add_argument("--items", type=int, default=320,
                   help="number of products (default 320; 24 to 5,000)")
    p.add_argument("--users", type=int, default=600,
                   help="simulated users (default 600; at most 100,000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="rebuild even if the demo exists")

    p = add_command(sub, "import-catalog", import_catalog,
                    "Import a product catalog: a Google Merchant Center feed (TSV or XML), a "
                    "Shopify products export, Myntra's styles.csv or a generic CSV/Parquet; "
                    "photos from a folder or downloaded by URL.")
    p.add_argument("file", nargs="?", help="the catalog file (or give it with --csv)")
    p.add_argument("--csv", help="catalog table (CSV, TSV, Parquet or an XML feed)")
    p.add_argument("--images", help="folder with the product photos (not for photos by URL)")
    p.add_argument("--format", choices=["auto", "merchant", "shopify", "generic", "myntra"],
                   default="auto", help="the file's format (default: detected from the file)")
    p.add_argument("--download-workers", type=int, default=16,
                   help="photos downloaded at once when photos are URLs (default 16)")
    p.add_argument("--on-error", choices=["skip", "refuse"], default="skip",
                   help="skip problem rows (default) or refuse the whole import")
    p.add_argument("--column", action="append", default=[], metavar="FIELD=COLUMN",
                   help="map a catalog field to a column, e.g. item_id=SKU or "
                        "image_path=photo (repeatable)")

    p = add_command(sub, "import-interactions", import_interactions,
                    "Import user-item interactions (MMRec .inter, split JSON, CSV, a GA4 export "
                    "or Shopify orders).")
    p.add_argument("path", help=".inter file, folder with train/val/test.json, or CSV file")
    p.add_argument("--format", choices=["mmrec", "json", "csv", "ga4", "shopify-orders"],
                   default="csv", help="csv (default), mmrec, json, ga4 (a GA4 BigQuery export "
                   "as NDJSON or Parquet) or shopify-orders (a Shopify orders CSV export; "
                   "e-mails kept only as salted hashes)")
    p.add_argument("--on-error", choices=["skip", "refuse"], default="skip")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--append", action="store_true",
                      help="add to the dataset's interactions instead of replacing them")
    mode.add_argument("--replace", action="store_true",
                      help="replace the dataset's interactions even when the file has fewer "
                           "(without it, an import that would remove more than it adds is "
                           "refused)")
    p.add_argument("--column", action="append", default=[], metavar="FIELD=COLUMN",
                   help="map user_id/item_id/event/ts/weight/split to a column (repeatable)")
    p.add_argument("--min-rating", type=float, metavar="STARS",
                   help="keep only rows rated at least this as positives (e.g. 4 for "
                        "MovieLens); the others are reported, not imported")

    p = add_command(sub, "simulate", simulate,
                    "Simulate users and their view/cart/purchase histories for a catalog.")
    p.add_argument("--users", type=int, default=2000,
                   help="simulated shoppers (default 2,000; at most 100,000)")
    p.add_argument("--seed", type=int, default=0)

    p = add_command(sub, "load-myntra", load_myntra,
                    "Import the Myntra sample (styles.csv + images/) and simulate its shoppers.",
                    dataset=False)
    p.add_argument("--folder", help="folder holding styles.csv and images/ (or its "
                                    "myntra_fashion/ subfolder; default: ../shared/datasets)")
    p.add_argument("--name", default="myntra", help="dataset name (default myntra)")
    p.add_argument("--users", type=int, default=2000,
                   help="simulated shoppers (default 2,000; at most 100,000)")
    p.add_argument("--seed", type=int, default=0)

    add_command(sub, "status", status, "Show datasets, table sizes, embeddings and runs.",
                dataset=False)
    p = add_command(sub, "use", use, "Make a dataset the active one.", dataset=False)
    p.add_argument("name")
    p = add_command(sub, "delete-dataset", delete_dataset,
                    "Delete a dataset with its items, users, interactions, vectors and runs.",
                    dataset=False)
    p.add_argument("name")
    p.add_argument("--yes", action="store_true", help="confirm the deletion")


def _column_map(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        field, sep, column = pair.partition("=")
        if not sep or not field or not column:
            raise RecsysError(f"--column expects FIELD=COLUMN, got {pair!r}")
        out[field.strip()] = column.strip()
    return out


def _import_result(report) -> Result:
    return Result(report.to_dict(), report.summary(), exit_code=1 if report.refused else 0)


def init_demo(ctx: Context) -> Result:
    from ..usecases import init_demo as run

    with ctx.progress("demo catalog") as bar:
        info = run(ctx.store(), ctx.args.items, ctx.args.users, ctx.args.seed, ctx.args.force,
                   progress=bar)
    text = (f"Demo dataset '{info['dataset']}': {info['items']:,} products drawn, "
            f"{info['users']:,} users, {info['interactions']:,} interactions"
            + (" (already there; use --force to rebuild)." if info.get("existing") else "."))
    return Result(info, text)


def import_catalog(ctx: Context) -> Result:
    from ..usecases import import_catalog as run

    from ..data.downloads import DownloadSettings

    args = ctx.args
    table = args.file or args.csv
    if not table or (args.file and args.csv and args.file != args.csv):
        raise RecsysError("Give the catalog file once: `import-catalog FILE` (or --csv FILE).")
    if not 1 <= args.download_workers <= 64:
        raise RecsysError("--download-workers must be between 1 and 64.")
    with ctx.progress("import catalog") as bar:
        report = run(ctx.store(), table, args.images, fmt=args.format, dataset=args.dataset,
                     on_error=args.on_error, columns=_column_map(args.column), progress=bar,
                     download=DownloadSettings(workers=args.download_workers))
    return _import_result(report)


def import_interactions(ctx: Context) -> Result:
    from ..usecases import import_interactions as run

    args = ctx.args
    with ctx.progress("import interactions") as bar:
        report = run(ctx.store(), args.path, fmt=args.format, dataset=args.dataset,
                     on_error=args.on_error, columns=_column_map(args.column),
                     append=args.append, replace=args.replace, progress=bar,
                     **({"min_rating": args.min_rating} if args.min_rating is not None else {}))
    return _import_result(report)


def simulate(ctx: Context) -> Result:
    from ..usecases import simulate as run

    with ctx.progress("simulate users") as bar:
        info = run(ctx.store(), ctx.args.dataset, ctx.args.users, ctx.args.seed, bar)
    text = (f"Simulated {info['users']:,} users for '{info['dataset']}' "
            f"({info['users_with_history']:,} with a history): {info['views']:,} views, "
            f"{info['carts']:,} carts, {info['purchases']:,} purchases over "
            f"{info['items_touched']:,} items.")
    return Result(info, text)


def load_myntra(ctx: Context) -> Result:
    from ..usecases import load_myntra_sample

    args = ctx.args
    with ctx.progress("load the Myntra sample") as bar:
        info = load_myntra_sample(ctx.store(), args.folder, dataset=args.name, users=args.users,
                                  seed=args.seed, progress=bar)
    text = (f"Loaded '{info['dataset']}' from {info['source']}: {info['items']:,} products, "
            f"{info['users']:,} simulated shoppers with {info['interactions']:,} events, in "
            f"{info['seconds']:.0f} s. Next: `python -m recsys train --model late-fusion "
            f"--dataset {info['dataset']}` (aligns the encoder and embeds the photos first).")
    return Result(info, text)


def status(ctx: Context) -> Result:
    from ..usecases import status as run

    data = run(ctx.store())
    lines = [f"Database: {data['database']}"]
    if not data["datasets"]:
        lines.append("No datasets yet: run `python -m recsys init-demo` or import a catalog.")
    for d in data["datasets"]:
        mark = "*" if d["name"] == data["active_dataset"] else " "
        lines.append(f"{mark} {d['name']:<12} {d['kind']:<13} items {d['items']:>7,}  "
                     f"(photos {d['items_with_images']:,})  users {d['users']:>7,}  "
                     f"interactions {d['interactions']:>9,}  runs {d['runs']:>3}")
        for e in d["embeddings"]:
            lines.append(f"      vectors {e['encoder']}@{e['version']} {e['modality']}: "
                         f"{e['n_items']:,}")
    lines.append(_disk_text(data["disk"]))
    return Result(data, "\n".join(lines))


def _disk_text(disk: dict) -> str:
    """Disk use on two lines: the total, then each kind with its files."""
    from recsys.recommend.housekeeping import format_bytes

    parts = [f"{label} {format_bytes(disk[key])}"
             + (f" ({disk[count]:,} file{'' if disk[count] == 1 else 's'})"
                if count and disk[count] else "")
             for label, key, count in (("database", "database", None),
                                       ("models", "models", "model_files"),
                                       ("encoders", "encoders", "encoder_files"),
                                       ("search indexes", "indexes", "index_files"),
                                       ("other", "other", None))]
    return (f"Disk use: {format_bytes(disk['total'])} (files in {disk['artifacts_dir']})\n"
            f"  {', '.join(parts)}; old model files: `python -m recsys prune-models`")


def use(ctx: Context) -> Result:
    from ..usecases import use_dataset

    name = use_dataset(ctx.store(), ctx.args.name)
    return Result({"active_dataset": name}, f"Active dataset: {name}")


def delete_dataset(ctx: Context) -> Result:
    from ..usecases import delete_dataset as run

    info = run(ctx.store(), ctx.args.name, confirm=ctx.args.yes)
    from recsys.recommend.housekeeping import format_bytes

    files = info.get("files_deleted", 0)
    freed = f" and {files:,} file{'' if files == 1 else 's'} ({format_bytes(info['bytes_freed'])})" \
        if files else ""
    return Result(info, f"Deleted dataset '{info['deleted']}'{freed}.")
