"""Fusion recommenders: what a product looks like, what it says and what people did with it.

This module holds what the three share (`SubScorers`: the frozen CF and per-modality scorers
inside a fusion model, and the fall-back to the CF part); the models are in `fusion_neural`
(early and attention fusion, trained end to end) and `fusion_late` (late fusion).

Each fuses the CF signal with any subset of the dataset's vector modalities (setting
`modalities`, default every one it has: image, text, video, imported features...):

* `EarlyFusion` (feature level, `fusion_neural`): an item tower mixes each modality's vector
  and a learned item-ID embedding (learned modality weights, concatenation, projection); a
  user is an ID embedding plus the mean of their history's item vectors; BPR with sampled
  negatives.
* `LateFusion` (decision level, `fusion_late`): a CF model and one k-NN (or profile) scorer
  per modality score every item; their per-user standardised scores are combined with weights
  learned on the validation split (weights depend on the length of the user's history).
* `AttentionFusion` (model level, `fusion_neural`): per user-item attention over the ID and
  each modality's representation of the item, trained end to end; its attention weights
  explain each score.

Never worse than its own CF part: after training, a fusion model compares itself with its CF
scorer alone on validation users; when the CF part alone ranks at least as well (content that
carries no signal, e.g. random vectors), the model scores with the CF part alone
(`cf_fallback`, saved with the model), its content scores kept only as a tie-breaker
(`TIE_BREAK`): they order the items CF cannot tell apart, such as cold items, and nothing else.
Late fusion does this per modality, on the validation users that did not fit its weights: a
modality that does not help is left out, the others stay.

Items without training interactions ("cold") have no usable ID embedding: it is masked out at
scoring time, and randomly during training ("ID dropout"), so the content towers learn to
carry an item alone. `AttentionFusion` replaces it with a learned "unknown item" vector and
keeps the CF modality (and its prior) in the attention.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from recsys.core.progress import report
from recsys.data.interactions import InteractionData
from recsys.evaluation.metrics import mask_seen, ranking_metrics, top_k

from .base import Recommender
from .config import modality_signals
from .epochs import VALIDATION_K

TIE_BREAK = 1e-4
"""Weight of the standardised content scores next to the CF score (weight 1) in a model that
fell back to its CF part: far below any CF score difference that matters."""


def user_ndcg(model: Recommender, data: InteractionData, users: np.ndarray) -> np.ndarray:
    """Validation NDCG@20 of each of `users` (training items excluded from the ranking)."""
    scores = mask_seen(model.score(users).astype(np.float32, copy=True), data.train[users])
    return ranking_metrics(top_k(scores, VALIDATION_K), data.valid[users],
                           [VALIDATION_K])[("ndcg", VALIDATION_K)]


class SubScorers:
    """Frozen sub-models fitted on the training split, saved inside the fusion model's file.

    `_signals(users)` gives their per-user standardised scores (users x items x scorers), in
    the order of `signal_names`: "cf", then the content modalities.
    """

    scorers: dict[str, Any]
    exported: dict[str, Any]
    legacy_config = {"modalities": ("image", "text")}

    @property
    def requires(self) -> frozenset[str]:  # type: ignore[override]
        return modality_signals(self.config.modalities, cf=True)

    @property
    def content_modalities(self) -> tuple[str, ...]:
        return tuple(self.config.modalities)

    @property
    def signal_names(self) -> tuple[str, ...]:
        return ("cf", *self.content_modalities)

    @property
    def cf_fallback(self) -> bool:
        """True when validation found the CF part alone better: the model scores with it."""
        flag = getattr(self, "exported", {}).get("cf_only")
        return bool(flag is not None and np.asarray(flag).ravel()[:1].sum() > 0)

    def _fit_epochs(self, data, progress, on_epoch) -> None:
        super()._fit_epochs(data, progress, on_epoch)
        self._guard_cf(data)

    def _guard_cf(self, data: InteractionData) -> None:
        """Fall back to the CF part alone when it is at least as good as the fused model on
        the validation users (NDCG@20): content that does not help is left out."""
        users = getattr(self, "_val_users", np.array([], dtype=np.int64))
        self.exported["cf_only"] = np.zeros(1, dtype=np.float32)
        if not len(users):
            return
        if user_ndcg(self.scorers["cf"], data, users).mean() >= \
                user_ndcg(self, data, users).mean():
            self.exported["cf_only"] = np.ones(1, dtype=np.float32)

    def _cf_weights(self, items: np.ndarray) -> dict[str, np.ndarray]:
        """The modality weights of a model that fell back to its CF part: behaviour alone,
        except for cold items (no training interaction), which only content can place."""
        cold = self.seen.getnnz(axis=0)[np.asarray(items)] == 0
        content = self.content_modalities
        share = 1.0 / max(1, len(content))
        return {m: np.where(cold, 0.0 if m == "cf" else share, 1.0 if m == "cf" else 0.0)
                for m in self.signal_names}

    def _cf_history_scores(self, items: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Fold-in of a model that fell back: as `_cf_scores`, for a new history."""
        signals = self._history_signals(items, weights)
        return signals[..., 0] + TIE_BREAK * signals[..., 1:].sum(-1)

    def _cf_scores(self, users: np.ndarray) -> np.ndarray:
        """The scores of a model that fell back: standardised CF score, content as a
        tie-breaker (`TIE_BREAK`)."""
        signals = self._signals(users)
        return signals[..., 0] + TIE_BREAK * signals[..., 1:].sum(-1)

    def _scorers(self) -> dict[str, Any]:
        raise NotImplementedError

    def _fit_scorers(self, data: InteractionData) -> None:
        self.scorers = self._scorers()
        progress = getattr(self, "_progress", None)
        epochs = max(1, int(getattr(self.config, "epochs", 1)))
        for n, (modality, scorer) in enumerate(self.scorers.items()):
            # within the first epoch's share of the bar, so the bar never moves back
            report(progress, n / (len(self.scorers) + 1), epochs, f"fitting the {modality} "
                   f"scorer ({scorer.name}) on {data.n_items:,} items", stage="prepare")
            scorer.fit(data)
        self.lengths = np.log1p(self.seen.getnnz(axis=1)).astype(np.float32)

    def _signals(self, users: np.ndarray) -> np.ndarray:
        out = []
        for scorer in self.scorers.values():
            s = scorer.score(users)
            out.append((s - s.mean(1, keepdims=True)) / (s.std(1, keepdims=True) + 1e-6))
        return np.stack(out, -1)

    def _history_signals(self, items: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """Fold-in: the sub-scorers' standardised scores of a new history (items x scorers),
        each from the sub-scorer's own `score_history`."""
        out = []
        for scorer in self.scorers.values():
            s = scorer.score_history(items, weights)
            out.append((s - s.mean()) / (s.std() + 1e-6))
        return np.stack(out, -1)

    def _scorer_state(self) -> dict[str, Any]:
        return {f"{m}.{k}": v for m, scorer in self.scorers.items()
                for k, v in scorer._state().items()}

    def _load_scorers(self, state: dict[str, Any]) -> None:
        self.scorers = self._scorers()
        for m, scorer in self.scorers.items():
            scorer.seen = self.seen
            scorer._set_ids(self.user_ids, self.item_ids)
            prefix = f"{m}."
            scorer._load_state({k[len(prefix):]: v for k, v in state.items()
                                if k.startswith(prefix)})
        self.lengths = np.log1p(self.seen.getnnz(axis=1)).astype(np.float32)
