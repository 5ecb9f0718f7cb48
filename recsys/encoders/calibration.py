"""Naming a photo's type among seen and unseen types: calibrated stacking (Chao et al. 2016).

An aligned encoder answers the types it was aligned on with higher scores than types it only
knows through its pretrained towers: asked "Jeans or Trousers?", a photo of jeans says
Trousers when only Trousers occurred in the training captions. Calibrated stacking subtracts a
constant `gamma` from the scores of the seen types (the types the encoder was aligned on)
before the argmax. It changes which type a photo is given, never the vectors (search and
recommendations are unaffected).

`gamma` is chosen on validation only (`alignment.calibrate_types` runs it at the end of every
alignment): inside the training types, some types are held out as pseudo-unseen, the encoder is
aligned without them, and the gamma that maximises the harmonic mean of the accuracy on the
seen-type validation photos and on the pseudo-unseen photos (all types competing) is kept, with
the list of seen types, in the checkpoint (`TypeCalibration`). When every type is seen, the
subtraction is the same for every type and changes nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

# Candidate gammas in cosine units (scores of the aligned block of unit vectors).
GAMMA_GRID: tuple[float, ...] = tuple(np.round(np.arange(0.0, 0.4001, 0.01), 4).tolist())
# Candidate weights of the ConSE block in the score fusion (`choose_fusion`).
FUSION_WEIGHTS: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


@dataclass
class TypeCalibration:
    """What an encoder knows about its own type bias (saved in the checkpoint).

    `seen_types`: the category names it was aligned on; `gamma`: subtracted from their scores,
    in the units of the encoder's photo-text dot product (`gamma_cosine` times `score_scale`,
    the constant by which the instance block scales photo-text scores). `gamma` 0 with a
    `note` = no calibration (too few types to hold some out, or switched off).
    """

    seen_types: list[str] = field(default_factory=list)
    gamma: float = 0.0
    gamma_cosine: float = 0.0
    score_scale: float = 1.0
    validation: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "TypeCalibration | None":
        if not data:
            return None
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    def seen_mask(self, class_names: Sequence[str]) -> np.ndarray:
        seen = {_norm(t) for t in self.seen_types}
        return np.array([_norm(c) in seen for c in class_names], dtype=bool)


def type_calibration(encoder) -> TypeCalibration | None:
    """The calibration an encoder carries (in its `meta`: catalog-clip checkpoints saved since
    calibrated stacking exists, and the held-out-types evaluation's alignments), else None:
    older checkpoints and other encoders name types without calibration."""
    meta = getattr(encoder, "meta", None) or {}
    return TypeCalibration.from_dict(meta.get("calibration"))


def _norm(name: str) -> str:
    return " ".join(str(name).split()).casefold()


def calibrated_scores(scores: np.ndarray, seen_mask: np.ndarray, gamma: float) -> np.ndarray:
    """`scores` [photos, classes] with `gamma` subtracted from the seen classes' columns."""
    return np.asarray(scores, dtype=np.float64) - float(gamma) * np.asarray(seen_mask, float)[None]


def name_types(image_vectors: np.ndarray, class_names: Sequence[str], class_vecs: np.ndarray,
               calibration: TypeCalibration | None = None) -> np.ndarray:
    """The class name each photo gets (nearest prompt ensemble), calibrated when
    `calibration` is given: gamma off the scores of the types the encoder was aligned on."""
    scores = image_vectors @ class_vecs.T
    if calibration is not None and calibration.gamma:
        scores = calibrated_scores(scores, calibration.seen_mask(class_names), calibration.gamma)
    return np.asarray(class_names, dtype=object)[np.asarray(scores).argmax(1)]


def harmonic_mean(a: float, b: float) -> float:
    return 0.0 if a + b <= 0 else 2 * a * b / (a + b)


@dataclass
class ValidationScores:
    """One validation draw: cosine scores [photos, classes] of photos never trained on,
    their true class index, which classes are seen, and which photos are of pseudo-unseen
    types."""

    scores: np.ndarray
    truth: np.ndarray
    seen_classes: np.ndarray
    unseen_items: np.ndarray
    conse_scores: np.ndarray | None = None     # the photos' ConSE block against the classes

    def accuracies(self, gamma: float, conse_weight: float = 0.0) -> tuple[float, float]:
        scores = self.scores
        if conse_weight and self.conse_scores is not None:
            scores = (1 - conse_weight) * scores + conse_weight * self.conse_scores
        pred = calibrated_scores(scores, self.seen_classes, gamma).argmax(1)
        hit = pred == self.truth
        seen = float(hit[~self.unseen_items].mean()) if (~self.unseen_items).any() else 0.0
        unseen = float(hit[self.unseen_items].mean()) if self.unseen_items.any() else 0.0
        return seen, unseen


def choose_gamma(draws: Sequence[ValidationScores], grid: Sequence[float] = GAMMA_GRID,
                 conse_weight: float = 0.0) -> tuple[float, list[dict[str, float]]]:
    """The gamma of `grid` with the best mean harmonic mean of seen / pseudo-unseen accuracy
    over the validation draws (ties: the smallest gamma), and the table of every candidate."""
    if not draws:
        raise ValueError("choose_gamma needs at least one validation draw")
    table = []
    for g in grid:
        acc = [d.accuracies(g, conse_weight) for d in draws]
        table.append({"gamma": float(g), "conse_weight": float(conse_weight),
                      "seen_accuracy": float(np.mean([a[0] for a in acc])),
                      "unseen_accuracy": float(np.mean([a[1] for a in acc])),
                      "harmonic_mean": float(np.mean([harmonic_mean(*a) for a in acc]))})
    best = max(table, key=lambda row: (round(row["harmonic_mean"], 12), -row["gamma"]))
    return best["gamma"], table


def choose_fusion(draws: Sequence[ValidationScores],
                  weights: Sequence[float] = FUSION_WEIGHTS,
                  grid: Sequence[float] = GAMMA_GRID) -> dict[str, float]:
    """Score fusion with the ConSE block (no seen bias), measured alongside calibrated
    stacking: the (ConSE weight, gamma) pair with the best mean harmonic mean on the
    validation draws (needs `conse_scores`)."""
    best: dict[str, float] = {}
    for w in weights:
        gamma, table = choose_gamma(draws, grid, w)
        row = next(r for r in table if r["gamma"] == gamma)
        if not best or row["harmonic_mean"] > best["harmonic_mean"] + 1e-12:
            best = row
    return best


def draw_pseudo_unseen(labels: Sequence[str], k: int, draws: int, seed: int, min_photos: int,
                       exclude: Sequence[str] = ()) -> list[list[str]]:
    """`draws` sets of `k` types with at least `min_photos` items among `labels` (types the
    encoder is aligned on), drawn reproducibly; at most half the eligible types are held out
    (fewer than `k` when the catalog has fewer than 2k); [] when fewer than 2 are eligible.
    Types in `exclude` are never drawn (they stay seen)."""
    counts: dict[str, int] = {}
    for x in labels:
        if x:
            counts[x] = counts.get(x, 0) + 1
    skip = {_norm(t) for t in exclude}
    eligible = sorted(t for t, n in counts.items() if n >= min_photos and _norm(t) not in skip)
    k = min(k, len(eligible) // 2)
    if k < 1:
        return []
    rng = np.random.default_rng(seed)
    return [sorted(rng.choice(eligible, size=k, replace=False).tolist()) for _ in range(draws)]
