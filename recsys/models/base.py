"""The one recommender interface.

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
state is restored) and per-epoch callbacks that feed the progress bar and the live loss curves
(`recsys.models.epochs`). The settings are described in `recsys.models.config`, the file
format in `recsys.models.files`.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np
import scipy.sparse as sp

from recsys.core.errors import RecsysError
from recsys.core.progress import ProgressCallback, report
from recsys.core.threads import thread_count
from recsys.core.threads import torch_threads as _torch_threads
from recsys.data.interactions import InteractionData, UnknownUser, unknown_user_message
from recsys.evaluation.metrics import top_k

from .config import ModelConfig, coerce_params
from .epochs import EpochCallback, EpochLoop, EpochStats
from .errors import DamagedModelFile, ModelError
from .files import SEEN, read_contents, read_header, write_model_file

THREADS_ENV = "RECSYS_TORCH_THREADS"


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


class Recommender(EpochLoop):
    """Base class: id bookkeeping, seen-item exclusion, top-K, fold-in, save/load; the epoch
    loop comes from `EpochLoop`."""

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
        """Write the fitted model to one .npz file (no pickle: arrays plus a JSON header,
        `recsys.models.files`)."""
        header = {"name": self.name, "class": type(self).__name__,
                  "config": asdict(self.config), "dataset": self.dataset,
                  "best_epoch": self.best_epoch, "history": [asdict(h) for h in self.history]}
        write_model_file(path, header, self.user_ids, self.item_ids,
                         {SEEN: self.seen, **self._state()})

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
        """The model a file's arrays hold: its class from the registry, its settings checked,
        then its ids, seen items and state (`files.read_contents`)."""
        from recsys.core.model_files import ModelFileError

        meta = read_header(arrays)
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
        contents = read_contents(arrays)
        model._set_ids(contents.user_ids.astype(object), contents.item_ids.astype(object))
        model.seen = contents.seen
        model._load_state(contents.state)
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
