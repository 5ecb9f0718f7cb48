"""The one recommender interface, hyperparameter descriptions and the shared epoch loop.

Every model is a `Recommender`: `fit(data)` on the training split, `score(user_indices)` against
all items, `recommend(user_id, k)` excluding what the user already has, `save(path)` /
`load(path)`, a `config` dataclass (plain data, saved as JSON with each run) and `requires`
(the signals it needs: "cf", a vector modality such as "image", "text" or an imported one,
"vectors" for any modality, "ratings"), computed from its settings. Content and fusion models
take a `modalities` setting (default: every modality the data has, resolved when they are
fitted and saved resolved). The evaluator, the CLI, the app and the benchmarks use nothing
else.

Iterative models implement `_start` / `_epoch` / `_finalize` / `_state` / `_load_state`; `fit`
then runs epochs with validation NDCG@20, a validation loss, early stopping (the best epoch's
state is restored) and per-epoch callbacks that feed the progress bar and the live loss curves.
"""

from __future__ import annotations

import json
import math
import time
from contextlib import contextmanager
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np
import scipy.sparse as sp

from recsys.core.errors import RecsysError
from recsys.core.progress import ProgressCallback, report
from recsys.core.threads import thread_count
from recsys.core.threads import torch_threads as _torch_threads
from recsys.data.interactions import InteractionData, UnknownUser, unknown_user_message
from recsys.evaluation.metrics import mask_seen, ranking_metrics, top_k

FORMAT_VERSION = 1
THREADS_ENV = "RECSYS_TORCH_THREADS"
VALIDATION_USERS = 3000      # users sampled for per-epoch validation NDCG@20
VALIDATION_K = 20


class ModelError(RecsysError):
    """A model cannot be built, fitted or loaded as asked."""


class DamagedModelFile(ModelError):
    """A model file that cannot be used as it is (truncated, changed, wrong shapes, weights that
    are not numbers...): `path` and `reason` (in our words, never the file's contents)."""

    def __init__(self, path: str | Path, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"The model file {path} is damaged ({reason}); it cannot be used. "
                         "Train the model again (the Train page, or `python -m recsys "
                         "train`).")


class _Registry:
    """How the base finds models by name without importing the registry (`recsys.models`),
    which imports the concrete models, which import this module: the registry plugs its two
    look-ups in here when it is imported (`use_registry`), and `recsys.models` is always
    imported before this module (it is its package)."""

    model_class: Callable[[str], type["Recommender"]] | None = None
    create_model: Callable[..., "Recommender"] | None = None


def use_registry(model_class: Callable[[str], type["Recommender"]],
                 create_model: Callable[..., "Recommender"]) -> None:
    """Install the registry's look-ups: a class by its saved name (`Recommender.load`) and a
    new model by its registered name (`build_model`, for composite models' sub-models)."""
    _Registry.model_class = staticmethod(model_class)
    _Registry.create_model = staticmethod(create_model)


def build_model(name: str, **params: Any) -> "Recommender":
    """A new model by its registered name (e.g. a fusion model's CF scorer)."""
    if _Registry.create_model is None:
        raise ModelError("The model registry (recsys.models) is not loaded.")
    return _Registry.create_model(name, **params)


@contextmanager
def torch_threads(n: int | None = None):
    """Run torch with `n` intra-op threads (default $RECSYS_TORCH_THREADS, else 1).

    The models' tensors are small (batches of a few thousand pairs): on a CPU shared with
    other processes, several torch threads spin and wait on each other, and one thread is up
    to 10x faster per batch (measured: 24 ms vs 250 ms for a BPR batch of 2,048 pairs on 2
    busy cores).
    """
    with _torch_threads(n or thread_count(THREADS_ENV, default=1)):
        yield


def hp(default: Any, help: str, low: float | None = None, high: float | None = None,
       choices: tuple | None = None, log: bool = False) -> Any:
    """A config field that describes itself (type, default, range, help) for the Train page."""
    return field(default=default, metadata={"help": help, "low": low, "high": high,
                                            "choices": choices, "log": log})


def modality_signals(modalities: tuple, cf: bool = False) -> frozenset[str]:
    """The signals a model with a `modalities` setting needs: those modalities (any one, the
    "vectors" pseudo-signal, while the setting is empty: every modality the data has), plus
    "cf" for models that also read the interactions' co-occurrence."""
    from recsys.vectors.modalities import ANY_VECTORS

    mods = frozenset(modalities) if modalities else frozenset({ANY_VECTORS})
    return mods | ({"cf"} if cf else frozenset())


def modalities_hp(help: str) -> Any:
    """The `modalities` setting of content and fusion models (empty: all the data has)."""
    return hp((), f"{help}; comma-separated names (image, text, video, imported ones), empty: "
              "every modality the dataset has")


@dataclass
class ModelConfig:
    """Hyperparameters shared by every model."""

    seed: int = hp(0, "random seed (sampling, initialisation, validation users)", 0, 2**31 - 1)


@dataclass
class TrainConfig(ModelConfig):
    """Hyperparameters of models trained for several epochs with early stopping."""

    epochs: int = hp(60, "maximum number of epochs", 1, 1000)
    patience: int = hp(6, "stop after this many epochs without a better validation NDCG@20",
                       1, 100)
    lr: float = hp(0.005, "Adam learning rate", 1e-4, 0.1, log=True)
    batch_size: int = hp(2048, "training pairs per batch", 8, 65536, log=True)


def describe_config(config_class: type, overrides: dict | None = None) -> list[dict]:
    """Machine-readable hyperparameters: name, type, default, range, choices, help."""
    overrides = overrides or {}
    out = []
    for f in fields(config_class):
        default = overrides.get(f.name, f.default if f.default is not MISSING else None)
        out.append({"name": f.name, "type": type(default).__name__, "default": default,
                    "low": f.metadata.get("low"), "high": f.metadata.get("high"),
                    "choices": list(f.metadata["choices"]) if f.metadata.get("choices") else None,
                    "log": f.metadata.get("log", False), "help": f.metadata.get("help", "")})
    return out


def coerce_params(config_class: type, params: dict[str, Any]) -> dict[str, Any]:
    """Check names and convert values (e.g. strings from the command line) to the field types."""
    known = {f.name: f for f in fields(config_class)}
    out = {}
    for name, value in params.items():
        if name not in known:
            raise ModelError(f"Unknown hyperparameter {name!r}; this model takes "
                             f"{', '.join(sorted(known))}.")
        f = known[name]
        kind = type(f.default) if f.default is not MISSING else str
        try:
            if kind is bool and isinstance(value, str):
                value = value.lower() in ("1", "true", "yes", "on")
            elif kind in (tuple, list) and isinstance(value, str):
                value = tuple(v.strip() for v in value.split(",") if v.strip())
            else:
                value = kind(value)
        except (TypeError, ValueError, OverflowError):
            raise ModelError(f"Hyperparameter {name} expects {kind.__name__}, got {value!r}.") \
                from None
        if isinstance(value, float) and not math.isfinite(value):
            # NaN slips through every range check (all comparisons with it are false)
            raise ModelError(f"Hyperparameter {name} must be a finite number, got {value}.")
        low, high = f.metadata.get("low"), f.metadata.get("high")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and (
                (low is not None and value < low) or (high is not None and value > high)):
            raise ModelError(f"Hyperparameter {name}={value} is outside {low}..{high}.")
        if f.metadata.get("choices") and value not in f.metadata["choices"] and \
                not isinstance(value, tuple):
            raise ModelError(f"Hyperparameter {name} must be one of "
                             f"{', '.join(map(str, f.metadata['choices']))}.")
        out[name] = value
    return out


@dataclass
class EpochStats:
    """One epoch of training, as stored in `run_epochs` and drawn as live curves."""

    epoch: int
    train_loss: float | None
    val_loss: float | None
    val_ndcg: float | None
    seconds: float

    def metrics(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "train_loss": self.train_loss, "val_loss": self.val_loss,
                f"val_ndcg@{VALIDATION_K}": self.val_ndcg}


EpochCallback = Callable[[EpochStats], None]


class Recommender:
    """Base class: id bookkeeping, seen-item exclusion, top-K, save/load and the epoch loop."""

    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    requires: frozenset[str] = frozenset({"cf"})
    iterative: ClassVar[bool] = False

    def __init__(self, config: ModelConfig | None = None, name: str | None = None,
                 **params: Any):
        self.config = config if config is not None else self.config_class(
            **coerce_params(self.config_class, params))
        self.name = name or type(self).__name__.lower()
        self.dataset: str | None = None
        self.user_ids = np.array([], dtype=str)
        self.item_ids = np.array([], dtype=str)
        self.seen = sp.csr_matrix((0, 0), dtype=np.float32)
        self.history: list[EpochStats] = []
        self.best_epoch: int | None = None
        self._user_pos: dict[str, int] = {}

    # -- the interface --------------------------------------------------------------------------
    def fit(self, data: InteractionData, progress: ProgressCallback | None = None,
            on_epoch: EpochCallback | None = None) -> "Recommender":
        """Fit on `data.train` (and validate on `data.valid` when iterative)."""
        self._resolve_modalities(data)
        missing = self.requires - data.signals
        if missing:
            if missing - {"cf", "ratings"}:
                data.content(sorted(missing - {"cf", "ratings"})[0])   # the "run embed" error
            raise ModelError(f"Model {self.name} needs {' and '.join(sorted(missing))}, which "
                             f"dataset '{data.dataset}' does not have.")
        self._bind(data)
        self._seed()
        with torch_threads():
            if self.iterative:
                self._fit_epochs(data, progress, on_epoch)
            else:
                report(progress, 0, 1, f"fitting {self.name}", stage="fit")
                t0 = time.perf_counter()
                self._fit(data)
                self._prepare_validation(data)
                self._record_epoch(data, 1, None, t0, on_epoch)
                report(progress, 1, 1, f"fitted {self.name}", stage="fit")
        return self

    def score(self, user_indices: np.ndarray | list[int]) -> np.ndarray:
        """Scores of the given users (row indices) against every item: n_users x n_items."""
        if not len(self.item_ids):
            raise ModelError(f"Model {self.name} is not fitted yet.")
        return np.asarray(self._score(np.asarray(user_indices, dtype=np.int64)),
                          dtype=np.float32)

    def user_index(self, user_id: str) -> int:
        try:
            return self._user_pos[str(user_id)]
        except KeyError:
            raise UnknownUser(unknown_user_message(user_id, self.user_ids,
                                                    self.dataset or "?")) from None

    def recommend_indices(self, user: int, k: int = 10, exclude_seen: bool = True
                          ) -> tuple[np.ndarray, np.ndarray]:
        """(item indices, scores) of one user's top-k, best first."""
        scores = self.score([user])
        if exclude_seen:
            row = self.seen[user]
            scores[0, row.indices] = -np.inf
        top = top_k(scores, k)[0]
        top = top[np.isfinite(scores[0, top])]
        return top, scores[0, top]

    def recommend(self, user_id: str, k: int = 10, exclude_seen: bool = True
                  ) -> list[tuple[str, float]]:
        """Top-k (item_id, score) for a user id, excluding items already in their history."""
        idx, scores = self.recommend_indices(self.user_index(user_id), k, exclude_seen)
        return [(str(self.item_ids[i]), float(s)) for i, s in zip(idx, scores)]

    def modality_weights(self, user: int, items: np.ndarray) -> dict[str, np.ndarray]:
        """How much each signal drives the score of `items` for `user` (rows sum to 1).

        Models built on one signal return weight 1 for it; multimodal models override this
        with their own principled decomposition.
        """
        signals = sorted(self.requires)
        return {s: np.full(len(items), 1.0 / len(signals)) for s in signals}

    # -- fold-in: a shopper the model was not trained on ---------------------------------------
    def score_history(self, item_indices: np.ndarray | list[int],
                      weights: np.ndarray | list[float] | None = None) -> np.ndarray:
        """Scores of every item for a history that is not in the training data (a new
        shopper's first likes), with no retraining: one row over `item_ids`.

        `item_indices` are positions in `item_ids` (repeats are merged, keeping the largest
        weight), `weights` their confidence weights as in training (view 1, cart 3, purchase
        5; default 1 each). Models whose structure allows it score the history exactly as they
        would score a trained user with that history (EASE: history row @ B; item k-NN: row @
        S; content: the profile of the history's vectors; the fusion models: their user
        representation built from the history); the others say how they approximate it (see
        each `_score_history`). The base borrows the training users most like the history.
        """
        if not len(self.item_ids):
            raise ModelError(f"Model {self.name} is not fitted yet.")
        items, w = self._history(item_indices, weights)
        return np.asarray(self._score_history(items, w), dtype=np.float32).reshape(-1)

    def _history(self, item_indices: np.ndarray | list[int],
                 weights: np.ndarray | list[float] | None) -> tuple[np.ndarray, np.ndarray]:
        """Checked, de-duplicated item positions of a history and their weights."""
        items = np.asarray(item_indices, dtype=np.int64).reshape(-1)
        if not len(items):
            raise ModelError("A new shopper's history needs at least one product.")
        if items.min() < 0 or items.max() >= len(self.item_ids):
            raise ModelError(f"History item positions must be between 0 and "
                             f"{len(self.item_ids) - 1}.")
        w = np.ones(len(items), np.float32) if weights is None else \
            np.asarray(weights, dtype=np.float32).reshape(-1)
        if len(w) != len(items) or not np.all(np.isfinite(w)) or np.any(w <= 0):
            raise ModelError("History weights must be positive numbers, one per item.")
        unique = np.unique(items)
        best = np.zeros(len(self.item_ids), np.float32)
        np.maximum.at(best, items, w)
        return unique, best[unique]

    def history_row(self, items: np.ndarray, weights: np.ndarray | None = None,
                    binary: bool = False) -> sp.csr_matrix:
        """A 1 x n_items sparse row of a history (its weights, or ones when `binary`)."""
        values = np.ones(len(items), np.float32) if binary or weights is None else \
            np.asarray(weights, np.float32)
        return sp.csr_matrix((values, (np.zeros(len(items), np.int64), items)),
                             shape=(1, len(self.item_ids)), dtype=np.float32)

    FOLD_IN_NEIGHBOURS: ClassVar[int] = 50

    def _score_history(self, items: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Base fold-in for models with no history-to-score structure of their own: the mean
        score row of the training users whose histories overlap most with this one (cosine
        of the binary rows, the top `FOLD_IN_NEIGHBOURS` weighted by it); a history no
        training user shares gets the mean row of up to 256 evenly spread users."""
        row = self.history_row(items, binary=True)
        overlap = np.asarray((self.seen @ row.T).todense()).ravel()
        sizes = np.asarray(self.seen.getnnz(axis=1), dtype=np.float64)
        sims = overlap / np.sqrt(np.maximum(sizes, 1.0) * len(items))
        users = np.flatnonzero(sims > 0)
        if not len(users):
            users = np.unique(np.linspace(0, len(self.user_ids) - 1,
                                          min(256, len(self.user_ids))).astype(np.int64))
            return self.score(users).mean(axis=0)
        users = users[np.argsort(-sims[users], kind="stable")[:self.FOLD_IN_NEIGHBOURS]]
        return sims[users] @ self.score(users) / sims[users].sum()

    def describe(self) -> dict[str, Any]:
        """Name, signals and config as plain data."""
        return {"name": self.name, "class": type(self).__name__,
                "requires": sorted(self.requires), "config": asdict(self.config)}

    # -- persistence ----------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the fitted model to one .npz file (no pickle: arrays plus a JSON header)."""
        meta = {"format": FORMAT_VERSION, "name": self.name, "class": type(self).__name__,
                "config": asdict(self.config), "dataset": self.dataset,
                "best_epoch": self.best_epoch,
                "history": [asdict(h) for h in self.history]}
        arrays = {"__meta__": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
                  "__users__": self.user_ids.astype(str), "__items__": self.item_ids.astype(str)}
        arrays.update(_pack({"__seen__": self.seen, **self._state()}))
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> "Recommender":
        """Rebuild a model written by `save` (of this class or, from the base, any class).

        The file is checked as it is read (`recsys.core.model_files`: no pickle, memory bounded by
        the file) and the model after it is rebuilt: its header, its ids, every matrix's
        pointers, weights that are numbers, the shapes its arrays must have together, and a
        probe score of two users over every item. Anything wrong is a `DamagedModelFile`,
        never a traceback of another kind and never a model that ranks nothing."""
        from recsys.core.model_files import READ_ERRORS, ModelFileError, read_npz

        try:
            arrays = read_npz(path)
            model = cls._from_arrays(path, arrays)
            model._probe()
        except ModelFileError as exc:
            raise DamagedModelFile(path, exc.reason) from None
        except DamagedModelFile:
            raise
        except READ_ERRORS as exc:       # shapes that do not fit together, found by the model
            raise DamagedModelFile(path, f"its arrays do not fit together "
                                         f"({type(exc).__name__})") from None
        return model

    @classmethod
    def _from_arrays(cls, path: str | Path, arrays: dict[str, np.ndarray]) -> "Recommender":
        from recsys.core.model_files import (
            ModelFileError,
            all_finite,
            plain_ids,
            read_json,
            shown_name,
        )

        raw = arrays.pop("__meta__", None)
        if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
            raise ModelFileError("its header is missing")
        meta = read_json(raw.tobytes(), "its header")
        if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION or \
                not isinstance(meta.get("class"), str) or \
                not isinstance(meta.get("name"), str) or \
                not isinstance(meta.get("config"), dict) or \
                not isinstance(meta.get("history", []), list) or \
                not isinstance(meta.get("dataset"), (str, type(None))) or \
                not isinstance(meta.get("best_epoch"), (int, type(None))):
            raise ModelFileError("its header is not a model header of this version")
        if _Registry.model_class is None:
            raise ModelError("The model registry (recsys.models) is not loaded.")
        try:
            klass = _Registry.model_class(meta["class"])
        except RecsysError:
            raise ModelFileError("it names a model class this version does not have") from None
        if not issubclass(klass, cls):
            raise ModelError(f"{path} holds a {klass.__name__}, not a {cls.__name__}.")
        saved = {**getattr(klass, "legacy_config", {}), **meta["config"]}
        try:
            config = klass.config_class(**coerce_params(klass.config_class, saved))
        except ModelError:
            raise ModelFileError("its saved settings are not valid") from None
        model = klass(config, name=meta["name"])
        model.dataset = meta["dataset"]
        model.best_epoch = meta.get("best_epoch")
        model.history = [EpochStats(**h) for h in meta.get("history", [])]
        users = plain_ids(arrays.pop("__users__", np.array(0)), "user ids")
        items = plain_ids(arrays.pop("__items__", np.array(0)), "item ids")
        if not len(items):
            raise ModelFileError("it has no items")
        model._set_ids(users.astype(object), items.astype(object))
        state = _unpack(arrays)
        seen = state.pop("__seen__", None)
        if not sp.issparse(seen) or seen.shape != (len(users), len(items)):
            raise ModelFileError("its table of seen items does not match its users and items")
        model.seen = seen
        for key, value in state.items():
            if not all_finite(value.data if sp.issparse(value) else value):
                raise ModelFileError(f"its weights {shown_name(key)} hold values that are "
                                     "not numbers (NaN or infinite)")
        model._load_state(state)
        return model

    PROBE_USERS: ClassVar[int] = 2

    def _probe(self) -> None:
        """Score the first and the last user over every item: a loaded model must give one
        finite (or -inf: ruled out) score per item, else it would rank nothing."""
        from recsys.core.model_files import ModelFileError

        if not len(self.user_ids):
            return
        users = np.unique([0, len(self.user_ids) - 1])
        scores = self.score(users)
        if scores.shape != (len(users), len(self.item_ids)):
            raise ModelFileError("its weights do not match its items")
        if np.isnan(scores).any() or np.isposinf(scores).any():
            raise ModelFileError("it scores items with values that are not numbers")

    def _resolve_modalities(self, data: InteractionData) -> None:
        """A model with a `modalities` setting left empty uses every modality of the data: the
        setting is filled in before fitting (and so saved), a clear error without any."""
        if "modalities" not in {f.name for f in fields(self.config)}:
            return
        chosen = tuple(self.config.modalities)
        if not chosen:
            if not data.modalities:
                from recsys.vectors.modalities import ANY_VECTORS
                data.content(ANY_VECTORS)            # raises: the dataset has no vectors
            self.config = replace(self.config, modalities=tuple(data.modalities))

    def _stop_metric(self, stats: EpochStats) -> float:
        """What early stopping maximises: validation NDCG@20 (minus the training loss when
        there is no validation split)."""
        return stats.val_ndcg if stats.val_ndcg is not None else -stats.train_loss

    # -- hooks for subclasses ------------------------------------------------------------------
    def _fit(self, data: InteractionData) -> None:
        raise NotImplementedError

    def _score(self, users: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _state(self) -> dict[str, Any]:
        """Arrays (numpy or scipy sparse) that fully define the fitted model."""
        raise NotImplementedError

    def _load_state(self, state: dict[str, Any]) -> None:
        """Make the model ready to score from `_state()`'s arrays."""
        raise NotImplementedError

    def _finalize(self) -> None:
        """Iterative models: compute what scoring needs from the trainable parameters."""

    def _start(self, data: InteractionData) -> None:
        """Iterative models: build parameters and samplers before the first epoch."""
        raise NotImplementedError

    def _epoch(self, epoch: int) -> float:
        """Iterative models: one pass over the training data; returns the mean training loss."""
        raise NotImplementedError

    def _validation_users(self, data: InteractionData, rng: np.random.Generator) -> np.ndarray:
        """Users whose validation NDCG drives early stopping (a seeded sample)."""
        users = np.flatnonzero(data.valid.getnnz(axis=1) > 0)
        if len(users) > VALIDATION_USERS:
            users = np.sort(rng.choice(users, VALIDATION_USERS, replace=False))
        return users

    def _validation_loss(self, pos: np.ndarray, neg: np.ndarray) -> float:
        """Loss on validation pairs given their scores: BPR, -log sigmoid(pos - neg)."""
        return float(np.mean(np.logaddexp(0.0, -(pos - neg))))

    # -- internals ------------------------------------------------------------------------------
    def _seed(self) -> None:
        import torch

        torch.manual_seed(self.config.seed)
        self.rng = np.random.default_rng(self.config.seed)

    def _set_ids(self, user_ids: np.ndarray, item_ids: np.ndarray) -> None:
        self.user_ids, self.item_ids = user_ids, item_ids
        self._user_pos = {str(u): i for i, u in enumerate(user_ids)}

    def _bind(self, data: InteractionData) -> None:
        self.dataset = data.dataset
        self._set_ids(data.user_ids, data.item_ids)
        self.seen = (data.train > 0).astype(np.float32).tocsr()
        self.history, self.best_epoch = [], None

    def _record_epoch(self, data: InteractionData, epoch: int, train_loss: float | None,
                      t0: float, on_epoch: EpochCallback | None) -> EpochStats:
        """Validate (NDCG@20 and loss on the validation users) and report one epoch."""
        val_ndcg = val_loss = None
        users = self._val_users
        if len(users):
            val_ndcg, scores = validation_ndcg(self, data, users, VALIDATION_K)
            pos = scores[self._val_pairs[0], self._val_pairs[1]]
            neg = scores[self._val_pairs[0], self._val_pairs[2]]   # -inf (no loss) if seen
            val_loss = self._validation_loss(pos, neg)
        stats = EpochStats(epoch, train_loss, val_loss, val_ndcg, time.perf_counter() - t0)
        self.history.append(stats)
        if on_epoch is not None:
            on_epoch(stats)
        return stats

    def _prepare_validation(self, data: InteractionData) -> None:
        rng = np.random.default_rng(self.config.seed + 1)
        self._val_users = self._validation_users(data, rng)
        val = data.valid[self._val_users].tocoo()
        self._val_pairs = (val.row, val.col, rng.integers(0, data.n_items, len(val.row)))

    def _fit_epochs(self, data: InteractionData, progress: ProgressCallback | None,
                    on_epoch: EpochCallback | None) -> None:
        cfg = self.config
        report(progress, 0, cfg.epochs, f"preparing {self.name}", stage="prepare")
        self._progress = progress          # lets `_start` report its own steps (sub-models)
        try:
            self._start(data)
        finally:
            self._progress = None
        self._prepare_validation(data)
        best, best_state, waited = -np.inf, None, 0
        for epoch in range(1, cfg.epochs + 1):
            t0 = time.perf_counter()
            train_loss = float(self._epoch(epoch))
            self._finalize()
            stats = self._record_epoch(data, epoch, train_loss, t0, on_epoch)
            report(progress, epoch, cfg.epochs, f"epoch {epoch}/{cfg.epochs}", stage="epoch",
                   **stats.metrics())
            metric = self._stop_metric(stats)
            if metric > best + 1e-7:
                best, waited, self.best_epoch = metric, 0, epoch
                best_state = _copy_state(self._state())
            else:
                waited += 1
                if waited >= cfg.patience:
                    report(progress, cfg.epochs, cfg.epochs, f"stopped early after epoch "
                           f"{epoch} of {cfg.epochs}: no validation gain for {waited} epochs; "
                           f"keeping epoch {self.best_epoch}", stage="early-stop")
                    break
        if best_state is not None:
            self._load_state(best_state)


def validation_ndcg(model: Recommender, data: InteractionData, users: np.ndarray,
                    k: int = VALIDATION_K) -> tuple[float, np.ndarray]:
    """NDCG@k on the validation split for `users`, and their masked score rows (for losses)."""
    scores = mask_seen(model.score(users).astype(np.float32, copy=True), data.train[users])
    metrics = ranking_metrics(top_k(scores, k), data.valid[users], [k])
    return float(metrics[("ndcg", k)].mean()), scores


def _copy_state(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v.copy() for k, v in state.items()}


def _pack(state: dict[str, Any]) -> dict[str, np.ndarray]:
    """Flatten scipy sparse matrices into their CSR arrays for np.savez."""
    out = {}
    for key, value in state.items():
        if sp.issparse(value):
            csr = value.tocsr()
            out[f"{key}::data"], out[f"{key}::indices"] = csr.data, csr.indices
            out[f"{key}::indptr"], out[f"{key}::shape"] = csr.indptr, np.array(csr.shape)
        else:
            out[key] = np.asarray(value)
    return out


def _unpack(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The state saved by `_pack`: plain arrays, and CSR matrices rebuilt from their four parts
    with every pointer checked (`model_files.csr_parts`)."""
    from recsys.core.model_files import ModelFileError, csr_parts, shown_name

    out: dict[str, Any] = {}
    for key, value in arrays.items():
        base, sep, part = key.partition("::")
        if not sep:
            out[key] = value
        elif part == "data":
            try:
                parts = [arrays[f"{base}::{p}"] for p in ("indices", "indptr", "shape")]
            except KeyError:
                raise ModelFileError(f"the matrix {shown_name(base)} is incomplete") from None
            out[base] = csr_parts(value, *parts, what=shown_name(base))
        elif part not in ("indices", "indptr", "shape"):
            raise ModelFileError(f"it holds an array {shown_name(key)} this version does not "
                                 "know")
        elif f"{base}::data" not in arrays:
            raise ModelFileError(f"the matrix {shown_name(base)} is incomplete")
    return out
