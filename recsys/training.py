"""Training on demand: one call trains a registered model, records the run and saves it safely.

`train_model` splits the data, fits the model with per-epoch validation and early stopping
(see `models.base`), records the run, its config (plain JSON: enough to reproduce it from the
database alone) and its curves in DuckDB, and writes the model with `atomic_path`. A run that
fails or is interrupted is marked so and writes nothing, so `load_model` keeps returning the
last good model. After a finished run, older files of the same model beyond the newest
`keep_models` are deleted (`housekeeping.prune_models`; their runs and metrics stay).
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import config
from .artifacts import atomic_path
from .errors import RecsysError
from .evaluation import InteractionData, load_data
from .housekeeping import prune_models
from .models import get_spec
from .models.base import EpochStats, Recommender
from .progress import ProgressCallback, report, scaled
from .store import Store

CACHE_SIZE = 8


class ModelNotTrained(RecsysError):
    """No finished training run matches the request."""


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

    def summary(self) -> dict[str, Any]:
        """Plain data for --json and the app (no model object)."""
        return {"run_id": self.run_id, "model": self.name, "dataset": self.dataset,
                "status": self.status, "seconds": self.seconds,
                "artifact_path": self.artifact_path, "best_epoch": self.model.best_epoch,
                "config": self.config, "epochs": [asdict(h) for h in self.history],
                "pruned": self.pruned}


def model_path(store: Store, dataset: str, name: str, run_id: int) -> Path:
    return config.artifacts_dir(store.path, "models", dataset) / f"{name}-run{run_id}.npz"


def train_model(store: Store, dataset: str, name: str, params: dict[str, Any] | None = None,
                progress: ProgressCallback | None = None, protocol: str = "auto",
                split_seed: int = 0, data: InteractionData | None = None,
                keep_models: int | None = None) -> TrainedRun:
    """Train `name` on `dataset`'s training split, record the run and save the model.

    `params` are the model's hyperparameters (strings are converted); `protocol` the split
    (auto, stored, random, temporal); `keep_models` how many files of this model to keep
    (default $RECSYS_KEEP_MODELS or 3, 0 = all). The progress callback gets one event per epoch with
    `metrics` = epoch, train_loss, val_loss, val_ndcg@20. Raises after recording the run as
    failed or interrupted; the previously saved model then stays the one `load_model` returns.
    """
    spec = get_spec(name)
    model = spec.create(**(params or {}))
    if data is None:
        report(progress, 0, 1, "reading interactions", stage="data")
        data = load_data(store, dataset, protocol, split_seed)
    spec.check_signals(data.signals, dataset)
    run_config = {"model": name, "params": asdict(model.config), "protocol": data.protocol,
                  "split_seed": split_seed, "encoder": data.encoder,
                  "users": data.n_users, "items": data.n_items,
                  "train_interactions": int(data.train.nnz)}
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
                         message="interrupted; the previous model stays in use")
        raise
    seconds = time.perf_counter() - t0
    run_config["best_epoch"] = model.best_epoch
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
    for key in [k for k in _cache if k[0] in gone]:
        del _cache[key]


_cache: OrderedDict[tuple[str, float], Recommender] = OrderedDict()


def _read_model(path: str) -> Recommender:
    """Load a model file, reusing the in-process copy while the file is unchanged."""
    key = (path, Path(path).stat().st_mtime)
    if key not in _cache:
        _cache[key] = Recommender.load(path)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    _cache.move_to_end(key)
    return _cache[key]


def find_run(store: Store, dataset: str, name_or_run_id: str | int | None = None,
             protocol: str | None = None, split_seed: int | None = None) -> dict[str, Any]:
    """The newest finished model run matching a name (or a run id) whose file still exists."""
    runs = store.runs(dataset, kind="model")
    if name_or_run_id is not None and str(name_or_run_id).isdigit():
        runs = runs[runs["run_id"] == int(name_or_run_id)]
        what = f"run {name_or_run_id}"
    elif name_or_run_id is not None:
        get_spec(str(name_or_run_id))           # unknown names get the list of known ones
        runs = runs[runs["model"] == str(name_or_run_id)]
        what = f"{name_or_run_id} model"
    else:
        what = "model"
    for row in runs.to_dict("records"):
        cfg = json.loads(row["config"]) if row["config"] else {}
        path = row["artifact_path"]
        if row["status"] != "finished" or not isinstance(path, str) or not path or \
                not Path(path).is_file():          # NULL (NaN here) once housekeeping ran
            continue
        if protocol is not None and cfg.get("protocol") != protocol:
            continue
        if split_seed is not None and cfg.get("split_seed") != split_seed:
            continue
        return {**row, "config": cfg}
    hint = f" --model {name_or_run_id}" if name_or_run_id and not str(name_or_run_id).isdigit() \
        else ""
    raise ModelNotTrained(f"No finished {what} for dataset '{dataset}'"
                          f"{f' with the {protocol} split' if protocol else ''}. Train one with "
                          f"`python -m recsys train{hint} --dataset {dataset}`.")


def load_model(store: Store, dataset: str, name_or_run_id: str | int | None = None,
               protocol: str | None = None, split_seed: int | None = None) -> TrainedRun:
    """The latest finished model of that name (or that run id; or any model) for a dataset.

    Interrupted and failed runs are skipped, so an interrupted training leaves the previous
    model in use. Loaded models are cached in-process while their file is unchanged.
    """
    row = find_run(store, dataset, name_or_run_id, protocol, split_seed)
    model = _read_model(row["artifact_path"])
    return TrainedRun(int(row["run_id"]), row["model"], dataset, model, row["config"],
                      row["status"], row["seconds"], row["artifact_path"], list(model.history))
