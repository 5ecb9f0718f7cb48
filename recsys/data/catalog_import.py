"""Importing a product catalog: a generic CSV/TSV/Parquet table (columns found by their usual
names, `ITEM_ALIASES`, or named explicitly) or Myntra's `styles.csv`, with its photos (and
videos) in one media folder.

`import_catalog` validates everything first, then upserts the items in one transaction, and
returns an `ImportReport` (`recsys.data.report`): every row of the file is imported or reported
with its reason and line. Each row's photo must resolve, symlinks followed, inside the images
folder, and must decode (`recsys.data.images.check_image`, in threads). With
`on_error="refuse"` any problem row refuses the whole import; a file without a single valid
row is refused. Unreadable input raises `DataImportError` before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from recsys.core.config import artifacts_dir
from recsys.core.progress import ProgressCallback, report
from recsys.data.downloads import DownloadSettings, download_photos, url_mask
from recsys.data.feeds.base import CATALOG_FORMATS
from recsys.data.feeds.detect import detect_catalog_format, read_catalog_feed
from recsys.data.images import check_image, file_digest
from recsys.data.readers import read_table, require_columns, resolve_columns
from recsys.data.report import (
    MAX_ID_CHARS,
    DataImportError,
    ImportReport,
    OnError,
    as_mask,
    odd_ids,
    row_dropper,
)
from recsys.store import Store

MYNTRA_ATTRIBUTION = ('Myntra "Fashion Product Images (Small)" by Param Aggarwal (Kaggle), '
                      'scraped from myntra.com; declared MIT on Kaggle.')

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
    "video": ("video", "video_path", "video_file"),     # kept in `extra` (a product video)
}
REQUIRED_ITEM_FIELDS = ("item_id", "title")
TEXT_FIELDS = ("title", "description", "gender", "master_category", "sub_category",
               "article_type", "base_colour", "season", "usage", "brand")


def content_hash(row: dict, image_digest: str) -> str:
    """Hash of everything an encoder reads for an item: its texts and its photo's bytes."""
    text = "\x1f".join(str(row.get(f) or "") for f in TEXT_FIELDS)
    return hashlib.sha1(f"{text}\x1e{image_digest}".encode()).hexdigest()


def import_catalog(store: Store, csv_path: str | Path, images_dir: str | Path | None = None,
                   fmt: Literal["generic", "myntra", "merchant", "shopify", "auto"] = "generic",
                   dataset: str | None = None,
                   on_error: OnError = "skip", columns: dict[str, str] | None = None,
                   progress: ProgressCallback | None = None, kind: str = "catalog",
                   attribution: str | None = None,
                   download: DownloadSettings | None = None) -> ImportReport:
    """Validate a catalog table and its photos, then upsert the items in one transaction.

    Photos must be inside `images_dir` (after following symlinks); rows naming a photo
    elsewhere, or any photo when there is no folder, are reported and left out. Photos given as
    http(s) URLs (a Merchant or Shopify feed, or a generic table's image column) are downloaded
    (`recsys.data.downloads`, settings `download`) into the database's photo cache; a row whose
    photo cannot be had is reported with the reason. `fmt="auto"` detects the format
    (`recsys.data.feeds.detect_catalog_format`). A file without a single valid row is refused:
    it creates no dataset and changes nothing.
    """
    csv_path = Path(csv_path)
    if fmt == "auto":
        fmt = detect_catalog_format(csv_path)
    feed = None
    if fmt in ("merchant", "shopify"):
        feed = read_catalog_feed(csv_path, fmt)
        frame, bad_lines = feed.frame, feed.bad
        frame.attrs["unit"] = feed.unit
        mapping = resolve_columns(frame, ITEM_ALIASES, columns)
        dataset = dataset or csv_path.stem
    elif fmt == "myntra":
        frame, bad_lines = read_table(csv_path)
        images_dir = Path(images_dir) if images_dir else myntra_images_dir(csv_path)
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
        raise DataImportError(f"Unknown catalog format {fmt!r}; use one of "
                              f"{', '.join(CATALOG_FORMATS)}.")
    require_columns(mapping, REQUIRED_ITEM_FIELDS, frame, csv_path.name)
    if images_dir is not None and not Path(images_dir).is_dir():
        raise DataImportError(f"Image folder not found: {images_dir}")

    rep = ImportReport(dataset=dataset, kind="items", rows_read=len(frame) + len(bad_lines),
                       unit=frame.attrs.get("unit", "line"))
    for line, why in bad_lines:
        rep.add_problem("malformed CSV line", f"line {line}: {why}", lines=[line])
    if feed is not None:
        rep.details.update(feed.details)
        rep.details["format"] = fmt

    items = pd.DataFrame({f: frame[c] for f, c in mapping.items()})
    items["item_id"] = items["item_id"].str.strip()
    if feed is not None and "extra" in frame:
        items["extra"] = frame["extra"]
    if "image_path" in items and url_mask(items["image_path"]).any():
        items, images_dir = _download_photos(store, items, images_dir, rep, download, progress)
    rows = _validate_items(items, images_dir, fmt, rep, progress)
    if rep.problems and on_error == "refuse":
        return rep.refuse_rows()
    if rows.empty:
        return rep.refuse("the file has no valid item rows" if rep.rows_read else
                          "the file has a header but no rows")

    with store.transaction() as cur:
        store.upsert_dataset(cur, dataset, kind, source=str(csv_path), attribution=attribution)
        existing = store.catalog_item_ids(cur, dataset)
        store.upsert_items(cur, dataset, rows)
    rep.imported = len(rows)
    new = len(set(rows["item_id"]) - existing)
    rep.details.update({"new items": new, "updated items": len(rows) - new})
    return rep


def photo_cache_dir(store: Store) -> Path:
    """Where photos downloaded by URL are kept: `<artifacts>/photo_cache`, one file per URL."""
    return artifacts_dir(store.path, "photo_cache")


def _download_photos(store: Store, items: pd.DataFrame, images_dir: str | Path | None,
                     rep: ImportReport, settings: DownloadSettings | None,
                     progress: ProgressCallback | None) -> tuple[pd.DataFrame, Path]:
    """Download the rows' photo URLs into the cache and point `image_path` at the cached files
    (in the cache folder, the images folder of these rows); rows whose photo failed are
    reported and dropped. Rows naming a local file are only allowed without an images folder
    of their own: mixing both is refused."""
    if images_dir is not None:
        raise DataImportError("The catalog names its photos by URL; give no images folder "
                              "(photos are downloaded into the database's photo cache).")
    cache = photo_cache_dir(store)
    names = items["image_path"]
    urls = url_mask(names)
    result = download_photos(names[urls].str.strip(), cache, settings, progress)
    labels = items.index.to_numpy()
    keep = np.ones(len(items), dtype=bool)
    drop = row_dropper(rep, labels, keep)
    given = (names.notna() & (names.astype("string").str.strip() != "")).to_numpy(dtype=bool)
    drop("photo is not an http(s) URL", given & ~urls,
         lambda i: f"id {items['item_id'].iloc[i]}")
    stripped = names.astype("string").str.strip()
    failed = np.array([bool(u) and stripped.iloc[i] in result.failures
                       for i, u in enumerate(urls)], dtype=bool)
    drop("photo download failed", failed,
         lambda i: f"id {items['item_id'].iloc[i]}: {result.failures[stripped.iloc[i]]}")
    local = [os.path.basename(result.paths[stripped.iloc[i]]) if urls[i] and keep[i] else None
             for i in range(len(items))]
    out = items.loc[keep].copy()
    out["image_path"] = pd.array([p for p, k in zip(local, keep) if k], dtype="string")
    if "extra" in out:
        sources = [stripped.iloc[i] for i in np.flatnonzero(keep)]
        out["extra"] = [_with_source(e, u) for e, u in zip(out["extra"], sources)]
    else:
        out["extra"] = [json.dumps({"image_url": stripped.iloc[i]}) if urls[i] else None
                        for i in np.flatnonzero(keep)]
    rep.details.update({"photos downloaded": result.downloaded,
                        "photos already in the cache": result.cached,
                        "photo downloads failed": len(result.failures)})
    if result.downloaded:
        rep.details["download MB"] = f"{result.bytes / 2**20:,.1f}"
        rep.details["download photos/s"] = f"{result.downloaded / max(result.seconds, 1e-9):,.1f}"
    return out, cache


def _with_source(extra: object, url: object) -> str | None:
    """An item's `extra` JSON with the photo's source URL added."""
    data: dict = {}
    if isinstance(extra, str) and extra.strip():
        try:
            data = json.loads(extra)
        except ValueError:
            data = {}
    if isinstance(url, str) and url:
        data["image_url"] = url
    return json.dumps(data) if data else None


def myntra_images_dir(csv_path: str | Path) -> Path:
    """The photo folder of a Myntra `styles.csv` when none is given: `images/` beside it."""
    return Path(csv_path).parent / "images"


def _validate_items(items: pd.DataFrame, images_dir: str | Path | None, fmt: str,
                    rep: ImportReport, progress: ProgressCallback | None) -> pd.DataFrame:
    """Drop problem rows (recording why and where) and attach image paths and content hashes."""
    paths, path_problems = _image_paths(items, images_dir)
    if fmt == "myntra":  # the catalog lists every product; only those with a photo are items
        has_photo = np.array([p is not None for p in paths])
        rep.details["catalog rows without a photo (not imported)"] = int((~has_photo).sum())
        rep.rows_read -= int((~has_photo).sum())
        items = items.loc[has_photo]
        paths = [p for p in paths if p is not None]
        path_problems = [None] * len(paths)
    labels = items.index.to_numpy()
    unit = rep.unit
    keep = np.ones(len(items), dtype=bool)
    drop = row_dropper(rep, labels, keep)

    ids, titles = items["item_id"], items["title"]
    drop("missing item id", as_mask(ids.isna() | (ids == "")), lambda i: f"{unit} {labels[i]}")
    drop("missing title", as_mask(titles.isna() | (titles.str.strip() == "")),
         lambda i: f"id {ids.iloc[i]}")
    drop("item id is not a plain id", as_mask(odd_ids(ids)),
         lambda i: f"{unit} {labels[i]} (over {MAX_ID_CHARS} characters or control characters)")
    dupes = ids.duplicated(keep=False).to_numpy() & keep
    for item_id in pd.unique(ids[dupes]):
        where = np.flatnonzero(dupes & as_mask(ids == item_id))
        rep.add_problem("duplicate item id", f"id {item_id} ({len(where)} rows)",
                        lines=labels[where], rows=len(where))
    keep &= ~dupes
    if "price" in items:
        price = pd.to_numeric(items["price"], errors="coerce")
        given = items["price"].notna().to_numpy()
        drop("price is not a number", given & price.isna().to_numpy(),
             lambda i: f"id {ids.iloc[i]}")
        value = price.to_numpy(dtype="float64", na_value=np.nan)
        with np.errstate(invalid="ignore"):
            bad_value = given & ~np.isnan(value) & (~np.isfinite(value) | (value < 0))
        drop("price is negative or infinite", bad_value, lambda i: f"id {ids.iloc[i]}")
        items = items.assign(price=value)
    if "year" in items:
        year = pd.to_numeric(items["year"], errors="coerce").to_numpy(dtype="float64",
                                                                       na_value=np.nan)
        with np.errstate(invalid="ignore"):
            odd = items["year"].notna().to_numpy() & ~((year >= 1) & (year <= 9999))
        if odd.any():
            rep.details["years not understood (left empty)"] = int((odd & keep).sum())
        year[odd] = np.nan
        items = items.assign(year=pd.array(np.round(year), dtype="Float64").astype("Int64"))

    reasons = {"outside": "image path outside the images folder",
               "not found": "image file not found",
               "no folder": "image path given but no images folder"}
    for code, reason in reasons.items():
        mask = np.array([p == code for p in path_problems], dtype=bool)
        if code == "not found":
            drop(reason, mask, lambda i: f"id {ids.iloc[i]}: {items['image_path'].iloc[i]}")
        else:   # never echo a path outside the folder: whether it exists stays unknown
            drop(reason, mask, lambda i: f"id {ids.iloc[i]}")
    candidates = [i for i in np.flatnonzero(keep) if paths[i] is not None]
    failures = _check_images([paths[i] for i in candidates], progress)
    broken = np.zeros(len(items), dtype=bool)
    why: dict[int, str] = {}
    for i, reason in zip(candidates, failures):
        if reason is not None:
            broken[i] = True
            why[i] = reason
    drop("unreadable image", broken, lambda i: f"id {ids.iloc[i]}: {why[i][:120]}")

    out = items.loc[keep].copy()
    kept_paths = [paths[i] for i in np.flatnonzero(keep)]
    out["image_path"] = pd.array(kept_paths, dtype="string")
    records = out.to_dict("records")
    out["content_hash"] = [content_hash(r, file_digest(p)) for r, p in zip(records, kept_paths)]
    for col in ("description", "gender", "master_category", "sub_category", "article_type",
                "base_colour", "season", "usage", "brand"):
        if col not in out:
            out[col] = None
    if "price" not in out:
        out["price"] = np.nan
    if "year" not in out:
        out["year"] = pd.array([pd.NA] * len(out), dtype="Int64")
    if "video" in out:
        out = _attach_videos(out, images_dir, rep)
    return out.reset_index(drop=True)


def _attach_videos(items: pd.DataFrame, images_dir: str | Path | None,
                   rep: ImportReport) -> pd.DataFrame:
    """A catalog's `video` column: each named video must lie in the media (images) folder,
    like a photo; it is kept in the item's `extra` as {"video": path} for `embed`. A video
    that is not found (or outside the folder) is counted, its item is kept without one."""
    names = items["video"]
    given = (names.notna() & (names.astype("string").str.strip() != "")).to_numpy(dtype=bool)
    sub = pd.DataFrame({"item_id": items["item_id"].to_numpy()[given],
                        "image_path": names.to_numpy()[given]})
    paths, _ = _image_paths(sub, images_dir)
    found = dict(zip(np.flatnonzero(given), paths))
    extras = items["extra"].tolist() if "extra" in items else [None] * len(items)
    merged = []
    for i, extra in enumerate(extras):
        data = {}
        if isinstance(extra, str) and extra.strip():
            try:
                data = json.loads(extra)
            except ValueError:
                data = {"extra": extra}
        if found.get(i):
            data["video"] = found[i]
        merged.append(json.dumps(data) if data else None)
    rep.details["videos"] = sum(1 for p in found.values() if p)
    missing = sum(1 for p in found.values() if not p)
    if missing:
        rep.details["videos not found in the folder (items kept without one)"] = missing
    return items.drop(columns=["video"]).assign(extra=merged)


def _image_paths(items: pd.DataFrame, images_dir: str | Path | None
                 ) -> tuple[list[str | None], list[str | None]]:
    """Per row: the photo's real path (None without one) and a problem code or None.

    Every path must resolve, symlinks followed, inside `images_dir`: "outside" otherwise (never
    checked for existence), "not found" when it is inside but no file, "no folder" when a row
    names a photo and no folder was given. A row that names no photo gets `<item_id>.jpg`
    (.jpeg, .png, .webp) from the folder if there is one.
    """
    names = items["image_path"] if "image_path" in items else None
    paths: list[str | None] = []
    problems: list[str | None] = []
    if images_dir is None:
        for i in range(len(items)):
            given = names is not None and pd.notna(names.iloc[i]) and str(names.iloc[i]).strip()
            paths.append(None)
            problems.append("no folder" if given else None)
        return paths, problems
    base = os.path.realpath(images_dir)
    try:
        listing = {e.name: e for e in os.scandir(base)}
    except OSError as exc:
        raise DataImportError(f"Cannot read the image folder {images_dir}: "
                              f"{exc.strerror or exc}.") from None

    def find(name: str) -> tuple[str | None, str | None]:
        if "/" not in name and "\\" not in name and name not in (".", ".."):
            entry = listing.get(name)          # the common case: a file right in the folder
            if entry is None:
                return None, "not found"
            try:
                if entry.is_file(follow_symlinks=False):
                    return os.path.join(base, name), None
                if not entry.is_symlink():
                    return None, "not found"
            except OSError:
                return None, "not found"
        try:
            real = os.path.realpath(os.path.join(base, name))
        except (OSError, ValueError):
            return None, "outside"
        if not real.startswith(base.rstrip(os.sep) + os.sep):
            return None, "outside"
        return (real, None) if os.path.isfile(real) else (None, "not found")

    for i, item_id in enumerate(items["item_id"]):
        name = str(names.iloc[i]).strip() if names is not None and pd.notna(names.iloc[i]) \
            else ""
        if "\x00" in name:
            paths.append(None)
            problems.append("outside")
            continue
        if name:
            path, problem = find(name)
            paths.append(path)
            problems.append(problem)
            continue
        found = None
        if pd.notna(item_id) and str(item_id) and "\x00" not in str(item_id):
            for ext in (".jpg", ".jpeg", ".png", ".webp"):
                found, _ = find(f"{item_id}{ext}")
                if found:
                    break
        paths.append(found)
        problems.append(None)
    return paths, problems


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
