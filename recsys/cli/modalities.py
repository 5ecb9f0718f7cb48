"""Modality commands: import-features (bring your own item vectors), modalities (list them)."""

from __future__ import annotations

import argparse

from . import Context, Result, add_command
from .data import _column_map, _import_result


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "import-features", import_features,
                    "Import precomputed item vectors as a modality: a .npy matrix with an id "
                    "mapping (MMRec: image_feat.npy / text_feat.npy beside i_id_mapping.csv), "
                    "or a Parquet/CSV table with an id column and a vector column.")
    p.add_argument("file", help=".npy, .parquet or .csv file")
    p.add_argument("--modality", required=True,
                   help="modality name (e.g. image, text, video, style): lower-case letters, "
                        "digits, - and _")
    p.add_argument("--ids", metavar="FILE",
                   help="id mapping of a .npy file (default: i_id_mapping.csv beside it, "
                        "else row r is item r)")
    p.add_argument("--column", action="append", default=[], metavar="FIELD=COLUMN",
                   help="name the item_id or vector column of a table (repeatable)")
    p.add_argument("--on-error", choices=["skip", "refuse"], default="skip",
                   help="skip problem rows (default) or refuse the whole import")

    add_command(sub, "modalities", modalities,
                "List the dataset's vector modalities (source, dimension, items).")


def import_features(ctx: Context) -> Result:
    from ..usecases import import_features as run

    args = ctx.args
    with ctx.progress("import features") as bar:
        report = run(ctx.store(), args.file, args.modality, args.dataset, ids=args.ids,
                     columns=_column_map(args.column) or None, on_error=args.on_error, progress=bar)
    return _import_result(report)


def modalities(ctx: Context) -> Result:
    from ..usecases import list_modalities

    dataset = ctx.dataset()
    rows = list_modalities(ctx.store(), dataset)
    lines = [f"Vector modalities of '{dataset}' (the set models use by default for each):"]
    if not rows:
        lines.append("  none: `python -m recsys embed` (photos, texts, videos) or "
                     "`python -m recsys import-features`.")
    for r in rows:
        lines.append(f"  {r['modality']:<12} {r['dim']:>6}-d  {r['items']:>8,} items  "
                     f"{r['spec']}{'  (imported)' if r['imported'] else ''}")
    return Result({"dataset": dataset, "modalities": rows}, "\n".join(lines))
