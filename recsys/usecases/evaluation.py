"""Use cases of the evaluation: compare models on held-out interactions, with a 95% confidence
interval on every number and a paired test against the best single-signal model; cross-validate;
measure what diversity re-ranking costs and buys; say the outcome in one plain sentence
(`recsys.evaluation.summary`; the tables the page and the command line show are
`recsys.evaluation.tables`).

Rules written once here, for the Evaluate page, the first start and the command line alike:
* every metric that is a mean over users gets a bootstrap interval over those users
  (`recsys.evaluation.stats`, seeded: the same numbers on every run);
* every model is compared with the **best single-signal model** (one of behaviour, photo or
  text, by NDCG@20 on all test users) on the same users: relative gain with its interval and a
  paired t-test p-value; a difference is "not significant" wherever it is shown unless
  `stats.is_significant` (p < 0.05).
  When no single-signal model is among those asked for, `FALLBACK_MODEL` (EASE, the best
  collaborative model measured) is evaluated too, so there is always something to compare with;
* lists re-ranked for diversity (`recsys.recommend.rerank`, MMR) go through the same metric
  code as the models' own lists (`recsys.evaluation.ranking.evaluate_users`), compared with
  the unre-ranked lists;
* `folds=K` cross-validates (`recsys.evaluation.crossval`): mean over folds ± standard
  deviation, and the intervals and tests on each user's values averaged over the folds;
* the first evaluation of a fresh app (`first_evaluation_models`) compares bestsellers, the
  best collaborative model, a content model and the default fusion model.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import pandas as pd

from recsys.core.limits import (
    MAX_METRIC_K,
    as_int,
    check_list,
    check_range,
    check_seed,
    clamp,
)
from recsys.core.progress import ProgressCallback, report, scaled
from recsys.evaluation.stats import N_BOOT
from recsys.evaluation.summary import (
    BESTSELLERS,
    EvaluationSummary,
    reference_k,
    summarize,
)
from recsys.recommend.rerank import DEFAULT_DIVERSITY
from recsys.store import Store

from .recommenders import DEFAULT_KS, FALLBACK_MODEL, default_model

if TYPE_CHECKING:
    from recsys.data.interactions import InteractionData
    from recsys.evaluation.ranking import Key, UserMetrics

DIVERSITY_LEVELS = (0.0, DEFAULT_DIVERSITY, 0.5)
"""MMR levels measured by default: the models' own lists, the app's default, a strong one."""

CONTENT_MODEL = "content"
RERANK_METRICS = ("ndcg", "recall", "diversity", "coverage", "novelty")
RERANK_BASELINE = "diversity 0"


def first_evaluation_models(store: Store, dataset: str | None = None) -> list[str]:
    """What a fresh app compares: bestsellers, the best collaborative model (EASE), and with
    item vectors a content model (photo + text) and the default fusion model."""
    dataset = store.resolve_dataset(dataset)
    names = [BESTSELLERS, FALLBACK_MODEL]
    if not store.embedding_sets(dataset).empty:
        names += [CONTENT_MODEL, default_model(store, dataset)]
    return list(dict.fromkeys(names))


def first_evaluation(store: Store, dataset: str | None = None, model: str | None = None,
                     progress: ProgressCallback | None = None) -> pd.DataFrame:
    """The comparison a fresh app shows: `first_evaluation_models` (plus `model` when given)
    evaluated on the default split with the default diversity levels (`evaluate`)."""
    names = first_evaluation_models(store, dataset)
    if model is not None:
        names = list(dict.fromkeys([*names, model]))
    return evaluate(store, dataset, names, progress=progress)


# -- statistics over UserMetrics ----------------------------------------------------------------
def _groups(keys: list, users_of) -> list[tuple[np.ndarray, list]]:
    """Keys grouped by the users they were measured on (one bootstrap per group)."""
    groups: dict[bytes, tuple[np.ndarray, list]] = {}
    for key in keys:
        users = users_of(key)
        groups.setdefault(users.tobytes(), (users, []))[1].append(key)
    return list(groups.values())


def _aligned(um: UserMetrics, key: Key, users: np.ndarray) -> np.ndarray:
    own_users, values = um.values(key)
    return values[pd.Index(own_users).get_indexer(users)]


def _intervals(um: UserMetrics, n_boot: int, seed: int) -> dict[Key, tuple[float, float]]:
    from recsys.evaluation.stats import bootstrap_ci

    out: dict = {}
    for users, keys in _groups(list(um.per_user), lambda key: um.values(key)[0]):
        if not len(users):
            continue
        low, high = bootstrap_ci(np.column_stack([_aligned(um, k, users) for k in keys]),
                                 n_boot, seed=seed)
        out.update({k: (float(lo), float(hi)) for k, lo, hi in zip(keys, low, high)})
    return out


def _compare(a: UserMetrics, b: UserMetrics, n_boot: int, seed: int) -> dict[Key, tuple]:
    """Per key: (gain, gain_low, gain_high, p_value) of `a` against `b` on their common users."""
    from recsys.evaluation.stats import paired_comparison

    keys = [k for k in a.per_user if k in b.per_user]

    def common(key: Key) -> np.ndarray:
        return np.intersect1d(a.values(key)[0], b.values(key)[0])

    out: dict = {}
    for users, group in _groups(keys, common):
        if len(users) < 2:
            continue
        c = paired_comparison(np.column_stack([_aligned(a, k, users) for k in group]),
                              np.column_stack([_aligned(b, k, users) for k in group]),
                              n_boot, seed=seed)
        for i, key in enumerate(group):
            out[key] = (c.gain[i], c.gain_low[i], c.gain_high[i], c.p_value[i])
    return out


def _stats_frame(summary: pd.DataFrame, intervals: dict, comparisons: dict | None,
                 baseline: str | None, std: dict | None = None) -> pd.DataFrame:
    """`summary` (slice, metric, k, value, users) with the uncertainty filled in: ci_low,
    ci_high, std, baseline, gain, gain_low, gain_high, p_value."""
    frame = summary.copy()
    keys = [(s, m, None if pd.isna(k) else int(k))
            for s, m, k in zip(frame["slice"], frame["metric"], frame["k"])]
    frame["ci_low"] = [intervals.get(key, (np.nan, np.nan))[0] for key in keys]
    frame["ci_high"] = [intervals.get(key, (np.nan, np.nan))[1] for key in keys]
    frame["std"] = [np.nan if std is None else std.get(key, np.nan) for key in keys]
    comp = [None if comparisons is None else comparisons.get(key) for key in keys]
    frame["baseline"] = [baseline if c is not None else None for c in comp]
    for i, name in enumerate(("gain", "gain_low", "gain_high", "p_value")):
        frame[name] = [np.nan if c is None else float(c[i]) for c in comp]
    return frame


# -- evaluate -------------------------------------------------------------------------------------
def _choose_baseline(results: dict[str, UserMetrics], k: int) -> str | None:
    """The single-signal model with the best NDCG@k on all test users."""
    from ..models import get_spec

    best, best_value = None, -np.inf
    for name, um in results.items():
        if not get_spec(name).single_signal or ("all", "ndcg", k) not in um.per_user:
            continue
        value = float(np.mean(um.values(("all", "ndcg", k))[1]))
        if value > best_value:
            best, best_value = name, value
    return best


def _model_names(data: InteractionData, dataset: str, models: Sequence[str] | None,
                 baseline: str | None) -> list[str]:
    from ..models import applicable_models, get_spec

    names = list(dict.fromkeys(models)) if models else applicable_models(data.signals)
    if baseline is not None:
        if not get_spec(baseline).single_signal:    # unknown names raise UnknownModel here
            raise _not_single(baseline)
        names = list(dict.fromkeys([*names, baseline]))
    elif not any(get_spec(n).single_signal for n in names):
        names.append(FALLBACK_MODEL)
    for name in names:
        get_spec(name).check_signals(data.signals, dataset)
    return names


def _not_single(name: str) -> Exception:
    from recsys.core.errors import RecsysError

    return RecsysError(f"The baseline must read one signal only (behaviour, photo or text); "
                       f"{name} reads more. Try ease, itemknn or content-text.")


def evaluate(store: Store, dataset: str | None, models: Sequence[str] | None = None,
             ks: Sequence[int] = DEFAULT_KS, protocol: str = "auto", split_seed: int = 0,
             retrain: bool = False, progress: ProgressCallback | None = None, *,
             folds: int | None = None, diversity: Sequence[float] = DIVERSITY_LEVELS,
             baseline: str | None = None, n_boot: int = N_BOOT) -> pd.DataFrame:
    """Evaluate models on held-out interactions, with intervals and paired tests.

    Without `models`, every registered model whose signals the dataset offers. On one split
    (`protocol`, `split_seed`) a model with a finished run trained on exactly this data (same
    interactions, items, split and item vectors: `training.data_fingerprint`) is reused unless
    `retrain`; others are trained first, so a re-imported dataset is never scored by a model
    that saw its test items. With `folds` (2-20) the models are fitted on each fold of a K-fold
    split of every user's interactions instead (protocol "K-fold", one run of kind
    "evaluation" per model records it). `diversity` lists MMR levels whose re-ranked lists are
    measured too (single split, datasets with item vectors; see `diversity_effect`);
    `baseline` names the single-signal model to compare with (default: the best one
    evaluated). The metrics are stored under each model's run and returned: model, run_id,
    protocol, slice, metric, k, value, users, ci_low, ci_high, std (folds), baseline, gain,
    gain_low, gain_high, p_value. Runs whose model file is damaged are passed over (the next
    usable run, else the model is trained again); `frame.attrs["notes"]` says which.
    """
    from recsys.data.interactions import NEW_ITEMS, EvaluationError, load_data
    from recsys.evaluation.ranking import evaluate_users

    dataset = store.resolve_dataset(dataset)
    ks = sorted({as_int(k, "K") for k in check_list(ks, "cut-offs K")})
    if not ks or ks[0] < 1:
        raise EvaluationError("Give at least one cut-off K of 1 or more.")
    notes: list[str] = []             # a K past the catalog size is measured as asked
    ks = sorted({clamp(k, "K", MAX_METRIC_K, MAX_METRIC_K, notes=notes) for k in ks})
    split_seed = check_seed(split_seed, "split seed")
    n_boot = check_range(n_boot, "bootstrap resamples", 100, 100_000)
    levels = _levels(check_list(diversity, "diversity levels"))   # before anything is trained
    if folds:
        frame = _cross_validate(store, dataset, models, ks, as_int(folds, "folds"), split_seed,
                                progress, baseline, n_boot)
        frame.attrs["notes"] = notes
        return frame
    if folds and protocol == NEW_ITEMS:
        raise EvaluationError("Cross-validation folds split every shopper's interactions; the "
                              "new-items protocol holds out items. Use one or the other.")
    data = load_data(store, dataset, protocol, split_seed)
    if data.protocol == NEW_ITEMS:
        frame = _evaluate_new_items(store, dataset, data, models, ks, split_seed, retrain,
                                    progress, baseline, n_boot, notes)
        frame.attrs["notes"] = notes
        return frame
    names = _model_names(data, dataset, models, baseline)
    results: dict[str, UserMetrics] = {}
    reranked: dict[str, list[UserMetrics]] = {}
    run_ids: dict[str, int] = {}
    rated: dict[str, pd.DataFrame] = {}
    for n, name in enumerate(names):
        sub = scaled(progress, n / len(names), (n + 1) / len(names))
        trained = _trained(store, dataset, name, data, split_seed, retrain, scaled(sub, 0, .8),
                           notes)
        measured = evaluate_users(trained.model, data, ks, seed=split_seed, diversity=levels,
                                  progress=scaled(sub, 0.8, 1.0))
        results[name], reranked[name] = measured[0], measured[1:]
        run_ids[name] = trained.run_id
        rated[name] = _rating_rows(trained.model, data, n_boot, split_seed)
        report(progress, n + 1, len(names), f"evaluated {name}", stage="evaluate")
    frame = _store_results(store, data.protocol, results, reranked, run_ids, ks, baseline,
                           n_boot, split_seed, extra=rated)
    frame.attrs["notes"] = notes
    return frame


def _evaluate_new_items(store: Store, dataset: str, data: InteractionData,
                        models: Sequence[str] | None, ks: Sequence[int], split_seed: int,
                        retrain: bool, progress: ProgressCallback | None,
                        baseline: str | None, n_boot: int, notes: list[str]) -> pd.DataFrame:
    """The new-items protocol (`recsys.evaluation.new_items`): the models that can score an
    item they never saw (content, fusion) are trained on the split and measured on the held-out
    items, next to the protocol's baselines (random, category popularity, category profile:
    each recorded as a run of kind "evaluation"); collaborative-only models are listed in
    `frame.attrs["not_applicable"]` and in the notes, never scored. Comparisons are against
    `baseline` (default the category profile)."""
    from recsys.data.attributes import CATEGORY_COLUMNS
    from recsys.data.interactions import NEW_ITEMS, EvaluationError
    from recsys.evaluation.new_items import (
        COMPARISON_BASELINE,
        fit_baselines,
        split_applicable,
    )
    from recsys.evaluation.ranking import evaluate_users

    from ..models import applicable_models, display_name, get_spec

    names = list(dict.fromkeys(models)) if models else applicable_models(data.signals)
    specs = [get_spec(n) for n in names]           # unknown names raise UnknownModel here
    usable, skipped = split_applicable(specs)
    for name in usable:
        get_spec(name).check_signals(data.signals, dataset)
    if skipped:
        notes.append(f"Not applicable to new items: {', '.join(display_name(n) for n in skipped)}"
                     " (they know an item only from its interactions, and a new item has "
                     "none); nothing is reported for them.")
    if models and not usable:
        notes.append("None of the models asked for can rank new items (content and fusion "
                     "models can); only the baselines were measured.")
    items = store.item_columns(dataset, ["description", *CATEGORY_COLUMNS])
    baselines, baseline_notes = fit_baselines(data, items, split_seed)
    notes += baseline_notes
    if baseline is not None and baseline not in baselines and baseline not in usable:
        raise EvaluationError(f"The baseline {baseline!r} is not measured under the new-items "
                              f"protocol; use one of {', '.join([*baselines, *usable])}.")
    base = baseline or (COMPARISON_BASELINE if COMPARISON_BASELINE in baselines else "random")
    results: dict[str, UserMetrics] = {}
    run_ids: dict[str, int] = {}
    steps = len(baselines) + len(usable)
    for n, (name, scorer) in enumerate(baselines.items()):
        t0 = time.perf_counter()
        results[name] = evaluate_users(scorer, data, ks, seed=split_seed)[0]
        run_ids[name] = store.start_run(dataset, "evaluation", name, {
            "model": name, "params": {}, "protocol": NEW_ITEMS, "split_seed": split_seed,
            "ks": list(ks), "users": data.n_users, "items": data.n_items,
            "new_items": int(data.candidates.sum()), "protocol_baseline": True})
        store.finish_run(run_ids[name], "finished", time.perf_counter() - t0)
        report(progress, n + 1, steps, f"evaluated {name}", stage="evaluate")
    for n, name in enumerate(usable, start=len(baselines)):
        sub = scaled(progress, n / steps, (n + 1) / steps)
        trained = _trained(store, dataset, name, data, split_seed, retrain, scaled(sub, 0, .8),
                           notes)
        results[name] = evaluate_users(trained.model, data, ks, seed=split_seed,
                                       progress=scaled(sub, 0.8, 1.0))[0]
        run_ids[name] = trained.run_id
        report(progress, n + 1, steps, f"evaluated {name}", stage="evaluate")
    frame = _store_results(store, NEW_ITEMS, results, {}, run_ids, ks, base, n_boot,
                           split_seed)
    frame.attrs["not_applicable"] = skipped
    return frame


def _rating_rows(model: Any, data: InteractionData, n_boot: int, seed: int) -> pd.DataFrame:
    """A rating model's MAE and RMSE on the test ratings, with bootstrap
    intervals over the ratings: rows of slice "all", no cut-off, `users` = ratings scored.
    Empty for other models or data without ratings."""
    from recsys.evaluation.stats import LEVEL, bootstrap_means

    from ..models.ratings import rating_errors

    errors = rating_errors(model, data)
    if errors is None or not len(errors):
        return pd.DataFrame()
    boot = bootstrap_means(np.column_stack([np.abs(errors), errors ** 2]), n_boot, seed)
    tail = (1.0 - LEVEL) / 2 * 100
    low, high = np.percentile(boot, [tail, 100 - tail], axis=0)
    return pd.DataFrame({"slice": "all", "metric": ["mae", "rmse"], "k": [np.nan, np.nan],
                         "value": [float(np.abs(errors).mean()),
                                   float(np.sqrt((errors ** 2).mean()))],
                         "users": len(errors), "ci_low": [low[0], np.sqrt(low[1])],
                         "ci_high": [high[0], np.sqrt(high[1])]})


def _levels(diversity: Sequence[float] | None) -> list[float]:
    from recsys.core.errors import RecsysError

    levels = [0.0]
    for d in diversity or ():
        d = float(d)
        if not 0.0 <= d <= 1.0:
            raise RecsysError(f"A diversity level is between 0 and 1, got {d:g}.")
        levels.append(d)
    return list(dict.fromkeys(levels))


def _trained(store: Store, dataset: str, name: str, data: InteractionData, split_seed: int,
             retrain: bool, progress: ProgressCallback | None, notes: list[str] | None = None):
    """A run of `name` trained on exactly `data`: the newest usable one (runs with a damaged
    model file are passed over and added to `notes`), else trained now."""
    from recsys.recommend.training import (
        DamagedModel,
        ModelNotTrained,
        data_fingerprint,
        load_model,
        train_model,
    )

    notes = [] if notes is None else notes
    if not retrain:
        try:    # only a run trained on exactly this data (never one that saw its test items)
            run = load_model(store, dataset, name, protocol=data.protocol,
                             split_seed=split_seed, fingerprint=data_fingerprint(data))
            notes += run.skipped
            return run
        except ModelNotTrained as exc:
            if isinstance(exc, DamagedModel):
                notes += exc.skipped + [f"{name} was trained again."]
    return train_model(store, dataset, name, {}, progress=progress, protocol=data.protocol,
                       split_seed=split_seed, data=data)


def _store_results(store: Store, protocol: str, results: dict[str, UserMetrics],
                   reranked: dict[str, list[UserMetrics]], run_ids: dict[str, int],
                   ks: Sequence[int], baseline: str | None, n_boot: int, seed: int,
                   std: dict[str, dict] | None = None,
                   summaries: dict[str, pd.DataFrame] | None = None,
                   extra: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """Intervals, comparisons with the baseline, the re-ranked levels; stored and returned.
    `extra` adds rows per model (a rating model's MAE / RMSE)."""
    base = baseline or _choose_baseline(results, reference_k(ks))
    frames = []
    for name, um in results.items():
        comparisons = None if base is None or name == base else \
            _compare(um, results[base], n_boot, seed)
        summary = summaries[name] if summaries else um.summary()
        frame = _stats_frame(summary, _intervals(um, n_boot, seed), comparisons,
                             None if comparisons is None else base,
                             None if std is None else std[name])
        rerank = [_stats_frame(r.summary(), _intervals(r, n_boot, seed),
                               _compare(r, um, n_boot, seed), RERANK_BASELINE)
                  .assign(diversity=r.diversity).drop(columns="std")
                  for r in reranked.get(name, [])]
        rerank_frame = pd.concat(rerank, ignore_index=True) if rerank else None
        if extra is not None and not extra.get(name, pd.DataFrame()).empty:
            frame = pd.concat([frame, extra[name]], ignore_index=True)
        store.save_evaluation(run_ids[name], frame.assign(protocol=protocol), rerank_frame
                              if rerank_frame is None else rerank_frame.assign(protocol=protocol))
        frame.insert(0, "protocol", protocol)
        frame.insert(0, "run_id", run_ids[name])
        frame.insert(0, "model", name)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _cross_validate(store: Store, dataset: str, models: Sequence[str] | None, ks: list[int],
                    folds: int, seed: int, progress: ProgressCallback | None,
                    baseline: str | None, n_boot: int) -> pd.DataFrame:
    """K-fold cross-validation: every model fitted in memory on each fold. A metric's value is
    the mean over shoppers of each one's value averaged over the folds that tested them (so
    its bootstrap interval and paired test are over the same numbers), `std` the standard
    deviation of the fold means."""
    from recsys.data.interactions import implicit_pairs, load_data
    from recsys.evaluation.crossval import (
        check_folds,
        fold_data,
        kfold_codes,
        protocol_name,
    )
    from recsys.evaluation.ranking import UserMetrics, evaluate_users
    from recsys.evaluation.stats import fold_summary

    from ..models import get_spec

    folds = check_folds(folds)
    base_data = load_data(store, dataset, "random", seed)
    names = _model_names(base_data, dataset, models, baseline)
    pairs = implicit_pairs(store, dataset)
    per_fold: dict[str, list[UserMetrics]] = {name: [] for name in names}
    seconds = {name: 0.0 for name in names}
    steps = folds * len(names)
    for fold in range(folds):
        data = fold_data(base_data, pairs, kfold_codes(pairs, folds, fold, seed), folds)
        for n, name in enumerate(names):
            step = fold * len(names) + n
            sub = scaled(progress, step / steps, (step + 1) / steps)
            report(sub, 0, 1, f"fold {fold + 1}/{folds}: fitting {name}", stage="fold")
            t0 = time.perf_counter()
            model = get_spec(name).create()
            model.fit(data, progress=scaled(sub, 0.0, 0.8))
            seconds[name] += time.perf_counter() - t0
            per_fold[name].append(evaluate_users(model, data, ks, seed=seed,
                                                 progress=scaled(sub, 0.8, 1.0))[0])
    protocol = protocol_name(folds)
    averaged, summaries, stds, run_ids = {}, {}, {}, {}
    for name, ums in per_fold.items():
        table = pd.concat([u.summary().assign(fold=f) for f, u in enumerate(ums)])
        table["k"] = table["k"].astype("Int64")
        wide = table.pivot_table(index="fold", columns=["slice", "metric", "k"], values="value",
                                 dropna=False)
        mean, std = fold_summary(wide.to_numpy())
        avg = _average_users(ums)
        order = list(dict.fromkeys(key for u in ums for key in u.order))
        cols = {(s, m, None if pd.isna(k) else int(k)): i
                for i, (s, m, k) in enumerate(wide.columns)}
        rows = []
        for key in order:
            if key not in cols:
                continue
            if key in avg.per_user:        # the mean over shoppers of their fold averages
                users, values = avg.values(key)
                value = float(values.mean()) if len(values) else np.nan
                rows.append((*key, value, len(users)))
            else:                           # catalog-level (coverage): the mean over folds
                rows.append((*key, float(mean[cols[key]]),
                             int(np.mean([u.catalog[key][1] for u in ums if key in u.catalog]))))
        summaries[name] = pd.DataFrame(rows, columns=["slice", "metric", "k", "value", "users"])
        stds[name] = {key: float(std[i]) for key, i in cols.items()}
        averaged[name] = avg
        spec = get_spec(name)
        run_ids[name] = store.start_run(dataset, "evaluation", name, {
            "model": name, "params": asdict(spec.create().config), "protocol": protocol,
            "folds": folds, "split_seed": seed, "ks": ks, "users": base_data.n_users,
            "items": base_data.n_items})
        store.finish_run(run_ids[name], "finished", seconds[name])
    return _store_results(store, protocol, averaged, {}, run_ids, ks, baseline, n_boot, seed,
                          std=stds, summaries=summaries)


def _average_users(ums: list[UserMetrics]) -> UserMetrics:
    """Each user's value of each metric averaged over the folds that measured it."""
    from recsys.evaluation.ranking import UserMetrics

    out = UserMetrics()
    keys = list(dict.fromkeys(key for u in ums for key in u.per_user))
    for key in keys:
        parts = [u.values(key) for u in ums if key in u.per_user]
        users = np.concatenate([p[0] for p in parts])
        values = np.concatenate([p[1] for p in parts])
        mean = pd.Series(values).groupby(users).mean()
        out.add(key, mean.index.to_numpy(), mean.to_numpy())
    return out


# -- reading the results --------------------------------------------------------------------------
def evaluation_results(store: Store, dataset: str | None = None) -> pd.DataFrame:
    """The stored metrics of the newest evaluated run per (model, protocol): model, run_id,
    protocol, slice, metric, k, value, users and the uncertainty columns (ci_low, ci_high,
    std, baseline, gain, gain_low, gain_high, p_value; empty for numbers stored before they
    existed)."""
    frame = store.latest_evaluation(store.resolve_dataset(dataset))
    first = ["model", "run_id", "protocol", "slice", "metric", "k", "value"]
    return frame[first + [c for c in frame.columns if c not in first]]


def diversity_effect(store: Store, dataset: str | None = None) -> pd.DataFrame:
    """What MMR re-ranking does to each model's lists, on all test users: model, protocol,
    diversity (0 = the model's own order), metric (ndcg, recall, diversity, coverage,
    novelty), k, value, ci_low, ci_high and, for the re-ranked levels, the gain against the
    same model's own lists (gain, gain_low, gain_high, p_value)."""
    dataset = store.resolve_dataset(dataset)
    rerank = store.latest_rerank_evaluation(dataset)
    if rerank.empty:
        return rerank
    plain = store.latest_evaluation(dataset)
    plain = plain[plain["run_id"].isin(set(rerank["run_id"])) & (plain["slice"] == "all")]
    plain = plain.assign(diversity=0.0, baseline=None, gain=np.nan, gain_low=np.nan,
                         gain_high=np.nan, p_value=np.nan)
    frame = pd.concat([plain, rerank], ignore_index=True)
    frame = frame[(frame["slice"] == "all") & frame["metric"].isin(RERANK_METRICS)]
    cols = ["model", "run_id", "protocol", "diversity", "metric", "k", "value", "users",
            "ci_low", "ci_high", "baseline", "gain", "gain_low", "gain_high", "p_value"]
    return frame[cols].sort_values(["model", "diversity", "metric", "k"]).reset_index(drop=True)


def evaluation_summary(store: Store, dataset: str | None = None, protocol: str | None = None,
                       k: int | None = None) -> EvaluationSummary | None:
    """The stored results said in one sentence (see `summarize`), e.g. on Myntra "Combined: weighted blend
    finds 21% more of what shoppers went on to choose in its top 20 than Behaviour: EASE, the
    best single-signal model (95% CI +15% to +27%), and 3.8× as much as Bestsellers."; hedged when
    the difference is not significant. None before any evaluation."""
    dataset = store.resolve_dataset(dataset)
    frame = evaluation_results(store, dataset)
    return summarize(frame, dataset, protocol, k, tuned=tuned_models(store, dataset, frame))


def tuned_models(store: Store, dataset: str, frame: pd.DataFrame) -> set[str]:
    """The models of a results frame whose evaluated run was tuned on the validation split
    (its config holds the search: `recommenders.tune`)."""
    import json

    if frame.empty or "run_id" not in frame:
        return set()
    runs = store.runs(dataset, kind="model")
    wanted = set(int(r) for r in frame["run_id"].dropna().unique())
    out = set()
    for row in runs.to_dict("records"):
        if int(row["run_id"]) in wanted and row["config"]:
            config = json.loads(row["config"])
            if isinstance(config.get("tuning"), dict):
                out.add(str(row["model"]))
    return out
