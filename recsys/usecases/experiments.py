"""Use cases of simulated online experiments: an A/B test between two recommenders in front of
the simulated shoppers (`ab_test`), and what the simulator knew about them (`hidden_tastes`).

The shoppers' hidden tastes are not stored: the simulation is replayed with its stored settings
(`recsys.simulation.shoppers.replay`, ~20 s on Myntra), checked to reproduce the stored interactions
exactly, and cached as .npz under `<data dir>/artifacts/simulator/` keyed by the dataset's items
and interactions versions.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from recsys.core.progress import ProgressCallback, report, scaled
from recsys.evaluation.stats import ALPHA
from recsys.store import Store

from ._cache import cached, db_key

if TYPE_CHECKING:
    from recsys.simulation.abtest import ABResult
    from recsys.simulation.shoppers import HiddenTastes, SimulationConfig

SETTINGS_PREFIX = "simulation:"


def _simulation_config(store: Store, dataset: str) -> SimulationConfig:
    from recsys.simulation.abtest import ExperimentError
    from recsys.simulation.shoppers import SimulationConfig

    raw = store.get_setting(f"{SETTINGS_PREFIX}{dataset}")
    if not raw:
        raise ExperimentError(
            f"'{dataset}' has no simulated shoppers: an A/B test needs their hidden tastes to "
            "decide who clicks what. Simulate shoppers for this catalog with `python -m recsys "
            f"simulate --dataset {dataset}` (Data page: Simulate shoppers), or pick the demo.")
    try:
        return SimulationConfig(**json.loads(raw))
    except (TypeError, ValueError) as exc:
        raise ExperimentError(f"The stored simulation settings of '{dataset}' cannot be read "
                              f"({exc}); simulate the shoppers again.") from None


def _same_events(stored: pd.DataFrame, drawn: pd.DataFrame) -> bool:
    cols = ["user_id", "item_id", "event"]
    if len(stored) != len(drawn):
        return False
    a = stored[cols].astype(str).sort_values(cols).reset_index(drop=True)
    b = drawn[cols].astype(str).sort_values(cols).reset_index(drop=True)
    return bool(a.equals(b))


REPLAY_BYTES_PER_CELL = 8
"""Peak bytes per shopper x product of the replay: each shopper's float32 utilities, then
their stacked copy (`recsys.simulation.shoppers.replay`)."""


def _check_replay_memory(dataset: str, users: int, items: int) -> None:
    """Refuse a replay whose shoppers x products utilities would not fit in half the memory
    this process may still use (`recsys.core.memory.memory_budget`), before it starts."""
    from recsys.core.memory import format_gb, memory_budget
    from recsys.simulation.abtest import ExperimentError

    need = REPLAY_BYTES_PER_CELL * int(users) * int(items)
    budget = memory_budget()
    if need > budget.available // 2:
        raise ExperimentError(
            f"The A/B test needs the hidden tastes of {users:,} simulated shoppers for "
            f"{items:,} products of '{dataset}': about {format_gb(need)}, more than half of "
            f"the {budget.describe()}. Simulate fewer shoppers "
            f"(`python -m recsys simulate --dataset {dataset} --users N`) or free memory.")


def hidden_tastes(store: Store, dataset: str | None = None,
                  progress: ProgressCallback | None = None) -> HiddenTastes:
    """The simulated shoppers' hidden tastes (utility of every item, type preferences), replayed
    from the stored simulation settings and cached on disk. Raises `ExperimentError` for a
    dataset without simulated shoppers, or whose interactions the replay does not reproduce
    (imported or changed since, or simulated by another version of the simulator)."""
    from recsys.core import config
    from recsys.simulation.abtest import ExperimentError
    from recsys.simulation.shoppers import HiddenTastes, replay

    dataset = store.resolve_dataset(dataset)
    settings = _simulation_config(store, dataset)
    token = hashlib.sha1("|".join([
        dataset, store.items_version(dataset), store.interactions_version(dataset),
        json.dumps(settings.__dict__, sort_keys=True)]).encode()).hexdigest()[:16]
    path = config.artifacts_dir(store.path, "simulator") / f"{dataset}-{token}.npz"

    def load() -> HiddenTastes:
        _check_replay_memory(dataset, settings.users, len(store.item_ids(dataset)))
        if path.is_file():
            cached_tastes = _read_tastes(path)      # None: damaged or not this shape
            if cached_tastes is not None:
                return cached_tastes
        report(progress, 0, 1, "replaying the simulation to recover the shoppers' tastes",
               stage="replay")
        hidden = replay(store.items(dataset), settings, scaled(progress, 0.0, 1.0))
        if not _same_events(store.interactions(dataset), hidden.interactions):
            raise ExperimentError(
                f"The interactions of '{dataset}' are not the ones its simulation settings "
                "draw (they were imported or changed since, or simulated by another version "
                "of the simulator), so the shoppers' hidden tastes are unknown. Simulate the "
                f"shoppers again: `python -m recsys simulate --dataset {dataset}`.")
        from recsys.core.files import atomic_path

        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, user_ids=np.array(hidden.user_ids), item_ids=np.array(
                    hidden.item_ids), affinity=hidden.affinity, type_pref=hidden.type_pref,
                         type_idx=hidden.type_idx)
        return hidden

    return cached("tastes", (db_key(store), dataset, token), load)


def _read_tastes(path) -> "HiddenTastes | None":
    """The simulator's cached tastes (`model_files.read_npz`: nothing unpickled), or None when
    the file is damaged or its arrays do not fit together (then they are replayed again)."""
    from recsys.core.model_files import ModelFileError, all_finite, read_npz
    from recsys.simulation.shoppers import HiddenTastes

    try:
        a = read_npz(path)
        users, items = a["user_ids"], a["item_ids"]
        affinity, type_pref, type_idx = a["affinity"], a["type_pref"], a["type_idx"]
    except (ModelFileError, KeyError):
        return None
    ok = (users.ndim == 1 and items.ndim == 1 and users.dtype.kind in "US"
          and items.dtype.kind in "US" and affinity.shape == (len(users), len(items))
          and type_pref.ndim == 2 and len(type_pref) == len(users)
          and type_idx.shape == (len(items),) and type_idx.dtype.kind in "iu"
          and (not len(type_idx) or (type_idx.min() >= 0
                                     and type_idx.max() < type_pref.shape[1]))
          and affinity.dtype.kind == "f" and type_pref.dtype.kind == "f"
          and all_finite(affinity) and all_finite(type_pref))
    if not ok:
        return None
    return HiddenTastes(list(users), list(items), affinity, type_pref, type_idx, pd.DataFrame())


def ab_test(store: Store, dataset: str | None = None, model_a: str | int | None = None,
            model_b: str | int | None = None, *, k: int = 10, shoppers: int | None = None,
            visits: int = 1, seed: int = 0, alpha: float = ALPHA, power: float = 0.8,
            train_if_missing: bool = True,
            progress: ProgressCallback | None = None) -> ABResult:
    """A simulated A/B test: the simulated shoppers (all with a history, or a seeded sample of
    `shoppers`) each see both arms' top-`k` (a model name, its newest run, trained first when
    missing; or a run id; A defaults to popularity, B to `default_model`) on `visits` visits,
    in two parallel worlds with the same random draws (`recsys.simulation.abtest`: common random
    numbers), and click, cart and buy by the simulator's own choice model with their hidden
    tastes. Returns per-metric estimates (clicks, carts, purchases, each with its own
    significance) with confidence intervals (level 1 - `alpha`), relative lift, the paired
    t-test over shoppers, the shoppers per arm a live test would need for `power`, the offline
    NDCG@k of both runs on their test split and whether offline and online agree. `k` above
    the catalog size (or `MAX_METRIC_K`) is lowered, with a note; `visits` is 1 ..
    `MAX_VISITS`. Raises `ExperimentError` for data without simulated shoppers or impossible
    settings."""
    from recsys.core.limits import (
        MAX_METRIC_K,
        MAX_VISITS,
        as_int,
        check_range,
        check_seed,
        clamp,
    )
    from recsys.evaluation.ranking import evaluate_model
    from recsys.simulation.abtest import (
        METRICS,
        ABResult,
        ExperimentError,
        compare,
        simulate_both_arms,
        verdict,
    )

    from .personal import resolve_run
    from .recommenders import default_model, run_data

    dataset = store.resolve_dataset(dataset)
    k, visits = as_int(k, "k"), as_int(visits, "visits")
    if k < 1 or visits < 1:
        raise ExperimentError("K and the visits per shopper must be at least 1.")
    visits = check_range(visits, "visits", 1, MAX_VISITS, "visits per shopper")
    seed = check_seed(seed)
    notes: list[str] = []
    k = clamp(k, "k", max(1, store.counts(dataset)["items"]), MAX_METRIC_K, "products", notes)
    alpha, power = float(alpha), float(power)
    if not 0.0 < alpha < 0.5 or not 0.5 <= power < 1.0:
        raise ExperimentError("Use a significance level between 0 and 0.5 and a power between "
                              "0.5 and 1.")
    names = {"A": "popularity" if model_a is None else model_a,
             "B": default_model(store, dataset) if model_b is None else model_b}
    config = _simulation_config(store, dataset)
    hidden = hidden_tastes(store, dataset, scaled(progress, 0.0, 0.4))
    runs = {arm: resolve_run(store, dataset, name, train_if_missing=train_if_missing,
                             progress=scaled(progress, 0.4 + 0.1 * j, 0.5 + 0.1 * j))
            for j, (arm, name) in enumerate(names.items())}
    if runs["A"].run_id == runs["B"].run_id:
        report(progress, 0.6, 1.0, "both arms show the same run", stage="abtest")
    hidden_pos = {u: n for n, u in enumerate(hidden.user_ids)}
    item_pos = {i: n for n, i in enumerate(hidden.item_ids)}
    in_b_model = {str(u) for u in runs["B"].model.user_ids}
    model_a = runs["A"].model
    candidates = [str(u) for n, u in enumerate(model_a.user_ids)
                  if str(u) in hidden_pos and str(u) in in_b_model and model_a.seen[n].nnz > 0]
    if len(candidates) < 4:
        raise ExperimentError(f"'{dataset}' has {len(candidates)} simulated shoppers with a "
                              "history; an A/B test needs at least 4.")
    if shoppers is not None:
        shoppers = as_int(shoppers, "shoppers")
        if shoppers < 4:
            raise ExperimentError("An A/B test needs at least 4 shoppers.")
        if shoppers < len(candidates):
            picked = np.random.default_rng(seed).choice(len(candidates), shoppers,
                                                        replace=False)
            candidates = [candidates[i] for i in np.sort(picked)]
    lists: dict[str, dict[int, np.ndarray]] = {}
    for arm in ("A", "B"):
        model = runs[arm].model
        lists[arm] = {}
        for u in candidates:
            idx, _ = model.recommend_indices(model.user_index(str(u)), k)
            lists[arm][hidden_pos[str(u)]] = np.array([item_pos[str(model.item_ids[i])]
                                                       for i in idx
                                                       if str(model.item_ids[i]) in item_pos])
        report(progress, 0.6 + 0.1 * (arm == "B"), 1.0,
               f"arm {arm}: lists for {len(candidates)} shoppers", stage="abtest")
    results = simulate_both_arms(lists, hidden, config, visits, seed)
    report(progress, 0.8, 1.0, f"{len(candidates)} shoppers, {visits} visit(s) in each arm",
           stage="abtest")
    comparisons = {m: compare(m, results["A"].counts[m] / visits,
                              results["B"].counts[m] / visits, results["A"].expected[m],
                              results["B"].expected[m], alpha, power, seed) for m in METRICS}
    offline: dict[str, float] = {}
    for arm, run in runs.items():
        same = [a for a in offline if runs[a].run_id == run.run_id]
        if same:                                      # the same run: measured once
            offline[arm] = offline[same[0]]
            continue
        frame = evaluate_model(run.model, run_data(store, dataset, run.config), [k],
                               seed=seed)
        sel = frame[(frame["slice"] == "all") & (frame["metric"] == "ndcg") &
                    (frame["k"] == k)]
        offline[arm] = float(sel["value"].iloc[0]) if len(sel) else float("nan")
    report(progress, 1.0, 1.0, "done", stage="abtest")
    labels = {arm: f"{arm} ({runs[arm].name})" for arm in runs}
    return ABResult(dataset, {a: r.name for a, r in runs.items()},
                    {a: r.run_id for a, r in runs.items()}, k, visits,
                    {a: int(len(results[a].shoppers)) for a in results}, comparisons, offline,
                    verdict(labels["A"], labels["B"], offline["A"], offline["B"],
                            comparisons["click"], k), alpha, power, seed, notes=notes)
