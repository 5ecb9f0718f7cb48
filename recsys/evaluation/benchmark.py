"""Benchmark numbers for recommenders: training time, recommendation latency, evaluation time.

Numbers, not assertions: `python -m recsys bench` and `benchmarks/recommenders.py` print them
and save them as JSON. Timings depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import os
import platform
import time
from typing import Any, Sequence

import numpy as np

from recsys.core.progress import ProgressCallback, report, scaled
from recsys.data.interactions import load_data
from recsys.evaluation.ranking import evaluate_model
from recsys.models import applicable_models, create_model, get_spec
from recsys.store import Store


def benchmark(store: Store, dataset: str, models: Sequence[str] | None = None,
              n_users: int = 200, k: int = 20, protocol: str = "auto", seed: int = 0,
              progress: ProgressCallback | None = None) -> dict[str, Any]:
    """Fit each model once, time `recommend` for `n_users` random users and one evaluation."""
    data = load_data(store, dataset, protocol, seed)
    names = list(models) if models else applicable_models(data.signals)
    for name in names:
        get_spec(name).check_signals(data.signals, dataset)
    rng = np.random.default_rng(seed)
    users = rng.choice(data.n_users, min(n_users, data.n_users), replace=False)
    rows = []
    for n, name in enumerate(names):
        sub = scaled(progress, n / len(names), (n + 1) / len(names))
        model = create_model(name, seed=seed)
        t0 = time.perf_counter()
        model.fit(data, progress=scaled(sub, 0.0, 0.8))
        train_seconds = time.perf_counter() - t0
        model.recommend_indices(int(users[0]), k)           # warm-up
        latencies = []
        for u in users:
            t0 = time.perf_counter()
            model.recommend_indices(int(u), k)
            latencies.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        metrics = evaluate_model(model, data, (k,), seed=seed)
        eval_seconds = time.perf_counter() - t0
        ndcg = metrics[(metrics.slice == "all") & (metrics.metric == "ndcg")]["value"]
        rows.append({"model": name, "train_seconds": round(train_seconds, 2),
                     "epochs": len(model.history) if model.iterative else None,
                     "best_epoch": model.best_epoch,
                     "recommend_ms_median": round(float(np.median(latencies)), 3),
                     "recommend_ms_p95": round(float(np.percentile(latencies, 95)), 3),
                     "evaluate_seconds": round(eval_seconds, 2),
                     f"test_ndcg@{k}": round(float(ndcg.iloc[0]), 4)})
        report(progress, n + 1, len(names), f"benchmarked {name}", stage="bench")
    return {"dataset": dataset, "protocol": data.protocol, "users": data.n_users,
            "items": data.n_items, "train_interactions": int(data.train.nnz), "k": k,
            "latency_users": len(users), "machine": machine_info(), "results": rows}


def machine_info() -> dict[str, Any]:
    import torch

    return {"platform": platform.platform(), "python": platform.python_version(),
            "cpus": os.cpu_count(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "note": "shared machine: timings are noisy"}


def format_table(result: dict[str, Any]) -> str:
    """The benchmark as a fixed-width text table."""
    k = result["k"]
    lines = [f"Dataset {result['dataset']} ({result['users']:,} users, {result['items']:,} items, "
             f"{result['train_interactions']:,} training interactions, {result['protocol']} "
             f"split); recommend latency over {result['latency_users']} users, top-{k}.",
             f"{'model':<18}{'train s':>9}{'epochs':>8}{'rec ms p50':>12}{'rec ms p95':>12}"
             f"{'eval s':>9}{f'NDCG@{k}':>10}"]
    for r in result["results"]:
        lines.append(f"{r['model']:<18}{r['train_seconds']:>9.1f}{r['epochs'] or '-':>8}"
                     f"{r['recommend_ms_median']:>12.2f}{r['recommend_ms_p95']:>12.2f}"
                     f"{r['evaluate_seconds']:>9.1f}{r[f'test_ndcg@{k}']:>10.4f}")
    return "\n".join(lines)
