"""Held-out types: does the aligned encoder know article types it was never aligned on?

`eval-encoder` scores unseen *items*, but every category word of those items occurs in other
items' training captions. This protocol removes whole types instead:

1. draw `k` article types (among those with at least `min_photos` photos) with `seed`;
2. align catalog-clip on the catalog without them (and without the usual held-out 20%);
3. score on a pool of never-trained items: every item of the unseen types plus the held-out 20%
   of the seen types:
   - `unseen_wf1`: weighted F1 of the unseen items' photos classified among the `k` unseen type
     names (prompt ensemble) only;
   - `unseen_vs_all_wf1`: the same photos classified among all the catalog's types, seen ones
     included (the hard, realistic case: is a belt still a belt when "Shoe Accessories" is on
     offer?);
   - `seen_wf1`: the held-out seen items classified among all types (in-distribution);
   - `*_accuracy` and `harmonic_accuracy` (of seen and unseen accuracy against all types), and
     every against-all number again with calibrated stacking (`*_calibrated`, see
     `calibration`): gamma off the scores of the types the encoder was aligned on, gamma
     chosen by the alignment itself on pseudo-unseen types drawn among its training types
     (never the `k` held-out types, which it does not see);
   - `t2i_recall@10_seen` / `t2i_recall@10_unseen`: product name -> own photo among the pool.

The same numbers for a baseline encoder (default `conse`, untrained) come alongside. The
alignment is not registered: the dataset's current encoder does not change.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from recsys.core.progress import ProgressCallback, report, scaled

from .base import Encoder
from .calibration import TypeCalibration, harmonic_mean, name_types, type_calibration
from .captions import ZERO_SHOT_TEMPLATES
from .clip_config import CatalogClipConfig, check_config
from .evaluate import (
    EvaluationError,
    category_field,
    class_vectors,
    ranks_of_own,
    weighted_f1,
)
from .registry import get_encoder

PROTOCOL = "encoder-unseen-types"
MIN_PHOTOS = 20


def eligible_types(labels: Sequence[str], min_photos: int = MIN_PHOTOS) -> list[str]:
    """Types with at least `min_photos` items, sorted by name."""
    counts = pd.Series([x for x in labels if x]).value_counts()
    return sorted(str(t) for t, n in counts.items() if n >= min_photos)


def draw_unseen_types(labels: Sequence[str], k: int, seed: int = 0,
                      min_photos: int = MIN_PHOTOS) -> list[str]:
    """`k` of the eligible types, drawn reproducibly with `seed` (sorted by name)."""
    types = eligible_types(labels, min_photos)
    if len(types) < 2:
        raise EvaluationError(f"Held-out types need a catalog with at least 2 article types of "
                              f"{min_photos} photos or more; this one has {len(types)}.")
    if k < 1 or k >= len(types):
        raise EvaluationError(f"--unseen-types must be between 1 and {len(types) - 1}: the "
                              f"catalog has {len(types)} types with at least {min_photos} photos.")
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(types, size=k, replace=False).tolist())


def unseen_type_metrics(image_vectors: np.ndarray, title_vectors: np.ndarray,
                        labels: Sequence[str], unseen: Sequence[str], all_types: Sequence[str],
                        unseen_class_vecs: np.ndarray, all_class_vecs: np.ndarray,
                        calibration: TypeCalibration | None = None) -> dict[str, float]:
    """The protocol's numbers from vectors of the evaluation pool (rows aligned). Against all
    types, also the accuracies and their harmonic mean; with a `calibration` (the encoder's
    seen types and gamma, chosen on its own validation types) the same numbers calibrated
    ("*_calibrated")."""
    labels = np.asarray(labels, dtype=object)
    is_unseen = np.isin(labels, list(unseen))
    unseen_names = np.asarray(unseen, dtype=object)
    out: dict[str, float] = {"n_unseen_items": float(is_unseen.sum()),
                             "n_seen_items": float((~is_unseen).sum())}
    if is_unseen.any():
        iv = image_vectors[is_unseen]
        out["unseen_wf1"] = weighted_f1(labels[is_unseen],
                                        unseen_names[(iv @ unseen_class_vecs.T).argmax(1)])
    variants = [("", None)]
    if calibration is not None and calibration.gamma:
        variants.append(("_calibrated", calibration))
        out["calibration_gamma"] = float(calibration.gamma)
    for suffix, calib in variants:
        pred = name_types(image_vectors, all_types, all_class_vecs, calib)
        hit = pred == labels
        if is_unseen.any():
            out[f"unseen_vs_all_wf1{suffix}"] = weighted_f1(labels[is_unseen], pred[is_unseen])
            out[f"unseen_vs_all_accuracy{suffix}"] = float(hit[is_unseen].mean())
        if (~is_unseen).any():
            out[f"seen_wf1{suffix}"] = weighted_f1(labels[~is_unseen], pred[~is_unseen])
            out[f"seen_accuracy{suffix}"] = float(hit[~is_unseen].mean())
        if is_unseen.any() and (~is_unseen).any():
            out[f"harmonic_accuracy{suffix}"] = harmonic_mean(
                out[f"seen_accuracy{suffix}"], out[f"unseen_vs_all_accuracy{suffix}"])
    ranks = ranks_of_own(title_vectors, image_vectors)
    for name, mask in (("seen", ~is_unseen), ("unseen", is_unseen)):
        if mask.any():
            out[f"t2i_recall@10_{name}"] = float((ranks[mask] < 10).mean())
    return out


@dataclass
class UnseenTypesEvaluation:
    dataset: str
    k: int
    seed: int
    unseen_types: list[str]
    category_field: str
    n_train: int
    metrics: dict[str, float]
    baseline: str | None = None
    baseline_metrics: dict[str, float] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    run_id: int | None = None
    # the alignment's calibrated stacking (`calibration.TypeCalibration.to_dict()`): its seen
    # types, gamma and the pseudo-unseen validation types it was chosen on
    calibration: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pool_metrics(encoder: Encoder, pool: pd.DataFrame, labels: list[str], unseen: list[str],
                  all_types: list[str], templates: Sequence[str],
                  progress: ProgressCallback | None) -> dict[str, float]:
    images = encoder.encode_images(list(pool["image_path"]), progress=scaled(progress, 0, 0.9))
    titles = encoder.encode_texts([str(t) for t in pool["title"]])
    report(progress, 1, 1, "scoring", stage="score")
    return unseen_type_metrics(images, titles, labels, unseen, all_types,
                               class_vectors(encoder, unseen, templates),
                               class_vectors(encoder, all_types, templates),
                               type_calibration(encoder))


def evaluate_unseen_types(store, dataset: str | None = None, k: int = 10, seed: int = 0,
                          config: CatalogClipConfig | dict | None = None,
                          baseline: Encoder | str | None = "conse",
                          min_photos: int = MIN_PHOTOS,
                          templates: Sequence[str] = ZERO_SHOT_TEMPLATES,
                          progress: ProgressCallback | None = None,
                          record: bool = True) -> UnseenTypesEvaluation:
    """Hold out `k` whole types (drawn with `seed`), align on the rest with `config` (default:
    the catalog-clip defaults), score both, record an evaluation run (see the module doc)."""
    from .alignment import align
    from .checkpoints import wrap_model
    from .clip_encoder import torch_threads
    from .training_data import training_items

    t0 = time.perf_counter()
    cfg = config if isinstance(config, CatalogClipConfig) else CatalogClipConfig.from_dict(config)
    check_config(cfg)
    dataset = store.resolve_dataset(dataset)
    items = training_items(store, dataset, cfg.holdout)
    field_name = category_field(items)
    if field_name is None:
        raise EvaluationError(f"Dataset '{dataset}' has no category field with two or more "
                              "values; held-out types need one.")
    labels = [str(x).strip() if pd.notna(x) else "" for x in items[field_name]]
    items["label"] = labels
    unseen = draw_unseen_types(labels, k, seed, min_photos)
    all_types = sorted({x for x in labels if x})
    is_unseen = items["label"].isin(unseen)
    train = items[~is_unseen & (items["split"] != "heldout")].reset_index(drop=True)
    if cfg.max_items is not None:
        train = train.head(cfg.max_items)
    pool = items[is_unseen | (items["split"] == "heldout")].reset_index(drop=True)
    pool = pool[pool["label"] != ""].reset_index(drop=True)
    if len(train) < 8 or len(pool) < 2:
        raise EvaluationError(f"Too few items to hold out {k} types of '{dataset}' "
                              f"({len(train)} left to train on).")
    report(progress, 0, 1, f"aligning without {', '.join(unseen)}", stage="align")
    share = 0.7 if baseline is not None else 0.85
    with torch_threads():
        result = align(train, cfg, scaled(progress, 0.0, share - 0.15))
    calibration = result.calibration.to_dict() if result.calibration is not None else {}
    enc = wrap_model(result.model, cfg.tower, "catalog-clip", f"unseen-{k}-{seed}",
                     "catalog-clip", None, {"unseen_types": unseen, "calibration": calibration})
    pool_labels = list(pool["label"])
    metrics = _pool_metrics(enc, pool, pool_labels, unseen, all_types, templates,
                            scaled(progress, share - 0.15, share))
    base_name, base_metrics = None, {}
    if baseline is not None:
        base = baseline if isinstance(baseline, Encoder) else get_encoder(baseline, store,
                                                                           dataset)
        base_name = base.spec
        base_metrics = _pool_metrics(base, pool, pool_labels, unseen, all_types, templates,
                                     scaled(progress, share, 1.0))
    ev = UnseenTypesEvaluation(dataset, k, seed, unseen, field_name, len(train), metrics,
                               base_name, base_metrics, cfg.to_dict(), time.perf_counter() - t0,
                               calibration=calibration)
    if record:
        ev.run_id = _record(store, ev)
    report(progress, 1, 1, "done", stage="done")
    return ev


def _record(store, ev: UnseenTypesEvaluation) -> int:
    run_id = store.start_run(ev.dataset, "evaluation", "catalog-clip",
                             {"protocol": PROTOCOL, "k": ev.k, "seed": ev.seed,
                              "unseen_types": ev.unseen_types, "baseline": ev.baseline,
                              "config": ev.config,
                              "calibration": {k: v for k, v in ev.calibration.items()
                                              if k != "seen_types"}})
    rows = [(PROTOCOL, "all", key, None, value) for key, value in ev.metrics.items()]
    rows += [(PROTOCOL, f"baseline:{ev.baseline}", key, None, value)
             for key, value in ev.baseline_metrics.items()]
    store.add_metrics(run_id, rows)
    store.finish_run(run_id, "finished", ev.seconds,
                     message=f"{ev.k} unseen types (seed {ev.seed}): {', '.join(ev.unseen_types)}")
    return run_id
