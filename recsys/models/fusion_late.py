"""Late fusion (decision level; see `recsys.models.fusion` for the three kinds): a CF scorer
and one scorer per vector modality, their per-user standardised scores combined with weights
learned on the validation split, each modality left out when it does not help.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from recsys.data.interactions import InteractionData
from recsys.evaluation.metrics import mask_seen, ranking_metrics, top_k

from .base import Recommender, build_model
from .baselines import ContentKNN, ContentModel, share_of_scores
from .config import ModelConfig, hp, modalities_hp
from .epochs import VALIDATION_K
from .fusion import TIE_BREAK, SubScorers


@dataclass
class LateFusionConfig(ModelConfig):
    modalities: tuple = modalities_hp("vector modalities whose scorers join the CF scorer")
    cf_model: str = hp("ease", "collaborative scorer", choices=("ease", "itemknn", "userknn",
                                                                  "bpr", "lightgcn", "als",
                                                                  "bpr-implicit"))
    content_scorer: str = hp("knn", "modality scorers: item k-NN or mean-profile cosine",
                             choices=("knn", "profile"))
    step: float = hp(0.5, "initial step of the coordinate search over the weights", 0.01, 4.0)
    fit_users: int = hp(2000, "validation users whose NDCG@20 the weights maximise", 10,
                        100000)
    epochs: int = hp(30, "maximum rounds of coordinate search", 1, 500)
    patience: int = hp(4, "stop after this many rounds without a better held-out NDCG@20",
                       1, 100)


class LateFusion(SubScorers, Recommender):
    """Decision-level fusion of a CF scorer and one scorer per vector modality.

    Each signal's scores are standardised per user; the fused score is sum_m w_m(u) z_m with
    w_m(u) = a_m + b_m log(1 + history length) (a_cf = 1 fixes the scale). The weights are
    learned on the validation split by coordinate ascent on NDCG@20 (the metric itself, which
    pairwise losses over sampled negatives approximate poorly here) over half of the
    validation users; the other half drives early stopping. Sub-scorers see train only.
    """

    config_class = LateFusionConfig
    iterative = True

    def _scorers(self) -> dict[str, Any]:
        content = ContentKNN if self.config.content_scorer == "knn" else ContentModel
        return {"cf": build_model(self.config.cf_model, seed=self.config.seed),
                **{m: content(modalities=(m,)) for m in self.content_modalities}}

    def _validation_users(self, data: InteractionData, rng: np.random.Generator) -> np.ndarray:
        return self.stop_users

    def _start(self, data: InteractionData) -> None:
        self._fit_scorers(data)
        users = self.rng.permutation(np.flatnonzero(data.valid.getnnz(axis=1) > 0))
        half = max(1, len(users) // 2)
        self.stop_users = np.sort(users[half:][:3000])
        fit = np.sort(users[:half][:self.config.fit_users])
        self.fit_signals, self.fit_seen = self._signals(fit), self.seen[fit]
        self.fit_truth, self.fit_lengths = data.valid[fit], self.lengths[fit]
        n = len(self.scorers)
        self.params = np.concatenate([np.ones(n), np.zeros(n)])   # bases, then slopes
        self.search_step = self.config.step
        self.fit_ndcg = self._fit_ndcg(self.params)
        cf_only = np.concatenate([np.ones(1), np.full(n - 1, TIE_BREAK), np.zeros(n)])
        alone = self._fit_ndcg(cf_only)
        if alone > self.fit_ndcg:          # content hurts at equal weights: start from CF alone
            self.params, self.fit_ndcg = cf_only, alone

    def _fit_ndcg(self, params: np.ndarray) -> float:
        return float(self._ndcg_of(params, self.fit_signals, self.fit_seen, self.fit_truth,
                                   self.fit_lengths).mean())

    def _ndcg_of(self, params: np.ndarray, signals: np.ndarray, seen, truth,
                 lengths: np.ndarray) -> np.ndarray:
        """Per-user validation NDCG@20 of the fused score under `params`."""
        n = len(self.scorers)
        w = params[:n] + lengths[:, None] * params[n:]
        scores = mask_seen((signals * w[:, None, :]).sum(-1), seen)
        top = top_k(scores, VALIDATION_K)
        return ranking_metrics(top, truth, [VALIDATION_K])[("ndcg", VALIDATION_K)]

    def _epoch(self, epoch: int) -> float:
        """One round of coordinate ascent (the step halves after a round without a gain);
        returns 1 - NDCG@20 on the fitting users as the training loss."""
        improved = False
        for j in range(1, len(self.params)):                       # params[0] = a_cf = 1
            for delta in (self.search_step, -self.search_step):
                trial = self.params.copy()
                trial[j] += delta
                value = self._fit_ndcg(trial)
                if value > self.fit_ndcg + 1e-6:
                    self.params, self.fit_ndcg, improved = trial, value, True
                    break
        if not improved:
            self.search_step /= 2
        self._finalize()
        return 1.0 - self.fit_ndcg

    def _finalize(self) -> None:
        n = len(self.scorers)
        self.exported = {"base": self.params[:n].astype(np.float32),
                         "slope": self.params[n:].astype(np.float32),
                         "cf_only": np.zeros(1, dtype=np.float32)}

    def _guard_cf(self, data: InteractionData) -> None:
        """Leave out each modality that does not help, judged on the held-out half of the
        validation users (those that did not fit the weights): one at a time, a modality's
        weight goes to `TIE_BREAK` when their NDCG@20 is at least as good without it. With
        every modality left out the model is its CF part (`cf_fallback`): the standardised
        CF score ranks as the CF model, content only breaks its ties."""
        n = len(self.scorers)
        users = self.stop_users
        if len(users):
            args = (self._signals(users), self.seen[users], data.valid[users],
                    self.lengths[users])
            current = self._ndcg_of(self.params, *args).mean()
            for j in range(1, n):
                trial = self.params.copy()
                trial[j], trial[n + j] = TIE_BREAK, 0.0
                value = self._ndcg_of(trial, *args).mean()
                if value >= current:
                    self.params, current = trial, value
        left_out = all(self.params[j] == TIE_BREAK and self.params[n + j] == 0.0
                       for j in range(1, n))
        self.exported = {"base": self.params[:n].astype(np.float32),
                         "slope": self.params[n:].astype(np.float32),
                         "cf_only": np.full(1, float(left_out), dtype=np.float32)}

    def _weights(self, users: np.ndarray) -> np.ndarray:
        return self.exported["base"] + self.lengths[users, None] * self.exported["slope"]

    def _score(self, users: np.ndarray) -> np.ndarray:
        return (self._signals(users) * self._weights(users)[:, None, :]).sum(-1)

    def _score_history(self, items: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Fold-in, exact when the sub-scorers fold in exactly (EASE / item k-NN with k-NN or
        profile content scorers, the defaults): each sub-scorer scores the history, the
        standardised scores are combined with the weights of this history's length."""
        w = self.exported["base"] + np.log1p(len(items)) * self.exported["slope"]
        return (self._history_signals(items, weights) * w[None, :]).sum(-1)

    def modality_weights(self, user: int, items: np.ndarray) -> dict[str, np.ndarray]:
        """Share of each signal's positive contribution w_m z_m to the fused score."""
        if self.cf_fallback:
            return self._cf_weights(items)
        contrib = self._signals(np.array([user]))[:, items] * self._weights(np.array([user]))
        return share_of_scores({m: contrib[..., j] for j, m in enumerate(self.signal_names)},
                               np.arange(len(items)))

    def _state(self) -> dict[str, Any]:
        return {**{f"w.{k}": v for k, v in self.exported.items()}, **self._scorer_state()}

    def _load_state(self, state: dict[str, Any]) -> None:
        self._load_scorers(state)
        self.exported = {k[2:]: v for k, v in state.items() if k.startswith("w.")}
