"""Use cases of the data: import catalogs and interactions (files on disk or uploaded bytes),
simulate shoppers, build the demo, list, choose and delete datasets, look at one shopper.

The importers themselves (validation, reports, what is skipped or refused) live in
`recsys.data.catalog_import`, `recsys.data.interactions_import` and `recsys.data.uploads`;
these functions add what both the app and the CLI need around them and pass every importer
option through unchanged (`**options`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from recsys.core.errors import RecsysError
from recsys.core.limits import (
    MAX_DEMO_ITEMS,
    MAX_SIMULATED_USERS,
    MIN_DEMO_ITEMS,
    as_int,
    check_range,
    check_seed,
)
from recsys.core.paths import PathNotAllowed, PathPolicy, policy_or_any
from recsys.core.progress import ProgressCallback
from recsys.store import Store

if TYPE_CHECKING:
    from recsys.data.report import ImportReport


@dataclass(frozen=True)
class Upload:
    """A file sent through the app: its name (only the base name is kept) and its bytes."""

    name: str
    data: bytes = field(repr=False)


def _upload_dataset(store: Store, dataset: str | None, what: str) -> str:
    """The dataset an upload belongs to (named, valid as a folder name)."""
    from recsys.data.uploads import upload_dir

    if not dataset:
        raise RecsysError(f"Name the dataset the uploaded {what} belongs to.")
    upload_dir(store, dataset)                # checks the name before any work
    return dataset


def app_path_policy() -> PathPolicy:
    """What the pages pass as `path_policy`: paths typed into the app are read only under the
    data roots (`RECSYS_DATA_ROOTS`; see `recsys.core.paths`)."""
    return PathPolicy.for_app()


def import_catalog(store: Store, table: str | Path | Upload,
                   images: str | Path | Upload | None = None, *,
                   path_policy: PathPolicy | None = None, **options: Any) -> ImportReport:
    """Validate a catalog table and its photos, then add the items in one transaction (or
    nothing: a refused import changes nothing).

    `table`: a CSV / TSV / Parquet file, or an `Upload` of one. `images`: the photo folder, or
    (with an uploaded table) an `Upload` of a zip of photos, unpacked into a fresh folder under
    the dataset's uploads (the report's `details["photos unpacked"]` says how many; the folder
    is removed when the import is refused, and only photos that items use are kept).
    `path_policy`: the folders paths may lie in (`PathNotAllowed` otherwise, before anything is
    read; photos must lie in the images folder anyway); None, any path (the CLI).
    `options` go to `recsys.data.catalog_import.import_catalog` as they are (fmt, dataset, on_error,
    columns, progress...).
    """
    from recsys.data.catalog_import import import_catalog as run
    from recsys.data.catalog_import import myntra_images_dir
    from recsys.data.uploads import import_catalog_upload, upload_dir

    dataset = options.pop("dataset", None)
    if isinstance(table, Upload) or isinstance(images, Upload):
        if not isinstance(table, Upload) or (images is not None
                                             and not isinstance(images, Upload)):
            raise RecsysError("Upload both the table and the zip of photos, or give both as "
                              "paths on this machine.")
        dataset = _upload_dataset(store, dataset, "catalog")
        return import_catalog_upload(store, dataset, table.data, table.name,
                                     images_zip=None if images is None else images.data,
                                     **options)
    if dataset:
        upload_dir(store, dataset)            # checks the name before any work
    policy = policy_or_any(path_policy)
    table = policy.check(table, "The catalog table path")
    if options.get("fmt") == "auto":
        from recsys.data.feeds.detect import detect_catalog_format

        options["fmt"] = detect_catalog_format(table)
    if images is None and options.get("fmt") == "myntra" and policy.restricted:
        images = myntra_images_dir(table)         # the folder the importer would read
    images = policy.check_optional(images, "The images folder")
    return run(store, table, images, dataset=dataset, **options)


@dataclass
class CatalogPreview:
    """What the Data page shows before an import: the detected (or forced) `format` with its
    `description`, the products read (`products`, from `entries` lines or entries), how many
    name their photo by URL (downloaded on import) and the first `rows` products."""

    format: str
    description: str
    products: int
    entries: int
    photo_urls: int
    rows: pd.DataFrame
    details: dict[str, Any] = field(default_factory=dict)


def preview_catalog(table: str | Path | Upload, fmt: str = "auto", rows: int = 5, *,
                    path_policy: PathPolicy | None = None) -> CatalogPreview:
    """Read a catalog file (a path, checked against `path_policy`, or an `Upload`) the way
    `import_catalog` would, without writing anything, and describe it."""
    import tempfile

    from recsys.data.downloads import url_mask
    from recsys.data.feeds.detect import (
        describe_format,
        detect_catalog_format,
        read_catalog_feed,
    )
    from recsys.data.catalog_import import ITEM_ALIASES
    from recsys.data.readers import read_table, resolve_columns
    from recsys.data.uploads import save_upload

    rows = check_range(rows, "rows", 1, 100)
    with tempfile.TemporaryDirectory(prefix="recsys-preview-") as tmp:
        if isinstance(table, Upload):
            path = save_upload(table.data, Path(tmp), table.name)
        else:
            path = policy_or_any(path_policy).check(table, "The catalog table path")
        fmt = detect_catalog_format(path) if fmt == "auto" else fmt
        details: dict[str, Any] = {}
        if fmt in ("merchant", "shopify"):
            feed = read_catalog_feed(path, fmt)
            frame, entries, details = feed.frame, feed.entries, dict(feed.details)
            photos = frame["image_path"]
        else:
            frame, bad = read_table(path)
            entries = len(frame) + len(bad)
            column = resolve_columns(frame, ITEM_ALIASES).get("image_path")
            photos = frame[column] if column else pd.Series([], dtype="string")
        urls = int(url_mask(photos).sum())
        shown = frame.head(rows).drop(columns=["extra"], errors="ignore").reset_index(drop=True)
    return CatalogPreview(fmt, describe_format(fmt), len(frame), entries, urls, shown, details)


def import_interactions(store: Store, source: str | Path | Upload, *,
                        path_policy: PathPolicy | None = None,
                        **options: Any) -> ImportReport:
    """Import an interaction log (MMRec `.inter`, a folder or file of split JSON, or a CSV with
    user, item, event, timestamp columns), or an `Upload` of one (its copy is deleted after the
    import). `path_policy`: the folders `source` and the files read beside it may lie in
    (`PathNotAllowed` otherwise; None: any path). `options` go to
    `recsys.data.interactions_import.import_interactions` as they are (fmt, dataset, on_error, columns,
    append, replace, progress...). An import that would leave the dataset with fewer
    interactions than before is refused (`report.reason`) unless `replace=True`."""
    from recsys.data.interactions_import import import_interactions as run
    from recsys.data.interactions_import import interaction_files
    from recsys.data.uploads import import_interactions_upload

    if isinstance(source, Upload):
        dataset = _upload_dataset(store, options.pop("dataset", None), "log")
        return import_interactions_upload(store, dataset, source.data, source.name, **options)
    policy = policy_or_any(path_policy)
    source = policy.check(source, "The interaction file path")
    if policy.restricted:
        for file in interaction_files(source, options.get("fmt", "csv")):
            policy.check(file, "A file of the interaction log")
    return run(store, source, **options)


def simulate(store: Store, dataset: str | None = None, users: int = 2000, seed: int = 0,
             progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Simulate `users` shoppers and their view / cart / purchase sessions for the dataset's
    catalog, replacing its users and interactions; returns the counts (users,
    users_with_history, interactions, views, carts, purchases, items_touched)."""
    from recsys.simulation.shoppers import SimulationConfig, simulate_into

    users, seed = _shoppers(users), check_seed(seed)
    dataset = store.resolve_dataset(dataset)
    return simulate_into(store, dataset, SimulationConfig(users=users, seed=seed), progress)


def _shoppers(users: object) -> int:
    """A number of shoppers to simulate: 1 .. `MAX_SIMULATED_USERS`."""
    if as_int(users, "users") < 1:
        raise RecsysError("Simulate at least 1 user.")
    return check_range(users, "users", 1, MAX_SIMULATED_USERS,
                       "simulated shoppers; more would take hours and the A/B test replays them")


def init_demo(store: Store, items: int = 320, users: int = 600, seed: int = 0,
              force: bool = False, progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Draw the built-in demo catalog and simulate its shoppers (kept as it is when it exists,
    unless `force`); makes it the active dataset. Returns its sizes and `existing`."""
    from recsys.demo.catalog import build_demo

    items = check_range(items, "items", MIN_DEMO_ITEMS, MAX_DEMO_ITEMS, "demo products")
    users, seed = _shoppers(users), check_seed(seed)
    return build_demo(store, n_items=items, n_users=users, seed=seed, force=force,
                      progress=progress)


def status(store: Store) -> dict[str, Any]:
    """The database at a glance: its path, the active dataset, per dataset (newest first) its
    kind, source, attribution, sizes, stored item vectors and number of runs, and `disk`: the
    bytes its files take (`housekeeping.disk_usage(...).to_dict()`)."""
    from .housekeeping import disk_usage

    frame = store.datasets()
    out: dict[str, Any] = {"database": str(store.path), "active_dataset": store.active_dataset(),
                           "datasets": [], "disk": disk_usage(store).to_dict()}
    for row in frame.to_dict("records"):
        name = row["name"]
        out["datasets"].append({
            "name": name, "kind": row["kind"], "source": row["source"],
            "attribution": row["attribution"], "created_at": row["created_at"],
            "items": int(row["n_items"]), "items_with_images": int(row["n_images"]),
            "users": int(row["n_users"]), "interactions": int(row["n_interactions"]),
            "embeddings": store.embedding_sets(name).to_dict("records"),
            "runs": int(len(store.runs(name)))})
    return out


def use_dataset(store: Store, name: str) -> str:
    """Make an existing dataset the active one (what commands and new app sessions use)."""
    name = store.resolve_dataset(name)
    store.set_active_dataset(name)
    return name


class ConfirmationNeeded(RecsysError):
    """A destructive action asked without its confirmation."""


def delete_dataset(store: Store, name: str, confirm: bool = False) -> dict[str, Any]:
    """Delete a dataset with its items, users, interactions, vectors and runs, in one
    transaction, then its files (models, indexes, feature shards); without `confirm`, only say
    what would go (`ConfirmationNeeded`)."""
    name = store.resolve_dataset(name)
    counts = store.counts(name)
    if not confirm:
        raise ConfirmationNeeded(
            f"This deletes '{name}' ({counts['items']:,} items, "
            f"{counts['interactions']:,} interactions, {counts['runs']} runs). Re-run with "
            "--yes to confirm (in the app: type the dataset's name).")
    from recsys.recommend.housekeeping import delete_dataset_files

    store.delete_dataset(name)
    freed, files = delete_dataset_files(store, name)
    return {"deleted": name, **counts, "files_deleted": files, "bytes_freed": freed}


@dataclass
class Shopper:
    """One user: name, segment, the simulator's hidden tastes that show in their history (empty
    for real data), event counts and the history (item rows with event, ts, weight, split),
    newest first."""

    user_id: str
    name: str | None
    segment: str | None
    tastes: list[str]
    events: dict[str, int]
    history: pd.DataFrame = field(repr=False)
    """Item rows with event, ts, weight, split and `for_whom` ("for partner", "for children"
    for a simulated shopper's items bought for someone else in their declared segment)."""


TASTE_KEYS = ("favourite_types", "favourite_colours", "visual_style", "favourite_brands")
TASTE_COLUMNS = {"favourite_types": "article_type", "favourite_colours": "base_colour",
                 "favourite_brands": "brand"}
"""Tastes that name a catalog attribute: shown only when some history item has it (a drawn
favourite colour the shopper never met would look made up). The visual style words describe
the photos and are shown as they are."""


def _shown_tastes(profile: dict[str, Any], history: pd.DataFrame) -> list[str]:
    from recsys.data.attributes import infer_brands

    present: dict[str, set[str]] = {}
    for key, column in TASTE_COLUMNS.items():
        if column == "brand":
            values = infer_brands(history["title"] if "title" in history else [],
                                  history["brand"] if "brand" in history else None)
        else:
            values = history[column] if column in history else []
        present[key] = {str(v).strip().lower() for v in values if isinstance(v, str) and v}
    out = []
    for key in TASTE_KEYS:
        for value in profile.get(key, []):
            value = str(value)
            if key in present and value.strip().lower() not in present[key]:
                continue
            out.append(value)
    return list(dict.fromkeys(out))


def shopper(store: Store, dataset: str | None, user_id: str) -> Shopper:
    """A user of the dataset with their history (for the User picks page)."""
    from recsys.data.interactions import UnknownUser, unknown_user_message

    dataset = store.resolve_dataset(dataset)
    user = store.user(dataset, user_id)
    if user is None:
        raise UnknownUser(unknown_user_message(user_id, store.users(dataset)["user_id"],
                                               dataset))
    profile = json.loads(user["profile"]) if isinstance(user.get("profile"), str) else {}
    history = store.user_history(dataset, str(user_id))
    from recsys.simulation.shoppers import recipient_label
    history = history.assign(for_whom=[recipient_label(profile, g) for g in (
        history["gender"] if "gender" in history else [None] * len(history))])
    counts = history["event"].value_counts()
    segment = _text(user.get("segment"))
    if segment:
        segment = " · ".join(p.strip() for p in segment.split("·") if p.strip()) or None
    return Shopper(str(user_id), _text(user.get("name")), segment,
                   _shown_tastes(profile, history),
                   {e: int(counts.get(e, 0)) for e in ("view", "cart", "purchase")}, history)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# -- the Myntra sample (issue-demo) -------------------------------------------------------------
MYNTRA_FOLDER = "myntra_fashion"


def find_myntra_sample(folder: str | Path | None = None, *,
                       path_policy: PathPolicy | None = None) -> Path | None:
    """The folder holding the Kaggle Myntra sample (`styles.csv` + `images/`): `folder` itself,
    or its `myntra_fashion` subfolder; by default looked for in the shared datasets folder
    (`../shared/datasets`, or `$RECSYS_SHARED_DATASETS`). None when it is not there.
    `path_policy` applies to a `folder` given (`PathNotAllowed` outside its folders, before
    anything is looked at; a candidate whose files lead out of them is not a sample)."""
    from recsys.core.config import shared_datasets_dir

    policy = policy_or_any(path_policy)
    if folder:
        root = policy.check(folder, "The Myntra folder")
        root = root if policy.restricted else root.expanduser()
    else:
        root = shared_datasets_dir()
    for candidate in (root, root / MYNTRA_FOLDER):
        if folder and policy.restricted:
            try:
                for part in (candidate, candidate / "styles.csv", candidate / "images"):
                    policy.check(part)
            except PathNotAllowed:
                continue
        if (candidate / "styles.csv").is_file() and (candidate / "images").is_dir():
            return candidate
    return None


def load_myntra_sample(store: Store, folder: str | Path | None = None, *,
                       dataset: str = "myntra", users: int = 2000, seed: int = 0,
                       progress: ProgressCallback | None = None,
                       path_policy: PathPolicy | None = None) -> dict[str, Any]:
    """One click from nothing to a real catalog with shoppers: import the Myntra sample's
    products that have a photo (`find_myntra_sample(folder)`) as `dataset`, then simulate
    `users` shoppers for it (replacing the dataset's shoppers when it exists). Progress: the
    import on the first 45% of the bar, the simulation on the rest. Returns the import
    report's counts and the simulation's; makes the dataset the active one. `path_policy`
    applies to a `folder` given (the default folder is the server's own setting)."""
    import time

    from recsys.core.progress import scaled
    from recsys.simulation.shoppers import SimulationConfig, simulate_into

    policy = policy_or_any(path_policy) if folder else None
    found = find_myntra_sample(folder, path_policy=policy)
    if found is None:
        where = Path(folder).expanduser() if folder else "the shared datasets folder"
        raise RecsysError(f"No Myntra sample in {where}: expected styles.csv and an images/ "
                          f"folder there or in its {MYNTRA_FOLDER}/ subfolder (the Kaggle "
                          "'Fashion Product Images (Small)' layout).")
    users, seed = _shoppers(users), check_seed(seed)
    t0 = time.perf_counter()
    rep = import_catalog(store, found / "styles.csv", found / "images", fmt="myntra",
                         dataset=dataset, progress=scaled(progress, 0.0, 0.45),
                         path_policy=policy)
    if rep.refused or rep.imported == 0:
        raise RecsysError(f"The Myntra sample in {found} gave no products: {rep.summary()}")
    sim = simulate_into(store, dataset, SimulationConfig(users=users, seed=seed),
                        scaled(progress, 0.45, 1.0))
    store.set_active_dataset(dataset)
    return {"source": str(found), "items": rep.imported, "skipped": rep.skipped, **sim,
            "seconds": time.perf_counter() - t0}
