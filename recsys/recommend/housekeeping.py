"""Housekeeping: deleting old model files, and how much disk the database and its files use.

`prune_models` keeps the newest N model files per (dataset, model) and deletes the older ones
(a Clothing EASE file was 2.1 GB before issue 14); the runs stay in the registry with their
metrics and epochs, only marked as having no file. It never deletes the file of the newest
finished run of a model, nor of the newest one per split (protocol, seed), so evaluation never
has to retrain because of it. `train_model` calls it after each successful run (N from
`$RECSYS_KEEP_MODELS`, default 3; 0 keeps everything).

`disk_usage` sizes the database, the model files, the encoder checkpoints and the search
indexes beside it: the numbers `status` shows.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from recsys.core import config
from recsys.core.errors import RecsysError
from recsys.store import Store

KEEP_ENV = "RECSYS_KEEP_MODELS"
DEFAULT_KEEP = 3


def keep_models_default() -> int:
    """Model files kept per model: $RECSYS_KEEP_MODELS (0 = keep all), else 3."""
    raw = os.environ.get(KEEP_ENV, "").strip()
    if not raw:
        return DEFAULT_KEEP
    try:
        return max(0, int(raw))
    except ValueError:
        raise RecsysError(f"{KEEP_ENV} must be a whole number (0 keeps every model file), "
                          f"not {raw!r}.") from None


@dataclass
class PruneReport:
    """What `prune_models` kept and deleted (or would delete, with `dry_run`)."""

    keep: int
    dry_run: bool
    kept: list[int] = field(default_factory=list)
    deleted: list[dict[str, Any]] = field(default_factory=list)

    @property
    def freed_bytes(self) -> int:
        return int(sum(d["bytes"] for d in self.deleted))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "freed_bytes": self.freed_bytes}

    def summary(self) -> str:
        verb = "Would delete" if self.dry_run else "Deleted"
        if not self.deleted:
            return f"Nothing to delete: at most {_files(self.keep)} per model."
        return (f"{verb} {_files(len(self.deleted))} ({format_bytes(self.freed_bytes)}); "
                f"kept {len(self.kept)} (the newest {self.keep} per model, and the newest "
                "of each split).")


def _files(n: int) -> str:
    return f"{n:,} model file{'' if n == 1 else 's'}"


def prune_models(store: Store, dataset: str | None = None, model: str | None = None,
                 keep: int | None = None, dry_run: bool = False) -> PruneReport:
    """Delete all but the newest `keep` model files per (dataset, model).

    Protected whatever `keep` says: the newest finished run of each model whose file exists,
    and the newest per split (protocol, split seed). Deleted runs keep their rows, epochs and
    metrics; their `artifact_path` is cleared and the message says why. `keep=0` keeps all.
    """
    keep = keep_models_default() if keep is None else int(keep)
    if keep < 0:
        raise RecsysError("keep must be 0 (keep every file) or more.")
    report = PruneReport(keep, dry_run)
    runs = store.model_runs_with_files(dataset)
    if model is not None:
        runs = runs[runs["model"] == model]
    if keep == 0 or runs.empty:
        report.kept = [int(r) for r in runs["run_id"]]
        return report
    configs = {int(r["run_id"]): r for r in
               store.runs(dataset, kind="model").to_dict("records")} if len(runs) else {}
    doomed: list[int] = []
    for (_, _), group in runs.groupby(["dataset", "model"], sort=False, dropna=False):
        group = group.sort_values("run_id", ascending=False)
        exists = [Path(p).is_file() for p in group["artifact_path"]]
        protected: set[int] = set()
        seen_splits: set[tuple] = set()
        for row, ok in zip(group.to_dict("records"), exists):
            if not ok or row["status"] != "finished":
                continue
            if not protected:
                protected.add(int(row["run_id"]))          # newest finished of the model
            split = _split_of(configs.get(int(row["run_id"]), {}))
            if split not in seen_splits:
                seen_splits.add(split)
                protected.add(int(row["run_id"]))          # newest finished of each split
        kept_files = 0
        for row, ok in zip(group.to_dict("records"), exists):
            run_id = int(row["run_id"])
            if not ok:
                continue                                    # nothing on disk to delete
            if run_id in protected or kept_files < keep:
                report.kept.append(run_id)
                kept_files += 1
                continue
            path = Path(row["artifact_path"])
            report.deleted.append({"run_id": run_id, "dataset": row["dataset"],
                                   "model": row["model"], "path": str(path),
                                   "bytes": path.stat().st_size})
            doomed.append(run_id)
    if dry_run or not doomed:
        return report
    for entry in report.deleted:
        Path(entry["path"]).unlink(missing_ok=True)
    store.forget_run_artifacts(doomed, f"model file deleted by housekeeping (kept the newest "
                                       f"{keep} per model)")
    return report


def _split_of(run: dict) -> tuple:
    raw = run.get("config")
    try:
        cfg = json.loads(raw) if isinstance(raw, str) else (raw or {})
    except ValueError:
        cfg = {}
    return cfg.get("protocol"), cfg.get("split_seed")


# -- disk use -----------------------------------------------------------------------------------
@dataclass
class DiskUsage:
    """Bytes on disk per kind of file beside one database."""

    database: int
    models: int
    model_files: int
    encoders: int
    encoder_files: int
    indexes: int
    index_files: int
    other: int
    artifacts_dir: str

    @property
    def total(self) -> int:
        return self.database + self.models + self.encoders + self.indexes + self.other

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total": self.total}

    def rows(self) -> list[tuple[str, int, int | None]]:
        """(label, bytes, files) for a table."""
        return [("database", self.database, None), ("model files", self.models,
                                                      self.model_files),
                ("encoder checkpoints", self.encoders, self.encoder_files),
                ("search indexes", self.indexes, self.index_files),
                ("other artifacts", self.other, None), ("total", self.total, None)]

    def summary(self) -> str:
        parts = []
        for label, size, files in self.rows():
            count = f" in {files:,} file{'' if files == 1 else 's'}" if files else ""
            parts.append(f"{label} {format_bytes(size)}{count}")
        return "Disk use: " + ", ".join(parts)


def disk_usage(store: Store) -> DiskUsage:
    """Sizes of the database file (with its WAL), the model files, the encoder checkpoints and
    the search indexes (files under this database's artifacts directory,
    `<data dir>/artifacts/<database stem>/`, plus any recorded file that lives elsewhere), and
    the remaining artifacts. Another database's files in the same folder are not counted."""
    if str(store.path) == ":memory:":
        return DiskUsage(0, 0, 0, 0, 0, 0, 0, 0, "")
    root = config.artifacts_dir(store.path, create=False)     # this database's files only
    seen: set[Path] = set()

    def size_of(paths) -> tuple[int, int]:
        total = files = 0
        for p in paths:
            p = Path(p)
            try:
                real = p.resolve()
                if real in seen or not real.is_file():
                    continue
                seen.add(real)
                total += real.stat().st_size
                files += 1
            except OSError:
                continue
        return total, files

    def under(sub: str):
        folder = root / sub
        return folder.rglob("*") if folder.is_dir() else []

    models, n_models = size_of(list(under("models")) +
                               [p for p in store.model_runs_with_files()["artifact_path"]])
    encoders, n_encoders = size_of(list(under("encoders")) +
                                   [p for p in store.encoder_files()["path"]])
    indexes, n_indexes = size_of(under("indexes"))
    other, _ = size_of(root.rglob("*") if root.is_dir() else [])
    return DiskUsage(store.database_bytes(), models, n_models, encoders, n_encoders, indexes,
                     n_indexes, other, str(root))


DATASET_FOLDERS = ("models", "indexes", "tower-features", "embed-shards", "examples")
"""The kinds of files kept per dataset under `<data dir>/artifacts/<database stem>/<kind>/
<dataset>/`: model files, search indexes, the alignment's photo-feature shards, the Ray
embedding's shards and the Visual search example photos. Maps and simulator caches are keyed by
content and shared, encoder checkpoints may serve other datasets: those stay."""


def delete_dataset_files(store: Store, dataset: str) -> tuple[int, int]:
    """Delete this database's per-dataset folders of `dataset` (`DATASET_FOLDERS`); returns
    (bytes, files) freed. Only folders inside this database's artifacts directory are touched,
    whatever the dataset's name; another database's or dataset's files stay."""
    import shutil

    from recsys.core.files import path_part

    if str(store.path) == ":memory:":
        return 0, 0
    root = config.artifacts_dir(store.path, create=False).resolve()
    freed = files = 0
    for kind in DATASET_FOLDERS:
        for name in {dataset, path_part(dataset)}:
            folder = (root / kind / name).resolve()
            if folder.parent != (root / kind).resolve() or not folder.is_dir():
                continue
            for f in folder.rglob("*"):
                if f.is_file() and not f.is_symlink():
                    freed += f.stat().st_size
                    files += 1
            shutil.rmtree(folder, ignore_errors=True)
    return freed, files


def format_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"
