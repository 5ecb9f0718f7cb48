"""Importers: product catalogs (generic CSV/Parquet, Myntra) and interaction logs (MMRec, JSON, CSV).

Each importer validates everything first, then writes in one transaction, and returns an
`ImportReport` that counts problems by reason with a few examples. With `on_error="refuse"` any
problem row refuses the whole import; with `"skip"` (the default) problem rows are left out.
Unreadable input (a missing file, a file that is not a table, missing required columns) raises
`DataImportError` before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterable, Literal

import numpy as np
import pandas as pd

from . import config
from .errors import RecsysError
from .images import check_image, file_digest
from .progress import ProgressCallback, report
from .store import Store

OnError = Literal["skip", "refuse"]

EVENT_WEIGHTS = {"view": 1.0, "click": 1.0, "wishlist": 2.0, "cart": 3.0, "purchase": 5.0,
                 "rating": 1.0, "interaction": 1.0}
SPLIT_NAMES = {"0": "train", "1": "valid", "2": "test", "train": "train", "valid": "valid",
               "val": "valid", "validation": "valid", "test": "test"}

MYNTRA_ATTRIBUTION = ('Myntra "Fashion Product Images (Small)" by Param Aggarwal (Kaggle), '
                      'scraped from myntra.com; declared MIT on Kaggle.')
AMAZON_ATTRIBUTION = ("Amazon review data, 5-core (J. McAuley, UCSD), MMRec benchmark split; "
                      "research use only.")

# Canonical item column -> names accepted for it in a generic catalog (case-insensitive).
ITEM_ALIASES: dict[str, tuple[str, ...]] = {
    "item_id": ("item_id", "id", "product_id", "sku", "itemid"),
    "title": ("title", "name", "product_name", "productdisplayname", "display_name"),
    "description": ("description", "desc", "details", "text"),
    "gender": ("gender",),
    "master_category": ("master_category", "mastercategory", "category"),
    "sub_category": ("sub_category", "subcategory"),
    "article_type": ("article_type", "articletype", "type", "product_type"),
    "base_colour": ("base_colour", "basecolour", "colour", "color", "base_color"),
    "season": ("season",),
    "usage": ("usage", "occasion"),
    "year": ("year",),
    "brand": ("brand",),
    "price": ("price",),
    "image_path": ("image_path", "image", "image_file", "filename", "file", "photo", "img"),
}
REQUIRED_ITEM_FIELDS = ("item_id", "title")
TEXT_FIELDS = ("title", "description", "gender", "master_category", "sub_category",
               "article_type", "base_colour", "season", "usage", "brand")

INTERACTION_ALIASES: dict[str, tuple[str, ...]] = {
    "user_id": ("user_id", "user", "userid", "customer_id", "reviewerid"),
    "item_id": ("item_id", "item", "itemid", "product_id", "asin", "id"),
    "event": ("event", "event_type", "action", "type"),
    "ts": ("timestamp", "ts", "time", "datetime", "date"),
    "weight": ("weight", "rating", "value"),
    "split": ("split", "x_label", "set"),
}

EXAMPLES_PER_REASON = 5


class DataImportError(RecsysError, ValueError):
    """Input that cannot be imported at all; nothing was written."""


@dataclass
class ImportReport:
    dataset: str
    kind: str
    rows_read: int = 0
    imported: int = 0
    problems: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    refused: bool = False
    details: dict[str, int | str] = field(default_factory=dict)

    def add_problem(self, reason: str, example: str) -> None:
        self.problems[reason] = self.problems.get(reason, 0) + 1
        bucket = self.examples.setdefault(reason, [])
        if len(bucket) < EXAMPLES_PER_REASON:
            bucket.append(example)

    @property
    def skipped(self) -> int:
        return sum(self.problems.values())

    def summary(self) -> str:
        head = (f"REFUSED: nothing was imported into '{self.dataset}'" if self.refused else
                f"Imported {self.imported:,} {self.kind} into dataset '{self.dataset}'")
        lines = [f"{head} ({self.rows_read:,} rows read)."]
        lines += [f"  {k}: {v:,}" if isinstance(v, int) else f"  {k}: {v}"
                  for k, v in self.details.items()]
        if self.problems:
            verb = "found" if self.refused else "skipped"
            lines.append(f"{self.skipped:,} problem rows {verb}:")
            for reason, count in self.problems.items():
                lines.append(f"  - {reason}: {count:,} (e.g. {'; '.join(self.examples[reason])})")
            if self.refused:
                lines.append("Fix these rows, or re-run with --on-error skip to leave them out.")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"dataset": self.dataset, "kind": self.kind, "rows_read": self.rows_read,
                "imported": self.imported, "skipped": self.skipped, "refused": self.refused,
                "problems": self.problems, "examples": self.examples, "details": self.details}


# -- reading tables -----------------------------------------------------------------------------
def read_table(path: str | Path, sep: str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Read a CSV/TSV or Parquet file as strings; returns (frame, malformed-line descriptions)."""
    path = Path(path)
    if not path.is_file():
        raise DataImportError(f"File not found: {path}")
    if path.stat().st_size == 0:
        raise DataImportError(f"{path.name} is empty.")
    if path.suffix.lower() in (".parquet", ".pq"):
        try:
            return pd.read_parquet(path).astype("string"), []
        except Exception as exc:  # pyarrow raises several unrelated types
            raise DataImportError(f"{path.name} is not a readable Parquet file: {exc}") from exc
    head = path.read_bytes()[:4096]
    if b"\x00" in head:
        raise DataImportError(f"{path.name} is a binary file, not a CSV or Parquet table.")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if len(head) < 4096 or exc.start < 4090:  # not just a character cut at the boundary
            raise DataImportError(f"{path.name} is not UTF-8 text, so not a CSV file.") from exc
    bad_lines: list[str] = []

    def on_bad_line(fields: list[str]) -> None:
        bad_lines.append(",".join(fields)[:80])
        return None

    if sep is None:
        sep = "\t" if path.suffix.lower() in (".tsv", ".inter") or b"\t" in head.split(b"\n")[0] \
            else ","
    try:
        frame = pd.read_csv(path, sep=sep, dtype="string", keep_default_na=False,
                            na_values=[""], on_bad_lines=on_bad_line, engine="python")
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataImportError(f"{path.name} could not be parsed as a table: {exc}") from exc
    if frame.shape[1] < 2:
        raise DataImportError(f"{path.name} has {frame.shape[1]} column; a catalog or "
                              "interaction table needs several (is it a CSV file?).")
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame, bad_lines


def resolve_columns(frame: pd.DataFrame, aliases: dict[str, tuple[str, ...]],
                    overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Map canonical field -> column of `frame` using explicit overrides, then aliases."""
    lower = {c.lower(): c for c in frame.columns}
    mapping: dict[str, str] = {}
    for canonical, source in (overrides or {}).items():
        if source not in frame.columns:
            raise DataImportError(f"Column {source!r} (given for {canonical}) is not in the file; "
                                  f"its columns are: {', '.join(frame.columns)}.")
        mapping[canonical] = source
    for canonical, names in aliases.items():
        if canonical in mapping:
            continue
        for name in names:
            if name in lower:
                mapping[canonical] = lower[name]
                break
    return mapping


def _require(mapping: dict[str, str], fields: Iterable[str], frame: pd.DataFrame,
             label: str) -> None:
    missing = [f for f in fields if f not in mapping]
    if missing:
        raise DataImportError(
            f"{label} is missing required column(s): {', '.join(missing)}. Found columns: "
            f"{', '.join(frame.columns)}. Name them with options such as --column item_id=SKU.")


def content_hash(row: dict, image_digest: str) -> str:
    """Hash of everything an encoder reads for an item: its texts and its photo's bytes."""
    text = "\x1f".join(str(row.get(f) or "") for f in TEXT_FIELDS)
    return hashlib.sha1(f"{text}\x1e{image_digest}".encode()).hexdigest()


# -- catalogs -----------------------------------------------------------------------------------
def import_catalog(store: Store, csv_path: str | Path, images_dir: str | Path | None = None,
                   fmt: Literal["generic", "myntra"] = "generic", dataset: str | None = None,
                   on_error: OnError = "skip", columns: dict[str, str] | None = None,
                   progress: ProgressCallback | None = None, kind: str = "catalog",
                   attribution: str | None = None) -> ImportReport:
    """Validate a catalog table and its photos, then upsert the items in one transaction."""
    csv_path = Path(csv_path)
    if fmt == "myntra":
        frame, bad_lines = read_table(csv_path)
        images_dir = Path(images_dir) if images_dir else csv_path.parent / "images"
        mapping = resolve_columns(frame, ITEM_ALIASES, {
            "item_id": "id", "title": "productDisplayName", "gender": "gender",
            "master_category": "masterCategory", "sub_category": "subCategory",
            "article_type": "articleType", "base_colour": "baseColour", "season": "season",
            "usage": "usage", "year": "year"} if "productDisplayName" in frame.columns else None)
        dataset = dataset or "myntra"
        attribution = attribution or MYNTRA_ATTRIBUTION
    elif fmt == "generic":
        frame, bad_lines = read_table(csv_path)
        mapping = resolve_columns(frame, ITEM_ALIASES, columns)
        dataset = dataset or csv_path.stem
    else:
        raise DataImportError(f"Unknown catalog format {fmt!r}; use 'generic' or 'myntra'.")
    _require(mapping, REQUIRED_ITEM_FIELDS, frame, csv_path.name)
    if images_dir is not None and not Path(images_dir).is_dir():
        raise DataImportError(f"Image folder not found: {images_dir}")

    rep = ImportReport(dataset=dataset, kind="items", rows_read=len(frame) + len(bad_lines))
    for line in bad_lines:
        rep.add_problem("malformed CSV line", line)

    items = pd.DataFrame({f: frame[c] for f, c in mapping.items()})
    items["item_id"] = items["item_id"].str.strip()
    rows = _validate_items(items, images_dir, fmt, rep, progress)
    if rep.problems and on_error == "refuse":
        rep.refused = True
        return rep

    with store.transaction() as cur:
        store.upsert_dataset(cur, dataset, kind, source=str(csv_path), attribution=attribution)
        existing = {r[0] for r in cur.execute("SELECT item_id FROM items WHERE dataset = ?",
                                              [dataset]).fetchall()}
        rows.insert(0, "dataset", dataset)
        cur.register("_new_items", rows)
        try:
            cur.execute("INSERT OR REPLACE INTO items BY NAME SELECT * FROM _new_items")
        finally:
            cur.unregister("_new_items")
    rep.imported = len(rows)
    new = len(set(rows["item_id"]) - existing)
    rep.details.update({"new items": new, "updated items": len(rows) - new})
    return rep


def _validate_items(items: pd.DataFrame, images_dir: str | Path | None, fmt: str,
                    rep: ImportReport, progress: ProgressCallback | None) -> pd.DataFrame:
    """Drop problem rows (recording why) and attach image paths and content hashes."""
    paths = _image_paths(items, images_dir, fmt)
    if fmt == "myntra":  # the catalog lists every product; only those with a photo are items
        has_photo = np.array([p is not None for p in paths])
        rep.details["catalog rows without a photo (not imported)"] = int((~has_photo).sum())
        rep.rows_read -= int((~has_photo).sum())
        items = items.loc[has_photo].reset_index(drop=True)
        paths = [p for p in paths if p is not None]
    keep = np.ones(len(items), dtype=bool)
    for i, (item_id, title) in enumerate(zip(items["item_id"], items["title"])):
        if pd.isna(item_id) or not str(item_id):
            rep.add_problem("missing item id", f"row {i + 2}")
            keep[i] = False
        elif pd.isna(title) or not str(title).strip():
            rep.add_problem("missing title", f"id {item_id}")
            keep[i] = False
    dupes = items["item_id"].duplicated(keep=False) & keep
    for item_id in items.loc[dupes, "item_id"].unique():
        rep.add_problem("duplicate item id", f"id {item_id} ({int((items['item_id'] == item_id).sum())} rows)")
    keep &= ~dupes.to_numpy()
    if "price" in items:
        price = pd.to_numeric(items["price"], errors="coerce")
        bad = items["price"].notna() & price.isna() & keep
        for item_id in items.loc[bad, "item_id"]:
            rep.add_problem("price is not a number", f"id {item_id}")
        keep &= ~bad.to_numpy()
        items["price"] = price
    if "year" in items:
        items["year"] = pd.to_numeric(items["year"], errors="coerce").round().astype("Int64")

    candidates = [i for i in np.flatnonzero(keep) if paths[i] is not None]
    for i in np.flatnonzero(keep):
        if paths[i] is None and "image_path" in items and pd.notna(items["image_path"].iloc[i]):
            rep.add_problem("image file not found", f"id {items['item_id'].iloc[i]}: "
                            f"{items['image_path'].iloc[i]}")
            keep[i] = False
    reasons = _check_images([paths[i] for i in candidates], progress)
    for i, reason in zip(candidates, reasons):
        if reason is not None:
            rep.add_problem("unreadable image", f"id {items['item_id'].iloc[i]}: {reason[:120]}")
            keep[i] = False

    out = items.loc[keep].copy()
    out["image_path"] = [paths[i] for i in np.flatnonzero(keep)]
    records = out.to_dict("records")
    out["content_hash"] = [content_hash(r, file_digest(r["image_path"])) for r in records]
    for col in ("description", "gender", "master_category", "sub_category", "article_type",
                "base_colour", "season", "usage", "brand"):
        if col not in out:
            out[col] = None
    if "price" not in out:
        out["price"] = np.nan
    if "year" not in out:
        out["year"] = pd.array([pd.NA] * len(out), dtype="Int64")
    return out.reset_index(drop=True)


def _image_paths(items: pd.DataFrame, images_dir: str | Path | None,
                 fmt: str) -> list[str | None]:
    """Absolute image path per row (None if the row names no image or the file is absent)."""
    base = Path(images_dir).resolve() if images_dir else None
    out: list[str | None] = []
    for i, item_id in enumerate(items["item_id"]):
        name = None
        if "image_path" in items and pd.notna(items["image_path"].iloc[i]):
            name = str(items["image_path"].iloc[i]).strip()
        candidates: list[Path] = []
        if name:
            p = Path(name)
            candidates.append(p if p.is_absolute() or base is None else base / p)
        elif base is not None and pd.notna(item_id):
            candidates += [base / f"{item_id}{ext}" for ext in (".jpg", ".jpeg", ".png", ".webp")]
        found = next((str(c.resolve()) for c in candidates if c.is_file()), None)
        out.append(found)
    return out


def _check_images(paths: list[str], progress: ProgressCallback | None) -> list[str | None]:
    """Decode every photo (in threads: PIL releases the GIL) and return failure reasons."""
    results: list[str | None] = [None] * len(paths)
    total = len(paths)
    if not total:
        return results
    with ThreadPoolExecutor(max_workers=4) as pool:
        for i, reason in enumerate(pool.map(check_image, paths)):
            results[i] = reason
            if i % 200 == 0 or i == total - 1:
                report(progress, i + 1, total, f"checked {i + 1:,}/{total:,} photos",
                       stage="images")
    return results


# -- interactions -------------------------------------------------------------------------------
def import_interactions(store: Store, path: str | Path,
                        fmt: Literal["mmrec", "json", "csv"] = "csv", dataset: str | None = None,
                        on_error: OnError = "skip", columns: dict[str, str] | None = None,
                        append: bool = False,
                        progress: ProgressCallback | None = None) -> ImportReport:
    """Import an interaction log; creates bare items/users when the dataset has no catalog."""
    path = Path(path)
    if not path.exists():
        raise DataImportError(f"Not found: {path}")
    if fmt == "mmrec":
        frame, rep, names = _read_mmrec(path, dataset)
    elif fmt == "json":
        frame, rep, names = _read_split_json(path, dataset)
    elif fmt == "csv":
        frame, rep, names = _read_interaction_csv(path, dataset, columns)
    else:
        raise DataImportError(f"Unknown interaction format {fmt!r}; use mmrec, json or csv.")
    report(progress, 1, 3, "validated", stage="interactions")

    dataset = rep.dataset
    exists = dataset in store.dataset_names()
    catalog_ids = set(store.item_ids(dataset)) if exists else set()
    has_catalog = bool(catalog_ids) and store.scalar(
        "SELECT kind FROM datasets WHERE name = ?", [dataset]) != "interactions"
    if has_catalog:
        unknown = ~frame["item_id"].isin(catalog_ids)
        for item_id in frame.loc[unknown, "item_id"].head(EXAMPLES_PER_REASON):
            rep.add_problem("item not in the catalog", f"item {item_id}")
        if unknown.sum() > EXAMPLES_PER_REASON:
            rep.problems["item not in the catalog"] = int(unknown.sum())
        frame = frame.loc[~unknown]
    if rep.problems and on_error == "refuse":
        rep.refused = True
        return rep

    frame = frame.reset_index(drop=True)
    frame.insert(0, "dataset", dataset)
    users = pd.DataFrame({"dataset": dataset, "user_id": frame["user_id"].unique()})
    user_names, item_names = names.get("users", {}), names.get("items", {})
    users["name"] = [user_names.get(u, f"User {u}") for u in users["user_id"]]
    items = pd.DataFrame({"dataset": dataset, "item_id": frame["item_id"].unique()})
    items["title"] = [item_names.get(i, f"Item {i}") for i in items["item_id"]]
    with store.transaction() as cur:
        if not has_catalog:
            store.upsert_dataset(cur, dataset, "interactions", source=str(path),
                                 attribution=AMAZON_ATTRIBUTION if fmt != "csv" else None)
        else:
            cur.execute("INSERT OR REPLACE INTO settings VALUES ('active_dataset', ?)", [dataset])
        if not append:
            cur.execute("DELETE FROM interactions WHERE dataset = ?", [dataset])
        for name, table in (("_new_users", users), ("_new_items", items),
                            ("_new_inter", frame)):
            cur.register(name, table)
        try:
            cur.execute("""INSERT INTO users (dataset, user_id, name)
                           SELECT dataset, user_id, name FROM _new_users
                           ON CONFLICT DO NOTHING""")
            if not has_catalog:
                cur.execute("""INSERT INTO items (dataset, item_id, title)
                               SELECT dataset, item_id, title FROM _new_items
                               ON CONFLICT DO NOTHING""")
            cur.execute("INSERT INTO interactions BY NAME SELECT * FROM _new_inter")
        finally:
            for name in ("_new_users", "_new_items", "_new_inter"):
                cur.unregister(name)
    report(progress, 3, 3, "written", stage="interactions")
    rep.imported = len(frame)
    rep.details.update({"users": int(users.shape[0]), "items": int(items.shape[0])})
    splits = frame["split"].value_counts(dropna=False)
    for split, count in splits.items():
        rep.details[f"split {split if pd.notna(split) else '(none)'}"] = int(count)
    return rep


def _read_mmrec(path: Path, dataset: str | None) -> tuple[pd.DataFrame, ImportReport, dict]:
    """MMRec `.inter` (tab-separated userID, itemID, x_label[, rating, timestamp])."""
    if path.is_dir():
        files = sorted(path.glob("*.inter"))
        if not files:
            raise DataImportError(f"No .inter file in {path}.")
        path = files[0]
    return _read_interaction_table(path, dataset, None, sep="\t")


def _read_split_json(path: Path, dataset: str | None) -> tuple[pd.DataFrame, ImportReport, dict]:
    """A folder with train.json / val.json / test.json mapping user index -> item indices."""
    folder = path if path.is_dir() else path.parent
    files = {"train": folder / "train.json", "valid": folder / "val.json",
             "test": folder / "test.json"}
    if not files["train"].is_file():
        raise DataImportError(f"{folder} has no train.json (expected train/val/test.json).")
    rep = ImportReport(dataset=dataset or folder.name, kind="interactions")
    parts = []
    for split, file in files.items():
        if not file.is_file():
            continue
        try:
            data = json.loads(file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataImportError(f"{file.name} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise DataImportError(f"{file.name} must map user ids to lists of item ids.")
        users, items = [], []
        for user, its in data.items():
            if not isinstance(its, list):
                rep.add_problem("user entry is not a list", f"{file.name}: user {user}")
                continue
            users += [str(user)] * len(its)
            items += [str(i) for i in its]
        parts.append(pd.DataFrame({"user_id": users, "item_id": items, "split": split}))
    frame = pd.concat(parts, ignore_index=True)
    rep.rows_read = len(frame)
    names = {"items": _invert_mapping(folder / "item2id.json"),
             "users": _invert_mapping(folder / "user2id.json")}
    frame["event"] = "interaction"
    frame["ts"] = pd.NaT
    frame["weight"] = 1.0
    return _drop_duplicate_interactions(frame, rep), rep, names


def _invert_mapping(path: Path) -> dict[str, str]:
    """item2id.json maps ASIN -> index; return index -> ASIN for readable titles."""
    if not path.is_file():
        return {}
    try:
        return {str(v): str(k) for k, v in json.loads(path.read_text()).items()}
    except (json.JSONDecodeError, AttributeError):
        return {}


def _read_interaction_csv(path: Path, dataset: str | None,
                          columns: dict[str, str] | None) -> tuple[pd.DataFrame, ImportReport, dict]:
    return _read_interaction_table(path, dataset, columns)


def _read_interaction_table(path: Path, dataset: str | None, columns: dict[str, str] | None,
                            sep: str | None = None
                            ) -> tuple[pd.DataFrame, ImportReport, dict]:
    """A delimited interaction log: map its columns, report malformed lines, normalise."""
    frame, bad = read_table(path, sep=sep)
    mapping = resolve_columns(frame, INTERACTION_ALIASES, columns)
    _require(mapping, ("user_id", "item_id"), frame, path.name)
    rep = ImportReport(dataset=dataset or path.stem, kind="interactions",
                       rows_read=len(frame) + len(bad))
    for line in bad:
        rep.add_problem("malformed line", line)
    return _normalise_interactions(frame, mapping, rep, default_event="interaction"), rep, {}


def _drop_unparsed(rep: ImportReport, reason: str, raw: pd.Series, parsed: pd.Series,
                   keep: pd.Series) -> pd.Series:
    """Report rows whose value was given but could not be parsed; return `keep` without them."""
    bad = raw.notna() & parsed.isna() & keep
    for i in np.flatnonzero(bad.to_numpy()):
        rep.add_problem(reason, f"row {i + 2}: {raw.iloc[i]}")
    return keep & ~bad


def _normalise_interactions(frame: pd.DataFrame, mapping: dict[str, str], rep: ImportReport,
                            default_event: str) -> pd.DataFrame:
    """Canonical columns, parsed timestamps, known splits; bad rows recorded and dropped."""
    out = pd.DataFrame({f: frame[c].str.strip() for f, c in mapping.items()})
    keep = out["user_id"].notna() & out["item_id"].notna() & (out["user_id"] != "") & \
        (out["item_id"] != "")
    for i in np.flatnonzero(~keep.to_numpy())[:EXAMPLES_PER_REASON]:
        rep.add_problem("missing user or item", f"row {i + 2}")
    if (~keep).sum() > EXAMPLES_PER_REASON:
        rep.problems["missing user or item"] = int((~keep).sum())
    out["event"] = out["event"].str.lower().fillna(default_event) if "event" in out \
        else default_event
    if "ts" in out:
        raw = out["ts"]
        numeric = pd.to_numeric(raw, errors="coerce")
        if numeric.notna().sum() >= raw.notna().sum() * 0.9 and raw.notna().any():
            ts = pd.to_datetime(numeric, unit="s", errors="coerce")
        else:
            ts = pd.to_datetime(raw, errors="coerce", format="mixed")
        keep = _drop_unparsed(rep, "unreadable timestamp", raw, ts, keep)
        out["ts"] = ts
    else:
        out["ts"] = pd.NaT
    if "weight" in out:
        weight = pd.to_numeric(out["weight"], errors="coerce")
        keep = _drop_unparsed(rep, "weight is not a number", out["weight"], weight, keep)
        out["weight"] = weight
    else:
        out["weight"] = np.nan
    out["weight"] = out["weight"].fillna(out["event"].map(EVENT_WEIGHTS)).fillna(1.0)
    if "split" in out:
        split = out["split"].map(lambda s: SPLIT_NAMES.get(str(s).lower()) if pd.notna(s) else None)
        keep = _drop_unparsed(rep, "unknown split label", out["split"], split, keep)
        out["split"] = split
    else:
        out["split"] = None
    out = out.loc[keep, ["user_id", "item_id", "event", "ts", "weight", "split"]]
    return out


def _drop_duplicate_interactions(frame: pd.DataFrame, rep: ImportReport) -> pd.DataFrame:
    dup = frame.duplicated(["user_id", "item_id", "split"])
    for _, row in frame.loc[dup].head(EXAMPLES_PER_REASON).iterrows():
        rep.add_problem("duplicate interaction", f"user {row.user_id} item {row.item_id}")
    if dup.sum() > EXAMPLES_PER_REASON:
        rep.problems["duplicate interaction"] = int(dup.sum())
    return frame.loc[~dup]


# -- uploads (the app's Data page) ---------------------------------------------------------------
MAX_ARCHIVE_BYTES = 2 * 1024 ** 3
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")


def upload_dir(store: Store, dataset: str) -> Path:
    """Where the app keeps a dataset's uploaded files: `<data dir>/uploads/<dataset>/`."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", dataset or ""):
        raise DataImportError("A dataset name uses letters, digits, '-', '_' or '.' (at most "
                              f"64 characters); got {dataset!r}.")
    path = config.data_dir(store.path) / "uploads" / dataset
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_upload(data: bytes, folder: Path, filename: str) -> Path:
    """Write an uploaded file under `folder` (its base name only), atomically."""
    name = Path(filename).name or "upload"
    target = folder / name
    tmp = target.with_name(target.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, target)
    return target


def extract_images(archive: str | Path | IO[bytes], dest: Path) -> int:
    """Unpack the photos of a zip archive flat into `dest`; returns how many were written.

    Only image files are taken, by base name (no paths, so no "zip slip"); a corrupt archive or
    one that unpacks to more than 2 GB is refused with a clear error.
    """
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataImportError(f"The images archive is not a readable zip file ({exc}).") from None
    with zf:
        members = [m for m in zf.infolist()
                   if not m.is_dir() and Path(m.filename).suffix.lower() in IMAGE_SUFFIXES
                   and not Path(m.filename).name.startswith(".")]
        if sum(m.file_size for m in members) > MAX_ARCHIVE_BYTES:
            raise DataImportError("The images archive unpacks to more than 2 GB; import from a "
                                  "folder path instead.")
        if not members:
            raise DataImportError("The zip archive contains no image files (.jpg, .png, ...).")
        dest.mkdir(parents=True, exist_ok=True)
        for m in members:
            target = dest / Path(m.filename).name
            with zf.open(m) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
    return len(members)
