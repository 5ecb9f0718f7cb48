"""The epoch loop of iterative models: validation each epoch, early stopping, live curves.

`EpochLoop` is the part of every `Recommender` that trains for several epochs: a model
implements `_start` (build parameters and samplers), `_epoch` (one pass, returning the mean
training loss), `_finalize` (what scoring needs from the trainable parameters) and `_state` /
`_load_state`; the loop then records each epoch (`EpochStats`: training loss, validation loss
and NDCG@20 on a seeded sample of validation users), stops when validation NDCG has not
improved for `patience` epochs, restores the best epoch's state and calls `on_epoch` after
every epoch (the progress bar and the live loss curves). One-step models record their single
"epoch" with the same validation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from recsys.core.progress import ProgressCallback, report
from recsys.data.interactions import InteractionData
from recsys.evaluation.metrics import mask_seen, ranking_metrics, top_k

VALIDATION_USERS = 3000      # users sampled for per-epoch validation NDCG@20
VALIDATION_K = 20


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


def validation_ndcg(model: Any, data: InteractionData, users: np.ndarray,
                    k: int = VALIDATION_K) -> tuple[float, np.ndarray]:
    """NDCG@k of a fitted `model` (a `Recommender`) on the validation split for `users`, and
    their masked score rows (for losses)."""
    scores = mask_seen(model.score(users).astype(np.float32, copy=True), data.train[users])
    metrics = ranking_metrics(top_k(scores, k), data.valid[users], [k])
    return float(metrics[("ndcg", k)].mean()), scores


class EpochLoop:
    """Validation and early stopping, mixed into `Recommender` (which provides `config`,
    `name`, `history`, `best_epoch`, `score`, `_state` and `_load_state`)."""

    # -- hooks for iterative models -------------------------------------------------------------
    def _start(self, data: InteractionData) -> None:
        """Iterative models: build parameters and samplers before the first epoch."""
        raise NotImplementedError

    def _epoch(self, epoch: int) -> float:
        """Iterative models: one pass over the training data; returns the mean training loss."""
        raise NotImplementedError

    def _finalize(self) -> None:
        """Iterative models: compute what scoring needs from the trainable parameters."""

    def _validation_users(self, data: InteractionData, rng: np.random.Generator) -> np.ndarray:
        """Users whose validation NDCG drives early stopping (a seeded sample)."""
        users = np.flatnonzero(data.valid.getnnz(axis=1) > 0)
        if len(users) > VALIDATION_USERS:
            users = np.sort(rng.choice(users, VALIDATION_USERS, replace=False))
        return users

    def _validation_loss(self, pos: np.ndarray, neg: np.ndarray) -> float:
        """Loss on validation pairs given their scores: BPR, -log sigmoid(pos - neg)."""
        return float(np.mean(np.logaddexp(0.0, -(pos - neg))))

    def _stop_metric(self, stats: EpochStats) -> float:
        """What early stopping maximises: validation NDCG@20 (minus the training loss when
        there is no validation split)."""
        return stats.val_ndcg if stats.val_ndcg is not None else -stats.train_loss

    # -- the loop -------------------------------------------------------------------------------
    def _prepare_validation(self, data: InteractionData) -> None:
        rng = np.random.default_rng(self.config.seed + 1)
        self._val_users = self._validation_users(data, rng)
        val = data.valid[self._val_users].tocoo()
        self._val_pairs = (val.row, val.col, rng.integers(0, data.n_items, len(val.row)))

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


def _copy_state(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v.copy() for k, v in state.items()}
