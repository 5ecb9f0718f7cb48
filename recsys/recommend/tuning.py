"""Hyperparameter tuning on the validation split: a small, bounded search per model.

Each model that has one gets a search space of the few settings that matter (EASE's λ, ALS's
factors / regularisation / α, k-NN's neighbours, the fusion models' CF scorer and sub-scorers,
the learning rate and size of the neural ones), narrower than the ranges the Train page
allows. `optuna`'s TPE sampler proposes settings, the first trial is always the model's
defaults (so tuning never reports worse than untuned), and each trial is scored by NDCG@20 on
the validation split, on a fixed seeded sample of at most `VALIDATION_USERS` users, the same
for every model of a split: tuned runs of different models compare on the same users. The
test split is never read. The search stops at `trials`, at `budget_seconds` (a trial running
when the budget ends is finished, not cut) or when `should_stop()` says so (the app's Stop
button, Ctrl-C on the command line): what was found so far is kept.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np

from recsys.core.errors import RecsysError
from recsys.core.progress import ProgressCallback, report
from recsys.data.interactions import InteractionData

VALIDATION_USERS = 5000
"""Validation users a trial is scored on (seeded sample; all of them when fewer)."""
METRIC = "val_ndcg@20"
K = 20

SEARCH_SPACES: dict[str, dict[str, tuple]] = {
    # name: (kind, ...): ("float", low, high, log) | ("int", low, high, log) | ("cat", choices)
    "ease": {"l2": ("float", 10.0, 5000.0, True)},
    "als": {"factors": ("cat", (64, 128, 256)),
            "regularization": ("float", 1e-3, 1.0, True),
            "alpha": ("float", 1.0, 50.0, True),
            "iterations": ("cat", (10, 15, 25))},
    "bpr-implicit": {"factors": ("cat", (64, 128, 256)),
                     "learning_rate": ("float", 0.005, 0.1, True),
                     "regularization": ("float", 1e-4, 0.1, True),
                     "iterations": ("cat", (50, 100, 200))},
    "itemknn": {"neighbors": ("int", 20, 1000, True), "shrink": ("float", 0.0, 100.0, False)},
    "userknn": {"neighbors": ("int", 10, 500, True)},
    "bpr": {"lr": ("float", 1e-3, 0.05, True), "dim": ("cat", (32, 64, 128))},
    "lightgcn": {"lr": ("float", 1e-3, 0.05, True), "layers": ("int", 1, 4, False)},
    "content-knn": {"neighbors": ("int", 10, 500, True)},
    "late-fusion": {"cf_model": ("cat", ("ease", "als", "itemknn")),
                    "content_scorer": ("cat", ("knn", "profile"))},
    "early-fusion": {"lr": ("float", 1e-3, 0.05, True)},
    "attention-fusion": {"cf_model": ("cat", ("ease", "itemknn", "als")),
                         "lr": ("float", 1e-3, 0.05, True)},
}


class TuningError(RecsysError):
    """A tuning request that cannot run (bad budget, nothing to score on)."""


@dataclass
class Trial:
    number: int
    params: dict[str, Any]
    value: float | None          # validation NDCG@20 (None: the fit failed)
    seconds: float
    error: str | None = None


@dataclass
class TuneResult:
    """The search's outcome: the best settings (to train with), their validation NDCG@20, every
    trial, and why it stopped ("trials", "budget", "stopped", "no search space")."""

    model: str
    best_params: dict[str, Any]
    best_value: float
    trials: list[Trial] = field(default_factory=list)
    stopped_by: str = "trials"
    budget_seconds: float = 0.0
    validation_users: int = 0

    def record(self) -> dict[str, Any]:
        """What a run stores in its config (plain data)."""
        return {"metric": METRIC, "best_params": self.best_params,
                "best_value": self.best_value, "stopped_by": self.stopped_by,
                "budget_seconds": self.budget_seconds,
                "validation_users": self.validation_users,
                "trials": [asdict(t) for t in self.trials]}


def search_space(model: str) -> dict[str, tuple]:
    """The tuned settings of `model` (empty: nothing to tune, its defaults are trained)."""
    return dict(SEARCH_SPACES.get(model, {}))


def validation_users(data: InteractionData, cap: int = VALIDATION_USERS,
                     seed: int = 0) -> np.ndarray:
    """The seeded sample of validation users every trial (of every model) is scored on."""
    users = np.flatnonzero(data.valid.getnnz(axis=1) > 0)
    if len(users) > cap:
        users = np.sort(np.random.default_rng(seed).choice(users, cap, replace=False))
    return users


def validation_score(model: Any, data: InteractionData, users: np.ndarray,
                     batch: int = 1024) -> float:
    """Mean NDCG@20 of a fitted model on the validation split for `users`."""
    from recsys.models.epochs import validation_ndcg

    total = 0.0
    for start in range(0, len(users), batch):
        part = users[start:start + batch]
        total += validation_ndcg(model, data, part, K)[0] * len(part)
    return total / max(1, len(users))


def _suggest(trial: Any, space: dict[str, tuple]) -> dict[str, Any]:
    out = {}
    for name, spec in space.items():
        kind = spec[0]
        if kind == "float":
            out[name] = trial.suggest_float(name, spec[1], spec[2], log=spec[3])
        elif kind == "int":
            out[name] = trial.suggest_int(name, spec[1], spec[2], log=spec[3])
        else:
            out[name] = trial.suggest_categorical(name, list(spec[1]))
    return out


def tune_model(data: InteractionData, model: str, base_params: dict[str, Any] | None = None,
               *, trials: int = 20, budget_seconds: float = 600.0, seed: int = 0,
               progress: ProgressCallback | None = None,
               should_stop: Callable[[], bool] | None = None) -> TuneResult:
    """Search `model`'s settings on `data`'s validation split (see the module docstring).

    `base_params` are fixed settings the search does not touch (e.g. a seed or `modalities`);
    the first trial is the model's defaults with them. Progress events (stage "tune") say the
    trial, its score and the best so far, with `metrics` = trial, value, best."""
    import optuna

    from recsys.models import create_model, get_spec

    spec = get_spec(model)
    trials = int(trials)
    if trials < 1 or trials > 1000:
        raise TuningError("Tuning needs between 1 and 1000 trials.")
    if not (isinstance(budget_seconds, (int, float)) and math.isfinite(budget_seconds)
            and budget_seconds > 0):
        raise TuningError("The tuning time budget must be a positive number of seconds.")
    users = validation_users(data)
    if not len(users):
        raise TuningError(f"Dataset '{data.dataset}' has no validation interactions to tune "
                          "on: use a split with a validation part (e.g. --protocol random).")
    base = dict(base_params or {})
    space = {k: v for k, v in search_space(model).items() if k not in base}
    defaults = {p["name"]: p["default"] for p in spec.describe()["params"]}
    result = TuneResult(model, {}, -math.inf, budget_seconds=float(budget_seconds),
                        validation_users=int(len(users)))
    if not space:
        trials = 1
        result.stopped_by = "no search space"
    start = time.perf_counter()

    def objective(trial: "optuna.Trial") -> float:
        chosen = _suggest(trial, space)
        params = {**base, **chosen}
        t0 = time.perf_counter()
        try:
            fitted = create_model(model, **params).fit(data)
            value = validation_score(fitted, data, users)
        except RecsysError as exc:       # e.g. dense EASE refused: a bad trial, not a crash
            result.trials.append(Trial(trial.number, chosen, None,
                                       time.perf_counter() - t0, str(exc)[:300]))
            raise optuna.TrialPruned() from None
        result.trials.append(Trial(trial.number, chosen, float(value),
                                   round(time.perf_counter() - t0, 2)))
        if value > result.best_value:
            result.best_value, result.best_params = float(value), params
        report(progress, len(result.trials), trials,
               f"trial {len(result.trials)}/{trials}: {METRIC} {value:.4f} "
               f"(best {result.best_value:.4f})", stage="tune",
               trial=len(result.trials), value=float(value), best=result.best_value)
        return value

    def stop_check(study: "optuna.Study", _trial: Any) -> None:
        if should_stop is not None and should_stop():
            result.stopped_by = "stopped"
            study.stop()
        elif time.perf_counter() - start >= budget_seconds:
            result.stopped_by = "budget"
            study.stop()

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=seed))
    if space:
        study.enqueue_trial({k: defaults[k] for k in space if k in defaults},
                            skip_if_exists=True)
    report(progress, 0, trials, f"tuning {model} on {len(users):,} validation users",
           stage="tune")
    try:
        study.optimize(objective, n_trials=trials, callbacks=[stop_check],
                       catch=(), gc_after_trial=False)
    except KeyboardInterrupt:
        result.stopped_by = "stopped"
    if not result.best_params and not math.isfinite(result.best_value):
        if result.stopped_by == "stopped":
            raise TuningError("Tuning was stopped before its first trial finished: nothing "
                              "was chosen.")
        errors = {t.error for t in result.trials if t.error}
        raise TuningError(f"No setting of {model} could be fitted: "
                          f"{'; '.join(sorted(errors)) or 'every trial failed'}")
    if not result.best_params:
        result.best_params = base
    return result
