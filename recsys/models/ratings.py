"""Rating prediction: biased matrix factorisation of explicit ratings (e.g. 1-5 stars).

When interactions carry a rating, `BiasedMF` predicts it as r(u, i) = mu + b_u + b_i + p_u . q_i,
trained by Adam on the squared error of the training ratings (with L2 on the factors and
biases), early-stopped on the validation ratings' RMSE. `predict_ratings` gives the predicted
stars of (user, item) pairs; `rating_metrics` scores them (MAE, RMSE) on a split, reported
beside the ranking metrics by `evaluate`.

Ranking all items by predicted rating is poor when only rated pairs are seen: nothing tells
the model that a never-rated item is unlikely to be wanted (ratings are missing not at random).
As in Steck (KDD 2010, "Training and testing of recommender systems on data missing not at
random"), unrated pairs are also pulled towards the lowest training rating with a small weight
(`missing_weight`, 0 = pure rating MSE), which ranks far better at a small cost in RMSE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from recsys.data.interactions import InteractionData

from .config import hp
from .epochs import EpochStats
from .neural import EmbeddingNet, TorchConfig, TorchModel


@dataclass
class BiasedMFConfig(TorchConfig):
    dim: int = hp(32, "factor size", 2, 512, log=True)
    reg: float = hp(0.02, "L2 penalty on the factors and biases of each batch", 0.0, 10.0)
    lr: float = hp(0.01, "Adam learning rate", 1e-4, 0.1, log=True)
    batch_size: int = hp(1024, "training ratings per batch", 8, 65536, log=True)
    epochs: int = hp(100, "maximum number of epochs", 1, 2000)
    patience: int = hp(5, "stop after this many epochs without a better validation RMSE",
                       1, 100)
    missing_weight: float = hp(0.05, "weight of unrated pairs pulled towards the lowest "
                               "rating (ranks far better; 0 = pure rating MSE)", 0.0, 1.0)
    stop_on: str = hp("rmse", "early stopping on the validation ratings' RMSE, or on the "
                      "validation ranking (NDCG@20)", choices=("rmse", "ndcg"))


class BiasedMF(TorchModel):
    """Biased MF for explicit ratings (MSE); scores every item by its predicted rating."""

    config_class = BiasedMFConfig
    requires = frozenset({"cf", "ratings"})

    def _build(self, data: InteractionData) -> torch.nn.Module:
        users, items, values = data.ratings.part(0)
        if not len(values):
            from .errors import ModelError
            raise ModelError(f"Dataset '{data.dataset}' has no ratings in its training split.")
        self.train_ratings = (users, items, values.astype(np.float32))
        self.mean = float(values.mean())
        self.low, self.high = float(values.min()), float(values.max())
        self.valid_ratings = data.ratings.part(1)
        self.n_items = data.n_items
        net = EmbeddingNet(data.n_users, data.n_items, self.config.dim, init_std=0.01)
        net.user_bias = torch.nn.Embedding(data.n_users, 1)
        net.item_bias = torch.nn.Embedding(data.n_items, 1)
        torch.nn.init.zeros_(net.user_bias.weight)
        torch.nn.init.zeros_(net.item_bias.weight)
        self._val_rmse: float | None = None
        return net

    def _predict(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        net = self.net
        return (self.mean + net.user_bias(users)[:, 0] + net.item_bias(items)[:, 0]
                + (net.users(users) * net.items(items)).sum(1))

    def _epoch(self, epoch: int) -> float:
        """One pass over the training ratings (plus as many sampled unrated pairs)."""
        self.net.train()
        users, items, values = self.train_ratings
        order = self.rng.permutation(len(values))
        total, count = 0.0, 0
        size = min(self.config.batch_size, max(8, -(-len(values) // 10)))
        for start in range(0, len(order), size):
            sel = order[start:start + size]
            u, i, r = (torch.from_numpy(x[sel]) for x in (users, items, values))
            loss = (self._predict(u, i) - r).pow(2).mean()
            total += float(loss.detach()) * len(sel)
            count += len(sel)
            if self.config.missing_weight > 0:     # unrated pairs only (a drawn rated one
                j = self.rng.integers(0, self.n_items, len(sel))      # is left out)
                unrated = torch.from_numpy(
                    np.asarray(self.seen[users[sel], j]).ravel() == 0).float()
                miss = (self._predict(u, torch.from_numpy(j)) - self.low).pow(2)
                loss = loss + self.config.missing_weight * (miss * unrated).mean()
            net = self.net
            loss = loss + self.config.reg * (
                net.users(u).pow(2).sum(1) + net.items(i).pow(2).sum(1)
                + net.user_bias(u)[:, 0] ** 2 + net.item_bias(i)[:, 0] ** 2).mean()
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        return total / max(count, 1)

    def _export(self) -> dict[str, np.ndarray]:
        net = self.net
        n_users = net.users.weight.shape[0]
        user_factors = torch.cat([net.users.weight, net.user_bias.weight + self.mean,
                                  torch.ones(n_users, 1)], 1)
        item_factors = torch.cat([net.items.weight, torch.ones(self.n_items, 1),
                                  net.item_bias.weight], 1)
        return {"user_factors": user_factors.numpy(), "item_factors": item_factors.numpy(),
                "bounds": np.array([self.low, self.high], dtype=np.float32),
                "mean": np.array([self.mean], dtype=np.float32)}

    def _finalize(self) -> None:
        super()._finalize()
        users, items, values = self.valid_ratings
        self._val_rmse = None
        if len(values):
            err = self.predict_ratings(users, items) - values
            self._val_rmse = float(np.sqrt(np.mean(err ** 2)))

    def _validation_loss(self, pos: np.ndarray, neg: np.ndarray) -> float:
        """The validation ratings' mean squared error (the curves' validation loss)."""
        if self._val_rmse is None:
            return super()._validation_loss(pos, neg)
        return self._val_rmse ** 2

    def _stop_metric(self, stats: EpochStats) -> float:
        """Early stopping on the validation RMSE (on the NDCG without validation ratings, or
        when asked)."""
        if self._val_rmse is None or self.config.stop_on == "ndcg":
            return super()._stop_metric(stats)
        return -self._val_rmse

    def predict_ratings(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Predicted ratings of (user row, item column) pairs, within the training range."""
        ex = self.exported
        users, items = np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)
        pred = np.einsum("nd,nd->n", ex["user_factors"][users], ex["item_factors"][items])
        low, high = ex["bounds"]
        return np.clip(pred, low, high).astype(np.float32)

    def _score_history(self, items: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Fold-in, an approximation: a new shopper's factors are the weighted mean of their
        history items' factors, their bias zero: predicted stars mu + b_i + p . q_i."""
        item_factors = self.exported["item_factors"]
        dim = item_factors.shape[1] - 2
        user = np.zeros(item_factors.shape[1], dtype=np.float32)
        user[:dim] = weights @ item_factors[items, :dim] / weights.sum()
        user[dim], user[dim + 1] = self.mean_rating(), 1.0
        return item_factors @ user

    def mean_rating(self) -> float:
        """The training ratings' mean (mu)."""
        return float(self.exported["mean"][0])

    def modality_weights(self, user: int, items: np.ndarray) -> dict[str, np.ndarray]:
        """Predicted from the ratings of similar shoppers: behaviour alone."""
        return {"cf": np.ones(len(items))}

    def _state(self) -> dict[str, Any]:
        return self.exported


def rating_errors(model: Any, data: InteractionData, code: int = 2) -> np.ndarray | None:
    """Predicted minus actual rating of each rating of one split (default test); None when
    the model predicts no ratings or the data has none."""
    if not hasattr(model, "predict_ratings") or data.ratings is None:
        return None
    users, items, values = data.ratings.part(code)
    return model.predict_ratings(users, items) - values


def rating_metrics(model: Any, data: InteractionData, code: int = 2) -> dict[str, float]:
    """MAE and RMSE of a rating model's predictions on one split's ratings (default test),
    with the number of ratings scored; empty when the model or the data has none."""
    err = rating_errors(model, data, code)
    if err is None or not len(err):
        return {}
    return {"mae": float(np.abs(err).mean()), "rmse": float(np.sqrt(np.mean(err ** 2))),
            "ratings": int(len(err))}
