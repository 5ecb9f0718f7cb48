"""Importing an interaction log: MMRec's `.inter` file, a folder of split JSON files
(`train.json` / `val.json` / `test.json` with `item2id.json` / `user2id.json`), or a CSV/TSV/
Parquet table of events (columns found by their usual names, `INTERACTION_ALIASES`).

`import_interactions` validates everything first, then writes in one transaction, and returns
an `ImportReport` (`recsys.data.report`): every row is imported or reported with its reason
and line. Events weigh what `EVENT_WEIGHTS` says unless the file gives a weight; timestamps
become naive UTC; split labels are read with `SPLIT_NAMES`. A dataset without a catalog gets
bare items and users. An import that would import nothing, or remove more interactions than
it adds without `replace=True`, is refused and changes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from recsys.core.progress import ProgressCallback, report
from recsys.data.readers import read_table, require_columns, resolve_columns
from recsys.data.report import (
    MAX_ID_CHARS,
    DataImportError,
    ImportReport,
    OnError,
    as_mask,
    odd_ids,
    one_line,
    row_dropper,
    safe_reason,
)
from recsys.store import Store

EVENT_WEIGHTS = {"view": 1.0, "click": 1.0, "wishlist": 2.0, "cart": 3.0, "purchase": 5.0,
                 "rating": 1.0, "interaction": 1.0}
SPLIT_NAMES = {"0": "train", "1": "valid", "2": "test", "train": "train", "valid": "valid",
               "val": "valid", "validation": "valid", "test": "test"}
AMAZON_ATTRIBUTION = ("Amazon review data, 5-core (J. McAuley, UCSD), MMRec benchmark split; "
                      "research use only.")
INTERACTION_ALIASES: dict[str, tuple[str, ...]] = {
    "user_id": ("user_id", "user", "userid", "customer_id", "reviewerid"),
    "item_id": ("item_id", "item", "itemid", "product_id", "asin", "id"),
    "event": ("event", "event_type", "action", "type"),
    "ts": ("timestamp", "ts", "time", "datetime", "date"),
    "weight": ("weight", "rating", "value"),
    "split": ("split", "x_label", "set"),
    "rating": ("rating", "stars"),      # kept as is (also the weight when there is no weight)
}
MAX_EPOCH_SECONDS = 1e11       # |epoch seconds| beyond this (year ~5000) is not a timestamp


def import_interactions(store: Store, path: str | Path,
                        fmt: Literal["mmrec", "json", "csv", "ga4", "shopify-orders"] = "csv",
                        dataset: str | None = None,
                        on_error: OnError = "skip", columns: dict[str, str] | None = None,
                        append: bool = False, progress: ProgressCallback | None = None,
                        replace: bool = False, min_rating: float | None = None
                        ) -> ImportReport:
    """Import an interaction log; creates bare items/users when the dataset has no catalog.

    By default the file's rows replace the dataset's interactions, but only when that does not
    shrink them: an import that would remove more interactions than it adds is refused
    (`report.refused`, with `report.reason`) unless `replace=True` says so explicitly, and one
    with no valid row at all is always refused. `append=True` adds to the existing ones instead.
    A refused import changes nothing.

    `min_rating` (e.g. 4 on 1-5 stars, MovieLens' usual choice) keeps only the rows rated at
    least that as implicit positives; the others are reported under one reason ("rating below
    N"), never silently dropped. The kept rows keep their explicit rating (MAE / RMSE).
    """
    if append and replace:
        raise DataImportError("Choose either append (add to the existing interactions) or "
                              "replace (remove them first), not both.")
    path = Path(path)
    if not path.exists():
        raise DataImportError(f"Not found: {path}")
    if fmt == "mmrec":
        frame, rep, names = _read_mmrec(path, dataset)
    elif fmt == "json":
        frame, rep, names = _read_split_json(path, dataset)
    elif fmt == "csv":
        frame, rep, names = _read_interaction_table(path, dataset, columns)
    elif fmt in ("ga4", "shopify-orders"):
        frame, rep, names = _read_shop_events(store, path, fmt, dataset)
    else:
        raise DataImportError(f"Unknown interaction format {fmt!r}; use mmrec, json, csv, ga4 "
                              "or shopify-orders.")
    report(progress, 1, 3, "validated", stage="interactions")

    dataset = rep.dataset
    exists = dataset in store.dataset_names()
    catalog_ids = set(store.item_ids(dataset)) if exists else set()
    has_catalog = bool(catalog_ids) and store.dataset_kind(dataset) != "interactions"
    if has_catalog:
        unknown = ~frame["item_id"].isin(catalog_ids).to_numpy(dtype=bool, na_value=False)
        positions = np.flatnonzero(unknown)
        rep.add_rows("item not in the catalog", frame.index[positions],
                     lambda k: f"item {frame['item_id'].iloc[positions[k]]}")
        frame = frame.loc[~unknown]
    if rep.problems and on_error == "refuse":
        return rep.refuse_rows()
    if min_rating is not None:          # not an error: rows below it are reported, not refused
        frame = _keep_rated_at_least(frame, rep, float(min_rating))
    if frame.empty:
        return rep.refuse("the file has no valid interaction rows" if rep.rows_read else
                          "the file has a header but no rows")
    before = store.interaction_count(dataset) if exists else 0
    if not append and not replace and len(frame) < before:
        return rep.refuse(
            f"replacing the dataset's {before:,} interactions with these {len(frame):,} would "
            "remove more than it adds. Re-run with --replace to replace them anyway, or with "
            "--append to add these to them.")

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
            store.set_active_dataset(dataset, cur)
        store.write_interactions(cur, dataset, users, None if has_catalog else items, frame,
                                 replace=not append)
    report(progress, 3, 3, "written", stage="interactions")
    rep.imported = len(frame)
    rep.details.update({"users": int(users.shape[0]), "items": int(items.shape[0])})
    if not append and before:
        rep.details["interactions replaced"] = before
    splits = frame["split"].value_counts(dropna=False)
    for split, count in splits.items():
        rep.details[f"split {split if pd.notna(split) else '(none)'}"] = int(count)
    return rep


def _keep_rated_at_least(frame: pd.DataFrame, rep: ImportReport, threshold: float
                         ) -> pd.DataFrame:
    """The rows rated at least `threshold`; the others reported (a clear error without any
    rating column)."""
    if not np.isfinite(threshold):
        raise DataImportError("The minimum rating must be a number, e.g. 4 for 4 and 5 stars.")
    rating = frame["rating"].to_numpy(dtype="float64", na_value=np.nan)
    if np.isnan(rating).all():
        raise DataImportError("A minimum rating needs a rating column (e.g. 'rating' or "
                              "'stars', or map one with --column rating=NAME).")
    low = ~(rating >= threshold)
    positions = np.flatnonzero(low)
    rep.add_rows(f"rating below {threshold:g} (not a positive)", frame.index[positions],
                 lambda k: f"{rep.unit} {frame.index[positions[k]]}")
    return frame.loc[~low]


def interaction_files(path: str | Path, fmt: str) -> list[Path]:
    """The files an interaction import of `path` in format `fmt` reads (those that exist or
    not): the file itself, the first `.inter` file of a folder (mmrec), or the split and
    mapping JSON files of the folder (json). The use cases check each against the app's
    allowed folders before importing."""
    path = Path(path)
    if fmt == "mmrec" and path.is_dir():
        return [_mmrec_file(path)]
    if fmt == "json":
        folder = path if path.is_dir() else path.parent
        return [*_split_json_files(folder).values(), folder / "item2id.json",
                folder / "user2id.json"]
    return [path]


def _mmrec_file(folder: Path) -> Path:
    files = sorted(folder.glob("*.inter"))
    if not files:
        raise DataImportError(f"No .inter file in {folder}.")
    return files[0]


def _split_json_files(folder: Path) -> dict[str, Path]:
    return {"train": folder / "train.json", "valid": folder / "val.json",
            "test": folder / "test.json"}


def _read_mmrec(path: Path, dataset: str | None) -> tuple[pd.DataFrame, ImportReport, dict]:
    """MMRec `.inter` (tab-separated userID, itemID, x_label[, rating, timestamp])."""
    if path.is_dir():
        path = _mmrec_file(path)
    return _read_interaction_table(path, dataset, None, sep="\t")


def _load_json(file: Path) -> object:
    """Parse a JSON file; clear errors for invalid, non-UTF-8 or absurdly nested content."""
    try:
        return json.loads(file.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataImportError(f"{file.name} is not valid JSON: {safe_reason(exc)}") from None
    except RecursionError:
        raise DataImportError(f"{file.name} is nested too deeply to be a split file (it should "
                              "map user ids to lists of item ids).") from None


def _read_split_json(path: Path, dataset: str | None) -> tuple[pd.DataFrame, ImportReport, dict]:
    """A folder with train.json / val.json / test.json mapping user index -> item indices."""
    folder = path if path.is_dir() else path.parent
    files = _split_json_files(folder)
    if not files["train"].is_file():
        raise DataImportError(f"{folder} has no train.json (expected train/val/test.json).")
    rep = ImportReport(dataset=dataset or folder.name, kind="interactions", unit="entry")
    parts = []
    entry = 0
    for split, file in files.items():
        if not file.is_file():
            continue
        data = _load_json(file)
        if not isinstance(data, dict):
            raise DataImportError(f"{file.name} must map user ids to lists of item ids.")
        users, items, labels = [], [], []
        for user, its in data.items():
            if not isinstance(its, list):
                entry += 1
                rep.rows_read += 1
                rep.add_problem("user entry is not a list", f"{file.name}: user {user}",
                                lines=[entry])
                continue
            for item in its:
                entry += 1
                rep.rows_read += 1
                if isinstance(item, bool) or not isinstance(item, (str, int)):
                    rep.add_problem("item is not an id (a number or a string)",
                                    f"{file.name}: user {user}", lines=[entry])
                    continue
                users.append(str(user))
                items.append(str(item))
                labels.append(entry)
        parts.append(pd.DataFrame({"user_id": pd.array(users, dtype="string"),
                                   "item_id": pd.array(items, dtype="string"), "split": split},
                                  index=pd.Index(labels, dtype="int64")))
    frame = pd.concat(parts)
    names = {"items": _invert_mapping(folder / "item2id.json"),
             "users": _invert_mapping(folder / "user2id.json")}
    frame["event"] = "interaction"
    frame["ts"] = pd.NaT
    frame["weight"] = 1.0
    frame = _drop_bad_id_rows(frame, rep)
    return _drop_duplicate_interactions(frame, rep), rep, names


def _invert_mapping(path: Path) -> dict[str, str]:
    """item2id.json maps ASIN -> index; return index -> ASIN for readable titles."""
    if not path.is_file():
        return {}
    try:
        return {str(v): str(k) for k, v in json.loads(path.read_bytes()).items()}
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError, RecursionError,
            TypeError):
        return {}


def _read_shop_events(store: Store, path: Path, fmt: str, dataset: str | None
                      ) -> tuple[pd.DataFrame, ImportReport, dict]:
    """A GA4 export (`recsys.data.feeds.ga4`) or a Shopify orders export
    (`recsys.data.feeds.shopify_orders`: customers as salted hashes of their e-mails)."""
    if fmt == "ga4":
        from recsys.data.feeds.ga4 import read_ga4

        frame, rep = read_ga4(path, dataset)
    else:
        from recsys.data.feeds.shopify_orders import (
            customer_salt,
            read_shopify_orders,
            sku_to_item,
        )

        name = dataset or path.stem
        frame, rep = read_shopify_orders(path, name, customer_salt(store),
                                         sku_to_item(store, name))
    mapping = {c: c for c in ("user_id", "item_id", "event", "ts")}
    return _normalise_interactions(frame, mapping, rep, default_event="purchase"), rep, {}


def _read_interaction_table(path: Path, dataset: str | None, columns: dict[str, str] | None,
                            sep: str | None = None
                            ) -> tuple[pd.DataFrame, ImportReport, dict]:
    """A delimited interaction log: map its columns, report malformed lines, normalise."""
    frame, bad = read_table(path, sep=sep)
    mapping = resolve_columns(frame, INTERACTION_ALIASES, columns)
    require_columns(mapping, ("user_id", "item_id"), frame, path.name)
    rep = ImportReport(dataset=dataset or path.stem, kind="interactions",
                       rows_read=len(frame) + len(bad), unit=frame.attrs.get("unit", "line"))
    for line, why in bad:
        rep.add_problem("malformed line", f"line {line}: {why}", lines=[line])
    return _normalise_interactions(frame, mapping, rep, default_event="interaction"), rep, {}


def _normalise_interactions(frame: pd.DataFrame, mapping: dict[str, str], rep: ImportReport,
                            default_event: str) -> pd.DataFrame:
    """Canonical columns, parsed timestamps (UTC), known splits; bad rows recorded and dropped."""
    out = pd.DataFrame({f: frame[c].str.strip() for f, c in mapping.items()})
    labels = out.index.to_numpy()
    unit = rep.unit
    keep = np.ones(len(out), dtype=bool)
    drop = row_dropper(rep, labels, keep)

    drop("missing user or item", as_mask(out["user_id"].isna() | out["item_id"].isna() |
                                       (out["user_id"] == "") | (out["item_id"] == "")),
         lambda i: f"{unit} {labels[i]}")
    drop("user or item id is not a plain id", as_mask(odd_ids(out["user_id"]) |
                                                    odd_ids(out["item_id"])),
         lambda i: f"{unit} {labels[i]} (over {MAX_ID_CHARS} characters or control characters)")
    out["event"] = out["event"].str.lower().fillna(default_event) if "event" in out \
        else default_event
    weight_given = np.zeros(len(out), dtype=bool)
    if "ts" in out:
        raw = out["ts"]
        ts = _parse_timestamps(raw)
        drop("unreadable timestamp", raw.notna().to_numpy() & ts.isna().to_numpy(),
             lambda i: f"{unit} {labels[i]}: {str(raw.iloc[i])[:40]}")
        out["ts"] = ts
    else:
        out["ts"] = pd.NaT
    if "weight" in out:
        raw = out["weight"]
        weight = pd.to_numeric(raw, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        given = raw.notna().to_numpy()
        weight_given = given
        drop("weight is not a number", given & np.isnan(weight),
             lambda i: f"{unit} {labels[i]}: {str(raw.iloc[i])[:40]}")
        with np.errstate(invalid="ignore"):
            drop("weight is negative or infinite",
                 given & ~np.isnan(weight) & (~np.isfinite(weight) | (weight < 0)),
                 lambda i: f"{unit} {labels[i]}: {str(raw.iloc[i])[:40]}")
        out["weight"] = weight
    else:
        out["weight"] = np.nan
    by_event = out["event"].map(EVENT_WEIGHTS).to_numpy(dtype="float64", na_value=np.nan)
    out["weight"] = out["weight"].fillna(pd.Series(by_event, index=out.index)).fillna(1.0)
    if "split" in out:
        split = out["split"].map(lambda s: SPLIT_NAMES.get(str(s).lower()) if pd.notna(s) else None)
        drop("unknown split label", out["split"].notna().to_numpy() & split.isna().to_numpy(),
             lambda i: f"{unit} {labels[i]}: {str(out['split'].iloc[i])[:40]}")
        out["split"] = split
    else:
        out["split"] = None
    if "rating" in out:
        raw = out["rating"]
        rating = pd.to_numeric(raw, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        with np.errstate(invalid="ignore"):
            drop("rating is not a finite number",
                 raw.notna().to_numpy() & ~np.isfinite(rating),
                 lambda i: f"{unit} {labels[i]}: {str(raw.iloc[i])[:40]}")
        out["rating"] = rating
    else:
        out["rating"] = np.nan
    _note_unknown_events(out["event"], keep, weight_given, rep)
    return out.loc[keep, ["user_id", "item_id", "event", "ts", "weight", "split", "rating"]]


def _note_unknown_events(events: pd.Series, keep: np.ndarray, weight_given: np.ndarray,
                         rep: ImportReport) -> None:
    """Rows whose event is not one of EVENT_WEIGHTS are imported as they are (weight 1 unless
    the file gives one), and said so: a count in the details and a note naming a few."""
    known = events.isin(list(EVENT_WEIGHTS)).to_numpy(dtype=bool, na_value=False)
    odd = keep & ~known
    if not odd.any():
        return
    counts = events[odd].value_counts()
    shown = ", ".join(f"{one_line(''.join(c if c.isprintable() else '?' for c in str(name)), 30)!r}"
                      f" x{int(n):,}" for name, n in counts.head(3).items())
    more = f" and {len(counts) - 3:,} other names" if len(counts) > 3 else ""
    weighted_one = int((odd & ~weight_given).sum())
    rep.details["rows with an unknown event (imported)"] = int(odd.sum())
    rep.notes.append(
        f"{int(odd.sum()):,} rows have an event the importer does not know ({shown}{more}); "
        f"they were imported as they are, {weighted_one:,} of them with weight 1 (no weight "
        f"given). Known events: {', '.join(EVENT_WEIGHTS)}; rename yours to these, or give a "
        "weight column.")


def _parse_timestamps(raw: pd.Series) -> pd.Series:
    """Epoch seconds or date strings as naive UTC times (offsets converted, NaT if unreadable)."""
    numeric = pd.to_numeric(raw, errors="coerce")
    if raw.notna().any() and numeric.notna().sum() >= raw.notna().sum() * 0.9:
        seconds = numeric.to_numpy(dtype="float64", na_value=np.nan)
        with np.errstate(invalid="ignore"):
            seconds[~(np.abs(seconds) <= MAX_EPOCH_SECONDS)] = np.nan   # also NaN, inf
        return pd.Series(pd.to_datetime(seconds, unit="s", errors="coerce"), index=raw.index)
    try:
        ts = pd.to_datetime(raw, errors="coerce", format="mixed", utc=True)
    except (ValueError, TypeError, OverflowError):
        ts = raw.map(_parse_one_timestamp).astype("datetime64[ns, UTC]")
    return ts.dt.tz_convert(None)


def _parse_one_timestamp(value: object) -> pd.Timestamp:
    try:
        return pd.to_datetime(value, utc=True)
    except (ValueError, TypeError, OverflowError):
        return pd.NaT


def _drop_bad_id_rows(frame: pd.DataFrame, rep: ImportReport) -> pd.DataFrame:
    bad = as_mask(odd_ids(frame["user_id"]) | odd_ids(frame["item_id"]))
    positions = np.flatnonzero(bad)
    rep.add_rows("user or item id is not a plain id", frame.index[positions],
                 lambda k: f"user {str(frame['user_id'].iloc[positions[k]])[:40]}")
    return frame.loc[~bad]


def _drop_duplicate_interactions(frame: pd.DataFrame, rep: ImportReport) -> pd.DataFrame:
    dup = frame.duplicated(["user_id", "item_id", "split"]).to_numpy()
    positions = np.flatnonzero(dup)
    rep.add_rows("duplicate interaction", frame.index[positions],
                 lambda k: f"user {frame['user_id'].iloc[positions[k]]} item "
                           f"{frame['item_id'].iloc[positions[k]]}")
    return frame.loc[~dup]
