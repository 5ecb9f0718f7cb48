"""Jobs: the long use cases run in the background by the server, and the list of jobs.

`JOB_KINDS` maps each kind of job to the use case it runs (the same function the pages and the
CLI call directly) and says whether it writes a dataset: two writing jobs on the same dataset
queue (`recsys.jobs.runner.JobRunner`). `start_job` hands one to a runner; `list_jobs` reads
the `jobs` table (what `python -m recsys jobs` prints).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from recsys.core.errors import RecsysError
from recsys.store import Store


@dataclass(frozen=True)
class JobKind:
    use_case: str          # a name exported by recsys.usecases
    label: str             # what the sidebar says
    writes: bool = True    # writes its dataset: queue behind another writer of it


JOB_KINDS: dict[str, JobKind] = {
    "embed": JobKind("embed", "Aligning and embedding"),
    "train_encoder": JobKind("train_encoder", "Training the encoder"),
    "train": JobKind("train", "Training"),
    "tune": JobKind("tune", "Tuning on validation"),
    "evaluate": JobKind("evaluate", "Evaluating"),
    "first_evaluation": JobKind("first_evaluation", "First evaluation"),
    "map": JobKind("catalog_map", "Drawing the catalog map", writes=False),
    "purity": JobKind("cluster_purity", "Comparing clusters", writes=False),
    "ab_test": JobKind("ab_test", "Simulated A/B test"),
    "cold_start": JobKind("evaluate_cold_start", "New-shopper evaluation"),
    "import_catalog": JobKind("import_catalog", "Importing a catalog"),
    "import_interactions": JobKind("import_interactions", "Importing interactions"),
    "import_features": JobKind("import_features", "Importing features"),
    "simulate": JobKind("simulate", "Simulating shoppers"),
    "init_demo": JobKind("init_demo", "Building the demo"),
    "myntra": JobKind("load_myntra_sample", "Loading the Myntra sample"),
}
"""Every kind of background job: the use case it runs and whether it writes its dataset."""


class UnknownJobKind(RecsysError):
    """A job kind that is not in `JOB_KINDS`."""


def start_job(runner, store: Store, kind: str, *args: Any, dataset: str | None = None,
              **kwargs: Any) -> int:
    """Start `kind`'s use case as a job of `runner`: `use_case(store, *args, progress=...,
    **kwargs)`; `dataset` (None: the active one) is passed as the use case's `dataset`
    argument unless `args` already name it. Returns the job id."""
    spec = JOB_KINDS.get(kind)
    if spec is None:
        raise UnknownJobKind(f"Unknown job kind {kind!r}; one of: {', '.join(JOB_KINDS)}.")
    from recsys import usecases

    use_case = getattr(usecases, spec.use_case)
    if kind in ("init_demo", "myntra", "import_catalog", "import_interactions"):
        # these make (or fill) the dataset they name
        target = kwargs.get("dataset", dataset) or {"init_demo": "demo",
                                                    "myntra": "myntra"}.get(kind)
        if dataset is not None and kind != "init_demo":
            kwargs["dataset"] = dataset
    elif kind == "import_features":
        target = kwargs["dataset"] = store.resolve_dataset(kwargs.get("dataset", dataset))
    else:                       # the use case's first argument after the store: the dataset
        target = store.resolve_dataset(dataset)
        args = (target, *args)
    params = {"args": [describe(a) for a in args],
              **{k: describe(v) for k, v in kwargs.items() if k != "path_policy"}}

    def work(progress):
        return use_case(store, *args, progress=progress, **kwargs)

    lock = f"dataset:{target or '*'}" if spec.writes else None
    return runner.submit(kind, work, dataset=target, params=params, lock=lock)


def describe(value: Any) -> Any:
    """A JSON-able description of a job argument (an upload by its name and size)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple, set)):
        return [describe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): describe(v) for k, v in value.items()}
    if isinstance(value, Path):
        return str(value)
    name, data = getattr(value, "name", None), getattr(value, "data", None)
    if isinstance(name, str) and isinstance(data, (bytes, bytearray)):
        return f"upload {name} ({len(data):,} bytes)"
    return type(value).__name__


def job_summary(kind: str, result: Any) -> dict | None:
    """What the jobs table keeps of a job's result: small and JSON-able."""
    if result is None:
        return None
    if kind == "train":
        return {"run_id": int(result.run.run_id), "model": str(result.run.model),
                "seconds": float(result.run.seconds or 0)}
    if isinstance(result, pd.DataFrame):
        return {"rows": int(len(result))}
    if isinstance(result, dict):
        return {str(k): v for k, v in result.items()
                if isinstance(v, (bool, int, float, str)) or v is None}
    summary = getattr(result, "summary", None)
    if callable(summary):
        text = summary()
        return {"summary": text if isinstance(text, str) else str(text)}
    if dataclasses.is_dataclass(result):
        return {f.name: getattr(result, f.name) for f in dataclasses.fields(result)
                if isinstance(getattr(result, f.name), (bool, int, float, str))}
    return None


def list_jobs(store: Store, active: bool = False, limit: int = 50) -> pd.DataFrame:
    """The newest `limit` jobs (only queued or running ones with `active`), newest first:
    job_id, kind, dataset, status, progress (0..1), message, started_at, seconds, error,
    params, result."""
    from recsys.store.jobs import ACTIVE

    frame = store.jobs(status=ACTIVE if active else None, limit=limit)
    total = frame["total"].where(frame["total"] > 0)
    frame = frame.assign(progress=(frame["done"] / total).clip(0, 1).fillna(0.0))
    return frame[["job_id", "kind", "dataset", "status", "progress", "message", "started_at",
                  "seconds", "error", "params", "result"]]
