"""Training on demand: one call trains a registered model, records the run and saves it safely.

`train_model` splits the data, fits the model with per-epoch validation and early stopping
(see `models.base`), records the run, its config (plain JSON: enough to reproduce it from the
database alone) and its curves in DuckDB, and writes the model with `atomic_path`. A run that
fails or is interrupted is marked so and writes nothing, so `load_model` keeps returning the
last good model. After a finished run, older files of the same model beyond the newest
`keep_models` are deleted (`housekeeping.prune_models`; their runs and metrics stay).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.core import config
from recsys.core.errors import RecsysError
from recsys.core.files import atomic_path
from recsys.core.progress import ProgressCallback, report, scaled
from recsys.data.interactions import InteractionData, load_data
from recsys.models import get_spec
from recsys.models.base import Recommender
from recsys.models.epochs import EpochStats
from recsys.models.errors import DamagedModelFile
from recsys.recommend.housekeeping import prune_models
from recsys.store import Store

CACHE_SIZE = 8


class ModelNotTrained(RecsysError):
    """No finished training run matches the request."""


class StaleModel(ModelNotTrained):
    """A run trained on other data than the dataset holds now (so its numbers would be wrong)."""


class DamagedModel(ModelNotTrained):
    """Every run that matched has a damaged model file (`skipped`: one note per run); like
    any `ModelNotTrained`, callers that may train do so."""

    def __init__(self, message: str, skipped: list[str]):
        super().__init__(message)
        self.skipped = skipped


def data_fingerprint(data: InteractionData) -> str:
    """A short hash of everything a model learns from: the users and items (ids, order), the
    split (protocol and its train / valid / test matrices) and every content matrix (hence the
    encoder version and the vectors themselves). Recorded with each run; a run is only used on
    data with the same fingerprint. Computed once per data object (~20 MB hashed on Myntra)."""
    known = getattr(data, "_fingerprint", None)
    if known is not None:
        return known
    h = hashlib.sha1()
    h.update(f"{data.protocol}\x1f{data.encoder}".encode())
    for ids in (data.user_ids, data.item_ids):
        h.update("\x1f".join(map(str, ids)).encode())
        h.update(b"\x1e")
    for split in (data.train, data.valid, data.test):
        m = split.tocsr()
        m.sort_indices()
        for part in (m.indptr, m.indices, m.data):
            h.update(np.ascontiguousarray(part).tobytes())
    for signal in sorted(data.modalities):
        h.update(signal.encode())
        h.update(np.ascontiguousarray(data.content(signal), dtype=np.float32).tobytes())
    if data.ratings is not None:             # explicit ratings (issue-modal)
        h.update(b"ratings")
        for part in (data.ratings.users, data.ratings.items, data.ratings.values):
            h.update(np.ascontiguousarray(part).tobytes())
    data._fingerprint = h.hexdigest()[:16]
    return data._fingerprint


def check_fingerprint(run: "TrainedRun", data: InteractionData) -> None:
    """Raise `StaleModel` when `run` was trained on other data than `data` (other interactions
    or items, another split, other item vectors), or recorded no fingerprint."""
    if run.config.get("fingerprint") != data_fingerprint(data):
        raise StaleModel(
            f"Run {run.run_id} ({run.name}) was trained on different data than dataset "
            f"'{run.dataset}' holds now (interactions, items, split or item vectors changed "
            f"since), so its picks and scores would be wrong. Retrain it: `python -m recsys "
            f"train --model {run.name} --dataset {run.dataset}` (or the Train page).")


@dataclass
class TrainedRun:
    """A fitted model with the run that produced it."""

    run_id: int
    name: str
    dataset: str
    model: Recommender
    config: dict[str, Any]
    status: str = "finished"
    seconds: float | None = None
    artifact_path: str | None = None
    history: list[EpochStats] = field(default_factory=list)
    pruned: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Newer runs passed over because their model file is damaged (one sentence each)."""

    def summary(self) -> dict[str, Any]:
        """Plain data for --json and the app (no model object)."""
        return {"run_id": self.run_id, "model": self.name, "dataset": self.dataset,
                "status": self.status, "seconds": self.seconds,
                "artifact_path": self.artifact_path, "best_epoch": self.model.best_epoch,
                "config": self.config, "epochs": [asdict(h) for h in self.history],
                "pruned": self.pruned, "skipped": self.skipped}


def model_path(store: Store, dataset: str, name: str, run_id: int) -> Path:
    return config.artifacts_dir(store.path, "models", dataset) / f"{name}-run{run_id}.npz"


def train_model(store: Store, dataset: str, name: str, params: dict[str, Any] | None = None,
                progress: ProgressCallback | None = None, protocol: str = "auto",
                split_seed: int = 0, data: InteractionData | None = None,
                keep_models: int | None = None,
                extra_config: dict[str, Any] | None = None) -> TrainedRun:
    """Train `name` on `dataset`'s training split, record the run and save the model.

    `params` are the model's hyperparameters (strings are converted); `protocol` the split
    (auto, stored, random, temporal); `keep_models` how many files of this model to keep
    (default $RECSYS_KEEP_MODELS or 3, 0 = all); `extra_config` is stored with the run's config
    (e.g. "tuning": the search that chose `params`). The progress callback gets one event per
    epoch with `metrics` = epoch, train_loss, val_loss, val_ndcg@20. Raises after recording the run as
    failed or interrupted; the previously saved model then stays the one `load_model` returns.
    """
    spec = get_spec(name)
    model = spec.create(**(params or {}))
    if data is None:
        report(progress, 0, 1, "reading interactions", stage="data")
        data = load_data(store, dataset, protocol, split_seed)
    spec.check_signals(data.signals, dataset, model)
    run_config = {"model": name, "params": asdict(model.config), "protocol": data.protocol,
                  "split_seed": split_seed, "encoder": data.encoder,
                  "sources": dict(data.sources),
                  "users": data.n_users, "items": data.n_items,
                  "train_interactions": int(data.train.nnz),
                  "fingerprint": data_fingerprint(data), **(extra_config or {})}
    run_id = store.start_run(dataset, "model", name, run_config)
    t0 = time.perf_counter()

    def on_epoch(stats: EpochStats) -> None:
        store.add_epoch(run_id, stats.epoch, stats.train_loss, stats.val_loss,
                        stats.metrics(), stats.seconds)

    try:
        model.fit(data, progress=scaled(progress, 0.0, 0.97), on_epoch=on_epoch)
        path = model_path(store, dataset, name, run_id)
        with atomic_path(path) as tmp:
            model.save(tmp)
    except Exception as exc:
        store.finish_run(run_id, "failed", time.perf_counter() - t0, message=str(exc)[:500])
        raise
    except BaseException:
        # Ctrl-C, or Streamlit stopping the script when the user leaves the page
        store.finish_run(run_id, "interrupted", time.perf_counter() - t0,
                         message="stopped before it finished")
        raise
    seconds = time.perf_counter() - t0
    run_config["best_epoch"] = model.best_epoch
    run_config["params"] = asdict(model.config)      # as fitted: e.g. the modalities it used
    if getattr(model, "cf_fallback", False):
        run_config["cf_fallback"] = True
    store.finish_run(run_id, "finished", seconds, artifact_path=str(path), config_=run_config)
    report(progress, 1, 1, f"saved {name} (run {run_id})", stage="save")
    pruned = _prune_after_training(store, dataset, name, keep_models)
    return TrainedRun(run_id, name, dataset, model, run_config, "finished", seconds, str(path),
                      list(model.history), pruned)


def _prune_after_training(store: Store, dataset: str, name: str,
                          keep: int | None) -> list[dict[str, Any]]:
    """Delete this model's files beyond the newest `keep`; a failure to delete never fails
    the training that just succeeded."""
    try:
        deleted = prune_models(store, dataset, name, keep=keep).deleted
    except OSError:
        return []
    forget_cached_models(d["path"] for d in deleted)
    return deleted


def forget_cached_models(paths) -> None:
    """Drop in-process copies of models whose files were deleted."""
    gone = {str(p) for p in paths}
    with _cache_lock:
        for key in [k for k in _cache if k[0] in gone]:
            del _cache[key]


_cache: OrderedDict[tuple[str, float], Recommender] = OrderedDict()
_cache_lock = threading.Lock()
_damaged: dict[tuple[str, int, int], str] = {}
"""Model files found damaged in this process, by (path, mtime_ns, size): not read again while
unchanged (a run skipped once stays skipped quickly)."""


def _read_model(path: str) -> Recommender:
    """Load a model file, reusing the in-process copy while the file is unchanged (several app
    sessions, i.e. threads, may ask at once). A damaged file raises `DamagedModelFile`, and
    again at once on the next call while it is unchanged."""
    stat = Path(path).stat()
    key = (path, stat.st_mtime)
    mark = (path, stat.st_mtime_ns, stat.st_size)
    with _cache_lock:
        model = _cache.get(key)
        if model is not None:
            _cache.move_to_end(key)
            return model
        reason = _damaged.get(mark)
    if reason is not None:
        raise DamagedModelFile(path, reason)
    try:
        model = Recommender.load(path)
    except DamagedModelFile as exc:
        with _cache_lock:
            _damaged[mark] = exc.reason
        raise
    with _cache_lock:
        _cache[key] = model
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return model


def finished_runs(store: Store, dataset: str, protocol: str | None = None,
                  split_seed: int | None = None, fingerprint: str | None = None
                  ) -> pd.DataFrame:
    """The model runs a model can be loaded from: finished, with their file still on disk,
    newest first (optionally only those trained on one split protocol / split seed, or on data
    with one `data_fingerprint`).

    The one definition of a usable run: `find_run` / `load_model`, the app's run pickers and
    the `list_runs` use case all read it.
    """
    runs = store.runs(dataset, kind="model")
    if runs.empty:
        return runs
    usable = np.array([status == "finished" and isinstance(path, str) and Path(path).is_file()
                       for status, path in zip(runs["status"], runs["artifact_path"])], dtype=bool)
    if protocol is not None or split_seed is not None or fingerprint is not None:
        configs = [json.loads(c) if c else {} for c in runs["config"]]
        usable &= np.array([(protocol is None or c.get("protocol") == protocol)
                            and (split_seed is None or c.get("split_seed") == split_seed)
                            and (fingerprint is None or c.get("fingerprint") == fingerprint)
                            for c in configs], dtype=bool)
    return runs[usable].reset_index(drop=True)


def _matching_runs(store: Store, dataset: str, name_or_run_id: str | int | None,
                   protocol: str | None, split_seed: int | None, fingerprint: str | None
                   ) -> tuple[list[dict[str, Any]], str]:
    """The usable runs matching a name or a run id, newest first, and how to name them."""
    runs = finished_runs(store, dataset, protocol, split_seed, fingerprint)
    if name_or_run_id is not None and str(name_or_run_id).isdigit():
        runs = runs[runs["run_id"] == int(name_or_run_id)]
        what = f"run {name_or_run_id}"
    elif name_or_run_id is not None:
        get_spec(str(name_or_run_id))           # unknown names get the list of known ones
        runs = runs[runs["model"] == str(name_or_run_id)]
        what = f"{name_or_run_id} model"
    else:
        what = "model"
    rows = [{**row, "config": json.loads(row["config"]) if row["config"] else {}}
            for row in runs.to_dict("records")]
    if protocol is None and not (name_or_run_id is not None and str(name_or_run_id).isdigit()):
        # a run trained for the new-items protocol never saw a fifth of the items: it serves
        # picks only when no other run of the model is left (newest first otherwise)
        rows.sort(key=lambda r: r["config"].get("protocol") == "new-items")
    return rows, what


def _train_hint(dataset: str, name_or_run_id: str | int | None) -> str:
    hint = f" --model {name_or_run_id}" if name_or_run_id and not str(name_or_run_id).isdigit() \
        else ""
    return f"`python -m recsys train{hint} --dataset {dataset}`"


def find_run(store: Store, dataset: str, name_or_run_id: str | int | None = None,
             protocol: str | None = None, split_seed: int | None = None,
             fingerprint: str | None = None) -> dict[str, Any]:
    """The newest finished model run matching a name (or a run id) whose file still exists
    (and, with `fingerprint`, that was trained on exactly that data)."""
    rows, what = _matching_runs(store, dataset, name_or_run_id, protocol, split_seed,
                                fingerprint)
    if rows:
        return rows[0]
    raise ModelNotTrained(f"No finished {what} for dataset '{dataset}'"
                          f"{f' with the {protocol} split' if protocol else ''}"
                          f"{' trained on its current data' if fingerprint else ''}. Train one with "
                          f"{_train_hint(dataset, name_or_run_id)}.")


def damaged_note(row: dict[str, Any], exc: DamagedModelFile) -> str:
    """One sentence about a run passed over because its model file is damaged."""
    return (f"Run {int(row['run_id'])} ({row['model']}) was skipped: its model file "
            f"{exc.path} is damaged ({exc.reason}).")


def load_model(store: Store, dataset: str, name_or_run_id: str | int | None = None,
               protocol: str | None = None, split_seed: int | None = None,
               fingerprint: str | None = None) -> TrainedRun:
    """The latest finished model of that name (or that run id; or any model) for a dataset
    (with `fingerprint`: only a run trained on exactly that data, see `data_fingerprint`).

    Interrupted and failed runs are skipped, so an interrupted training leaves the previous
    model in use; so are runs whose model file is damaged (`TrainedRun.skipped` says which and
    why): the next usable run answers. When every matching run is damaged, `DamagedModel` (a
    `ModelNotTrained`: callers that may train, do). Loaded models are cached in-process while
    their file is unchanged.
    """
    rows, what = _matching_runs(store, dataset, name_or_run_id, protocol, split_seed,
                                fingerprint)
    skipped: list[str] = []
    damaged_models: list[str] = []
    for row in rows:
        try:
            model = _read_model(row["artifact_path"])
        except DamagedModelFile as exc:
            skipped.append(damaged_note(row, exc))
            damaged_models.append(str(row["model"]))
            continue
        except FileNotFoundError:       # deleted since it was listed (pruned by another run)
            continue
        return TrainedRun(int(row["run_id"]), row["model"], dataset, model, row["config"],
                          row["status"], row["seconds"], row["artifact_path"],
                          list(model.history), skipped=skipped)
    hint = _train_hint(dataset, name_or_run_id)
    if skipped and str(name_or_run_id).isdigit():
        raise DamagedModel(f"{skipped[0].replace(' was skipped: its', ': its')} Use another "
                           f"run, or train {damaged_models[0]} again with "
                           f"{_train_hint(dataset, damaged_models[0])} (or the Train page).",
                           skipped)
    if skipped:
        raise DamagedModel(f"{' '.join(skipped)} No other finished {what} of dataset "
                           f"'{dataset}' can be used. Train it again with {hint} (or the "
                           "Train page).", skipped)
    raise ModelNotTrained(f"No finished {what} for dataset '{dataset}'"
                          f"{f' with the {protocol} split' if protocol else ''}"
                          f"{' trained on its current data' if fingerprint else ''}. Train one with "
                          f"{hint}.")
