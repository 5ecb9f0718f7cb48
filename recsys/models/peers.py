"""Peer libraries as models: `implicit`'s ALS and BPR (CPU build), registered like ours.

A data scientist comparing our models against "the best baseline" would reach for the
maintained `implicit` library; these wrappers put its two workhorses in the same table, behind
the same contract (fit on the training split, score, fold-in, save/load without pickle):

- `als`: implicit's weighted matrix factorisation (Hu, Koren & Volinsky 2008) solved by
  alternating least squares with conjugate gradient. The interaction weights (view 1, cart 3,
  purchase 5) times `alpha` are the confidences. Fold-in of a new shopper is implicit's own
  `recalculate_user` (one least-squares solve against the item factors: exact for the model,
  not a neighbour average).
- `bpr-implicit`: implicit's BPR matrix factorisation (its item factors carry a bias column).
  implicit has no fold-in for BPR, so a new shopper borrows the most similar training users'
  scores (the base fold-in).

Only the factor matrices are saved (our own `.npz` format, `recsys.models.files`); implicit's
own `save` is not used, and nothing is ever unpickled. Our own `bpr` (torch, epochs with
validation early stopping, the shared trainer of the neural models) stays: it is the reference
the fusion models' training loop is checked against, and it records per-epoch curves.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys.core.threads import thread_count
from recsys.data.interactions import InteractionData

from .base import Recommender
from .config import ModelConfig, hp

THREADS_ENV = "RECSYS_IMPLICIT_THREADS"
"""Threads implicit's ALS solves users/items on (default: the idle cores). BPR always uses one
thread: implicit's multi-threaded BPR is Hogwild (lock-free) SGD, whose result depends on the
thread timing, and a model must be reproducible from its seed."""


@contextmanager
def _blas_single_thread():
    """implicit slows down when BLAS runs its own threads under its OpenMP ones: BLAS gets one
    thread here. (implicit's check still warns when one of several BLAS copies loaded in the
    process, e.g. torch's, reports more threads: that warning is silenced here.)"""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"(OpenBLAS|Intel MKL) is configured",
                                category=RuntimeWarning)
        yield


class FactorModel(Recommender):
    """Models that score with `user_factors[users] @ item_factors.T`."""

    user_factors: np.ndarray
    item_factors: np.ndarray

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self.user_factors[users] @ self.item_factors.T

    def _state(self) -> dict[str, Any]:
        return {"user_factors": self.user_factors, "item_factors": self.item_factors}

    def _load_state(self, state: dict[str, Any]) -> None:
        user, item = (np.asarray(state[k], dtype=np.float32) for k in
                      ("user_factors", "item_factors"))
        if user.ndim != 2 or item.ndim != 2 or user.shape[1] != item.shape[1] \
                or user.shape[0] != len(self.user_ids) or item.shape[0] != len(self.item_ids):
            raise ValueError("factor shapes do not match the ids")
        self.user_factors, self.item_factors = user, item

    def _take(self, model: Any) -> None:
        self.user_factors = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.ascontiguousarray(model.item_factors, dtype=np.float32)


@dataclass
class ALSConfig(ModelConfig):
    factors: int = hp(128, "latent factors per user and item", 2, 1024, log=True)
    regularization: float = hp(0.05, "L2 regularisation of the factors", 1e-5, 100.0, log=True)
    alpha: float = hp(10.0, "confidence scale: confidence = alpha x interaction weight", 0.1,
                      1000.0, log=True)
    iterations: int = hp(15, "alternating least-squares sweeps", 1, 200)


class ImplicitALS(FactorModel):
    """implicit's ALS (CPU): weighted matrix factorisation of the confidence matrix."""

    config_class = ALSConfig

    def _library_model(self, threads: int = 1):
        from implicit.cpu.als import AlternatingLeastSquares

        cfg = self.config
        return AlternatingLeastSquares(factors=cfg.factors, regularization=cfg.regularization,
                                       alpha=cfg.alpha, iterations=cfg.iterations,
                                       num_threads=threads, random_state=cfg.seed)

    def _fit(self, data: InteractionData) -> None:
        with _blas_single_thread():
            model = self._library_model(thread_count(THREADS_ENV))
            model.fit(data.train.tocsr().astype(np.float32), show_progress=False)
        self._take(model)

    def _score_history(self, items: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Fold-in with implicit's `recalculate_user`: the least-squares user factor of this
        history (its weights as confidences) against the trained item factors."""
        with _blas_single_thread():
            model = self._library_model()
            model.item_factors = self.item_factors
            model.user_factors = self.user_factors[:1]
            user = model.recalculate_user(0, self.history_row(items, weights))
        return np.asarray(user, dtype=np.float32) @ self.item_factors.T


@dataclass
class ImplicitBPRConfig(ModelConfig):
    factors: int = hp(128, "latent factors per user and item", 2, 1024, log=True)
    learning_rate: float = hp(0.05, "SGD learning rate", 1e-4, 1.0, log=True)
    regularization: float = hp(0.01, "L2 regularisation of the factors", 1e-6, 10.0, log=True)
    iterations: int = hp(100, "passes over the training interactions", 1, 1000)


class ImplicitBPR(FactorModel):
    """implicit's BPR (CPU): pairwise ranking matrix factorisation with sampled negatives."""

    config_class = ImplicitBPRConfig

    def _fit(self, data: InteractionData) -> None:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        cfg = self.config
        with _blas_single_thread():
            model = BayesianPersonalizedRanking(
                factors=cfg.factors, learning_rate=cfg.learning_rate,
                regularization=cfg.regularization, iterations=cfg.iterations, num_threads=1,
                random_state=cfg.seed, verify_negative_samples=True)
            model.fit(sp.csr_matrix((data.train > 0).astype(np.float32)), show_progress=False)
        self._take(model)
