"""Use cases of housekeeping: how much disk the database and its files take, and deleting old
model files (`python -m recsys status` / `prune-models`, the Data page's "Disk use" block).

The rules live in `recsys.recommend.housekeeping`: `prune_models` keeps the newest N model files per
model (never the newest finished run of a model, nor the newest of each split, so `evaluate`
and `recommend_for` never retrain because of it), and the runs keep their rows and metrics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recsys.store import Store

if TYPE_CHECKING:
    from recsys.recommend.housekeeping import DiskUsage, PruneReport


def disk_usage(store: Store) -> DiskUsage:
    """Bytes (and files) on disk of the database (with its write-ahead log), its model files,
    encoder checkpoints, search indexes and other artifacts (`<data dir>/artifacts/<database
    stem>/`); `.summary()` is one line, `.rows()` a table, `.to_dict()` JSON."""
    from recsys.recommend.housekeeping import disk_usage as measure

    return measure(store)


def prune_models(store: Store, dataset: str | None = None, *, model: str | None = None,
                 keep: int | None = None, dry_run: bool = False,
                 all_datasets: bool = False) -> PruneReport:
    """Delete all but the newest `keep` model files per model of `dataset` (every dataset with
    `all_datasets`); `keep` None: $RECSYS_KEEP_MODELS or 3, 0 keeps every file. `dry_run`
    only says what would go. The newest finished run of each model, and of each split, keeps
    its file whatever `keep` says; deleted runs keep their rows, curves and metrics.
    """
    from recsys.recommend.housekeeping import prune_models as prune
    from recsys.recommend.training import forget_cached_models

    from ..models import get_spec

    dataset = None if all_datasets else store.resolve_dataset(dataset)
    if model is not None:
        get_spec(model)                       # an unknown name lists the known ones
    report = prune(store, dataset, model, keep=keep, dry_run=dry_run)
    if not dry_run:
        forget_cached_models(d["path"] for d in report.deleted)
    return report
