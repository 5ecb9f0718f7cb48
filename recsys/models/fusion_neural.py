"""The fusion models trained end to end (see `recsys.models.fusion` for the three kinds and
the parts they share): `EarlyFusion` (feature level) and `AttentionFusion` (model level), both
on `HybridModel`: content inputs, ID masks with ID dropout, user histories and frozen
per-modality priors, trained with BPR on sampled (partly hard) negatives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recsys.data.interactions import InteractionData
from recsys.evaluation.metrics import mask_seen, top_k

from .base import build_model
from .baselines import ContentKNN, share_of_scores
from .config import hp, modalities_hp
from .fusion import SubScorers
from .neural import (
    PairSampler,
    TorchConfig,
    TorchModel,
    bpr_loss,
    item_features,
    sparse_tensor,
)


@dataclass
class HybridConfig(TorchConfig):
    modalities: tuple = modalities_hp("vector modalities fused with the CF signal")
    cf_model: str = hp("itemknn", "frozen CF scorer whose standardised score joins the CF "
                       "modality",
                       choices=("itemknn", "ease", "userknn", "als", "bpr-implicit"))
    feature_dim: int = hp(128, "PCA components kept of each content vector", 2, 1024, log=True)
    user_embeddings: bool = hp(False, "learn a free vector per user on top of their history "
                               "(memorises short histories; off: users are their history)")
    hard_share: float = hp(0.5, "share of negatives drawn from the top of the priors' ranking",
                           0.0, 1.0)
    hard_pool: int = hp(100, "top prior-ranked items per user that hard negatives come from",
                        5, 5000)
    id_dropout: float = hp(0.3, "probability of hiding an item's ID embedding in training", 0.0,
                           0.9)
    lr: float = hp(0.003, "Adam learning rate", 1e-4, 0.1, log=True)
    batch_size: int = hp(1024, "training pairs per batch", 8, 65536, log=True)
    epochs: int = hp(80, "maximum number of epochs", 1, 1000)
    patience: int = hp(5, "stop after this many epochs without a better validation NDCG@20",
                       1, 100)


class HybridModel(SubScorers, TorchModel):
    """Shared parts of the trained fusion models: content inputs, ID masks, user histories and
    frozen per-modality priors. Each modality's score is a learned embedding term plus a prior:
    a k-NN score (CF co-occurrence, image or text neighbours; standardised per user, with a
    learned weight that depends on the history length). The priors carry neighbourhood
    knowledge that 64-dimensional embeddings learn poorly from sparse data; the embeddings,
    the modality weights and the attention are trained end to end on top of them."""

    config_class = HybridConfig

    def _scorers(self) -> dict[str, Any]:
        return {"cf": build_model(self.config.cf_model),
                **{m: ContentKNN(modalities=(m,)) for m in self.content_modalities}}

    def _build(self, data: InteractionData) -> nn.Module:
        self._fit_scorers(data)
        self.prior = torch.from_numpy(self._signals(np.arange(data.n_users)))  # users x items x M
        self.length_t = torch.from_numpy(self.lengths)
        feats = item_features(data, self.content_modalities, self.config.feature_dim)
        self.inputs = {m: torch.from_numpy(v) for m, v in feats.items()}
        self.warm = torch.from_numpy(~data.cold_items())
        present = {m: np.abs(data.content(m)).sum(axis=1) > 0 for m in self.content_modalities}
        self.present = {m: torch.from_numpy(v) for m, v in present.items()}
        self.histories = sparse_tensor(data.train)
        self.history_weight = torch.from_numpy(np.asarray(data.train.sum(axis=1)).ravel()
                                               .astype(np.float32))
        dim = self.config.dim
        net = nn.Module()
        net.users = nn.Embedding(data.n_users, dim)
        net.users.weight.requires_grad_(self.config.user_embeddings)
        net.items = nn.Embedding(data.n_items, dim)
        nn.init.normal_(net.users.weight, std=0.1 if self.config.user_embeddings else 0.0)
        nn.init.normal_(net.items.weight, std=0.1)
        net.proj = nn.ModuleDict({m: nn.Linear(x.shape[1], dim) for m, x in self.inputs.items()})
        # softplus(0.5413) = 1: every prior starts with weight 1
        n = len(self.signal_names)
        net.prior_weight = nn.Parameter(torch.stack([torch.full((n,), 0.5413), torch.zeros(n)]))
        self._extend(net, dim)
        return net

    def _sampler(self, data: InteractionData) -> PairSampler:
        """Half of the negatives come from the top of the summed priors' ranking."""
        pool = top_k(mask_seen(self.prior.sum(-1).numpy(), self.seen), self.config.hard_pool)
        return PairSampler(data.train, self.rng, pool, self.config.hard_share)

    def _prior(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Weighted priors of (user, item) pairs: pairs x M signals. A weight is
        softplus(a_m + b_m * centred log history length): evidence may be switched off for some
        users, never inverted."""
        w = self.net.prior_weight
        centred = (self.length_t[users] - self.length_t.mean())[:, None]
        return F.softplus(w[0] + w[1] * centred) * self.prior[users, items]

    def _prior_rows(self, users: np.ndarray) -> np.ndarray:
        """Weighted priors of users against every item (inference): users x items x M."""
        w = self.exported["prior_weight"]
        centred = (self.lengths[users] - self.lengths.mean())[:, None]
        weights = np.logaddexp(0.0, w[0] + w[1] * centred)
        # while training (validation over many users), the standardised signals of every
        # user are already in memory; a few users (recommend) are cheaper to score directly
        if hasattr(self, "prior") and len(users) > 8:
            signals = self.prior.numpy()[users]
        else:
            signals = self._signals(users)
        return weights[:, None, :] * signals

    def _state(self) -> dict[str, Any]:
        return {**self.exported, **self._scorer_state()}

    def _history_prior(self, items: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Fold-in: the weighted priors of a new history against every item (items x M), with
        the prior weights of its history length (as `_prior_rows` for a trained user)."""
        w = self.exported["prior_weight"]
        centred = np.log1p(len(items)) - self.lengths.mean()
        return np.logaddexp(0.0, w[0] + w[1] * centred)[None, :] * \
            self._history_signals(items, weights)

    def _history_query(self, item_vectors: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Fold-in: a new shopper's query vector, the weighted mean of their history's item
        vectors. A trained user's query is exactly this plus their ID embedding, which is
        zero unless `user_embeddings` is on (then a new shopper simply has none)."""
        return weights @ item_vectors / weights.sum()

    def _load_state(self, state: dict[str, Any]) -> None:
        self._load_scorers(state)
        self.exported = {k: v for k, v in state.items() if "." not in k}

    def _extend(self, net: nn.Module, dim: int) -> None:
        """Subclasses add their own layers."""

    def _id_mask(self) -> torch.Tensor:
        """Items whose ID embedding is used: warm items, minus a random share while training."""
        if not self.net.training or self.config.id_dropout <= 0:
            return self.warm
        return self.warm & (torch.rand(len(self.warm)) >= self.config.id_dropout)

    def _modalities(self, id_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-modality item representations (n_items x dim)."""
        return {"cf": self.net.items.weight * id_mask[:, None].float(),
                **{m: self.net.proj[m](self.inputs[m]) for m in self.content_modalities}}

    def _queries(self, item_vectors: torch.Tensor, users: torch.Tensor | None = None,
                 pos: torch.Tensor | None = None, weights: torch.Tensor | None = None
                 ) -> torch.Tensor:
        """User vectors: ID embedding plus the weighted mean of their history's item vectors.

        In training (`users`, `pos`, `weights` given) the positive item is left out of its
        user's history (as in FISM), so the model cannot score a pair by self-similarity.
        """
        sums = torch.sparse.mm(self.histories, item_vectors)
        total = self.history_weight
        if users is None:
            return self.net.users.weight + sums / total.clamp(min=1e-6)[:, None]
        rest = (total[users] - weights).clamp(min=1e-6)[:, None]
        history = (sums[users] - weights[:, None] * item_vectors[pos]) / rest
        return self.net.users(users) + history


class EarlyFusion(HybridModel):
    """Feature-level fusion: item = W [a_id e_id ; a_1 z_1 ; ... ; a_M z_M], BPR loss.

    The projection W is split by modality, so a score q . h_i decomposes exactly into the ID
    and each modality's contribution: those are the explanation's modality weights.
    """

    def _extend(self, net: nn.Module, dim: int) -> None:
        n = len(self.signal_names)
        net.gates = nn.Parameter(torch.zeros(n))
        net.out = nn.Linear(n * dim, dim, bias=False)

    def _parts(self, id_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each modality's contribution to the fused item vector (they sum to it)."""
        mods = self._modalities(id_mask)
        names = self.signal_names
        gates = torch.softmax(self.net.gates, 0) * len(names)
        dim = self.config.dim
        return {m: F.linear(gates[j] * mods[m], self.net.out.weight[:, j * dim:(j + 1) * dim])
                for j, m in enumerate(names)}

    def _batch_loss(self, users, pos, neg, weights):
        items = sum(self._parts(self._id_mask()).values())
        q = self._queries(items, users, pos, weights)
        p, n = items[pos], items[neg]
        s_pos = (q * p).sum(1) + self._prior(users, pos).sum(1)
        s_neg = (q * n).sum(1) + self._prior(users, neg).sum(1)
        return bpr_loss(s_pos, s_neg) + self._l2(q, p, n)

    def _export(self):
        parts = self._parts(self._id_mask())
        items = sum(parts.values())
        return {"user_factors": self._queries(items).numpy(), "item_factors": items.numpy(),
                "prior_weight": self.net.prior_weight.numpy(),
                **{f"part_{m}": v.numpy() for m, v in parts.items()}}

    def _score(self, users: np.ndarray) -> np.ndarray:
        if self.cf_fallback:
            return self._cf_scores(users)
        return super()._score(users) + self._prior_rows(users).sum(-1)

    def _score_history(self, items: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Fold-in, exact: the query is the weighted mean of the history's fused item vectors
        (as for a trained user without a free user embedding), plus the priors."""
        if self.cf_fallback:
            return self._cf_history_scores(items, weights)
        factors = self.exported["item_factors"]
        query = self._history_query(factors[items], weights)
        return factors @ query + self._history_prior(items, weights).sum(-1)

    def modality_weights(self, user: int, items: np.ndarray) -> dict[str, np.ndarray]:
        """Share of |q . h_m + prior_m| of each modality in the item's score."""
        if self.cf_fallback:
            return self._cf_weights(items)
        q = self.exported["user_factors"][user]
        prior = self._prior_rows(np.array([user]))[0, items]
        contrib = {m: self.exported[f"part_{m}"][items] @ q + prior[:, j]
                   for j, m in enumerate(self.signal_names)}
        return share_of_scores({m: np.abs(v)[None] for m, v in contrib.items()},
                               np.arange(len(items)))


@dataclass
class AttentionFusionConfig(HybridConfig):
    cf_model: str = hp("ease", "frozen CF scorer whose standardised score joins the CF "
                       "modality",
                       choices=("itemknn", "ease", "userknn", "als", "bpr-implicit"))
    lr: float = hp(0.001, "Adam learning rate", 1e-4, 0.1, log=True)


class AttentionFusion(HybridModel):
    """Model-level fusion: score = sum_m a_m(u, i) (q_u . v_m(i) + prior_m), a = softmax over
    modalities.

    The attention logits are bilinear in the user query and each modality vector plus a learned
    per-modality bias. A missing photo or text is masked out. A missing ID (a cold item, or ID
    dropout in training) is not: its ID vector becomes a learned "unknown item" vector and the
    CF modality keeps its prior, which for a cold item says that nobody consumed it with the
    user's items. Masking the CF modality instead left a cold item to its content alone, a
    convex mix without the CF term that pulls down warm items lacking co-occurrence evidence:
    cold items were over-ranked (63% of Myntra top-20 lists, NDCG@20 0.094 vs EASE 0.122).
    """

    config_class = AttentionFusionConfig

    def _extend(self, net: nn.Module, dim: int) -> None:
        net.attention = nn.Linear(dim, dim, bias=False)
        net.modality_bias = nn.Parameter(torch.zeros(len(self.signal_names)))
        net.unknown_item = nn.Parameter(torch.zeros(dim))

    def _modalities(self, id_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        mods = super()._modalities(id_mask)
        mods["cf"] = torch.where(id_mask[:, None], self.net.items.weight, self.net.unknown_item)
        return mods

    def _available(self, id_mask: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.ones_like(id_mask),
                            *(self.present[m] for m in self.content_modalities)], 1)

    def _attend(self, q: torch.Tensor, keys: torch.Tensor, vectors: torch.Tensor,
                available: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """Scores for query rows q against stacked modality vectors (b x M x d); each
        modality's prior joins its score."""
        logits = torch.einsum("bd,bmd->bm", keys, vectors) / self.config.dim ** 0.5
        logits = (logits + self.net.modality_bias).masked_fill(~available, -1e9)
        sims = torch.einsum("bd,bmd->bm", q, vectors)
        sims = sims + prior
        return (torch.softmax(logits, 1) * sims).sum(1)

    def _batch_loss(self, users, pos, neg, weights):
        id_mask = self._id_mask()
        mods = self._modalities(id_mask)
        stacked = torch.stack([mods[m] for m in self.signal_names], 1)    # items x M x d
        q = self._queries(stacked.mean(1), users, pos, weights)
        keys = self.net.attention(q)
        available = self._available(id_mask)
        s_pos = self._attend(q, keys, stacked[pos], available[pos], self._prior(users, pos))
        s_neg = self._attend(q, keys, stacked[neg], available[neg], self._prior(users, neg))
        return bpr_loss(s_pos, s_neg) + self._l2(q, stacked[pos], stacked[neg])

    def _export(self):
        id_mask = self._id_mask()
        mods = self._modalities(id_mask)
        q = self._queries(torch.stack([mods[m] for m in self.signal_names], 1).mean(1))
        return {"queries": q.numpy(), "keys": self.net.attention(q).numpy(),
                "attention_weight": self.net.attention.weight.numpy(),
                "bias": self.net.modality_bias.numpy(),
                "prior_weight": self.net.prior_weight.numpy(),
                "available": self._available(id_mask).float().numpy(),
                **{f"part_{m}": v.numpy() for m, v in mods.items()}}

    def attention(self, users: np.ndarray, items: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
        """(scores, attention weights) of users x items (all items by default); weights have a
        last axis over `signal_names` ("cf", then each content modality)."""
        ex = self.exported
        cols = slice(None) if items is None else items
        q, keys = ex["queries"][users], ex["keys"][users]
        names = self.signal_names
        sims = np.stack([q @ ex[f"part_{m}"][cols].T for m in names], -1)
        sims += self._prior_rows(users)[:, cols]
        logits = np.stack([keys @ ex[f"part_{m}"][cols].T for m in names], -1)
        logits = logits / np.sqrt(q.shape[1]) + ex["bias"]
        logits = np.where(ex["available"][cols][None] > 0, logits, -1e9)
        logits -= logits.max(-1, keepdims=True)
        alpha = np.exp(logits)
        alpha /= alpha.sum(-1, keepdims=True)
        return (alpha * sims).sum(-1), alpha

    def _score(self, users: np.ndarray) -> np.ndarray:
        if self.cf_fallback:
            return self._cf_scores(users)
        return self.attention(users)[0]

    def _score_history(self, items: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Fold-in, exact: the model's own user representation from the history (the
        weighted mean of the history's modality-averaged item vectors), its attention keys,
        and the priors of the history; the same sums as `attention` for a trained user."""
        if self.cf_fallback:
            return self._cf_history_scores(items, weights)
        ex = self.exported
        parts = [ex[f"part_{m}"] for m in self.signal_names]
        q = self._history_query(sum(p[items] for p in parts) / len(parts), weights)
        keys = q @ self._attention_matrix().T
        sims = np.stack([p @ q for p in parts], -1) + self._history_prior(items, weights)
        logits = np.stack([p @ keys for p in parts], -1) / np.sqrt(len(q)) + ex["bias"]
        logits = np.where(ex["available"] > 0, logits, -1e9)
        logits -= logits.max(-1, keepdims=True)
        alpha = np.exp(logits)
        alpha /= alpha.sum(-1, keepdims=True)
        return (alpha * sims).sum(-1)

    def _attention_matrix(self) -> np.ndarray:
        """The attention layer's weight (keys = queries @ W^T). Model files saved before it was
        exported hold every training user's query and key, from which least squares recovers
        it exactly (as many users as dimensions suffice)."""
        ex = self.exported
        if "attention_weight" not in ex:
            solution = np.linalg.lstsq(ex["queries"], ex["keys"], rcond=None)[0]
            ex["attention_weight"] = np.ascontiguousarray(solution.T, dtype=np.float32)
        return ex["attention_weight"]

    def modality_weights(self, user: int, items: np.ndarray) -> dict[str, np.ndarray]:
        """The model's own attention weights for this user and these items."""
        if self.cf_fallback:
            return self._cf_weights(items)
        alpha = self.attention(np.array([user]), np.asarray(items))[1][0]
        return {m: alpha[:, j] for j, m in enumerate(self.signal_names)}
