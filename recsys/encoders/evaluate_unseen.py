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
                      min_photos: int = MIN_PHOTOS, attempt: int = 0) -> list[str]:
    """`k` of the eligible types, drawn reproducibly with `seed` (sorted by name); `attempt`
    > 0 draws again (a draw replaced because its names leak, see `draw_clean_unseen_types`)."""
    types = eligible_types(labels, min_photos)
    if len(types) < 2:
        raise EvaluationError(f"Held-out types need a catalog with at least 2 article types of "
                              f"{min_photos} photos or more; this one has {len(types)}.")
    if k < 1 or k >= len(types):
        raise EvaluationError(f"--unseen-types must be between 1 and {len(types) - 1}: the "
                              f"catalog has {len(types)} types with at least {min_photos} photos.")
    rng = np.random.default_rng(seed if attempt == 0 else [seed, attempt])
    return sorted(rng.choice(types, size=k, replace=False).tolist())


# -- names that leak through other types' texts -----------------------------------------------
LEAK_MIN_ITEMS = 5          # a name leaks when at least this many training items carry it
LEAK_MIN_SHARE = 0.05       # ... and at least this share of the held-out type's own count
MAX_DRAWS = 100


def _singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("es") and len(word) > 3 and word[-3] in "sxz":
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def name_tokens(text: str) -> tuple[str, ...]:
    """Lower-case word tokens, singular ("Flats" and "flat" match; "T-Shirts" is t, shirt)."""
    import re

    return tuple(_singular(t) for t in re.findall(r"[a-z0-9]+", str(text).lower()))


def _contains(tokens: tuple[str, ...], name: tuple[str, ...]) -> bool:
    n = len(name)
    return n > 0 and any(tokens[i:i + n] == name for i in range(len(tokens) - n + 1))


def name_leaks(texts: Sequence[str], labels: Sequence[str], unseen: Sequence[str],
               min_items: int = LEAK_MIN_ITEMS, min_share: float = LEAK_MIN_SHARE,
               type_counts: dict[str, int] | None = None) -> dict[str, dict[str, int]]:
    """Held-out type names that the alignment would read anyway: for each type of `unseen`,
    the training items (label not in `unseen`) whose text (`texts`: their full captions)
    contains the type's name as words (singular or plural), counted per item type; a type
    leaks when there are at least `min_items` such items and at least `min_share` of the
    type's own item count (`type_counts`, default: its count in `labels`). {} = a clean draw.
    E.g. Heels titled "... Flats" teach "Flats" when Flats is held out (98 items for 125
    Flats); "Pepe Jeans" sunglasses teach "Jeans" (24 for 174); a few Watches named "Puma ...
    Top ..." do not make "Tops" (366 items) leak."""
    labels = np.asarray([str(x) for x in labels], dtype=object)
    held = set(unseen)
    counts = dict(type_counts or pd.Series(labels).value_counts().to_dict())
    tokens = [name_tokens(t) for t in texts]
    out: dict[str, dict[str, int]] = {}
    for name in unseen:
        want = name_tokens(name)
        hits: dict[str, int] = {}
        for tok, lab in zip(tokens, labels):
            if lab not in held and _contains(tok, want):
                hits[lab] = hits.get(lab, 0) + 1
        total = sum(hits.values())
        if total >= min_items and total >= min_share * counts.get(name, 0):
            out[name] = dict(sorted(hits.items(), key=lambda kv: -kv[1]))
    return out


def draw_clean_unseen_types(labels: Sequence[str], texts: Sequence[str], k: int, seed: int = 0,
                            min_photos: int = MIN_PHOTOS, min_items: int = LEAK_MIN_ITEMS,
                            train_mask: Sequence[bool] | None = None
                            ) -> tuple[list[str], list[dict[str, Any]]]:
    """The first draw of `k` types (attempts 0, 1, ... of `draw_unseen_types` with `seed`)
    whose names do not leak through the texts of the items left to align on (`name_leaks`
    over the rows of `train_mask`, default all); also the draws it replaced, each with its
    leaks. Raises EvaluationError when no clean draw exists in `MAX_DRAWS` attempts."""
    labels = [str(x) for x in labels]
    mask = np.ones(len(labels), bool) if train_mask is None else np.asarray(train_mask, bool)
    counts = pd.Series(labels).value_counts().to_dict()
    lab_t = [lab for lab, m in zip(labels, mask) if m]
    txt_t = [t for t, m in zip(texts, mask) if m]
    replaced: list[dict[str, Any]] = []
    for attempt in range(MAX_DRAWS):
        unseen = draw_unseen_types(labels, k, seed, min_photos, attempt)
        leaks = name_leaks(txt_t, lab_t, unseen, min_items, type_counts=counts)
        if not leaks:
            return unseen, replaced
        replaced.append({"attempt": attempt, "unseen_types": unseen, "leaks": leaks})
    raise EvaluationError(f"No draw of {k} article types without names leaking through other "
                          f"types' texts in {MAX_DRAWS} attempts; hold out fewer types.")


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
    # draws of the same seed replaced because held-out names leak through the texts of the
    # types left to align on (`name_leaks`): [{"attempt", "unseen_types", "leaks"}]
    replaced_draws: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pool_images(encoder: Encoder, paths: list[str], progress: ProgressCallback | None,
                 features=None) -> np.ndarray:
    """Photo vectors of the pool: encoded, or (with `features`, a cache of the frozen image
    tower's pooled outputs) the encoder's photo head over the cached features, which is what
    encoding computes (tested)."""
    model = getattr(encoder, "model", None)
    if features is None or model is None:
        return encoder.encode_images(paths, progress=progress)
    import torch
    import torch.nn.functional as F

    from .clip_config import CatalogClipConfig
    from .clip_encoder import normalise_pixels
    from .towers import IMAGE_MEAN, IMAGE_STD
    feats, _ = features.images(model, paths, CatalogClipConfig(),
                               lambda a: normalise_pixels(a, IMAGE_MEAN, IMAGE_STD), progress,
                               False)
    with torch.inference_mode():
        return F.normalize(model.visual.head(feats.float()).float(), dim=-1).numpy()


def _pool_metrics(encoder: Encoder, pool: pd.DataFrame, labels: list[str], unseen: list[str],
                  all_types: list[str], templates: Sequence[str],
                  progress: ProgressCallback | None, features=None) -> dict[str, float]:
    images = _pool_images(encoder, list(pool["image_path"]), scaled(progress, 0, 0.9), features)
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
                          record: bool = True, features=None) -> UnseenTypesEvaluation:
    """Hold out `k` whole types (drawn with `seed`), align on the rest with `config` (default:
    the catalog-clip defaults), score both, record an evaluation run (see the module doc).
    `features`: where the frozen towers' outputs come from (default: computed)."""
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
    from .captions import item_caption
    captions = [item_caption(r) for r in items.to_dict("records")]
    unseen, replaced = draw_clean_unseen_types(labels, captions, k, seed, min_photos,
                                               train_mask=(items["split"] != "heldout"))
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
        result = align(train, cfg, scaled(progress, 0.0, share - 0.15), features=features)
    calibration = result.calibration.to_dict() if result.calibration is not None else {}
    enc = wrap_model(result.model, cfg.tower, "catalog-clip", f"unseen-{k}-{seed}",
                     "catalog-clip", None, {"unseen_types": unseen, "calibration": calibration})
    pool_labels = list(pool["label"])
    metrics = _pool_metrics(enc, pool, pool_labels, unseen, all_types, templates,
                            scaled(progress, share - 0.15, share), features)
    base_name, base_metrics = None, {}
    if baseline is not None:
        base = baseline if isinstance(baseline, Encoder) else get_encoder(baseline, store,
                                                                           dataset)
        base_name = base.spec
        base_metrics = _pool_metrics(base, pool, pool_labels, unseen, all_types, templates,
                                     scaled(progress, share, 1.0), features)
    ev = UnseenTypesEvaluation(dataset, k, seed, unseen, field_name, len(train), metrics,
                               base_name, base_metrics, cfg.to_dict(), time.perf_counter() - t0,
                               calibration=calibration, replaced_draws=replaced)
    if record:
        ev.run_id = _record(store, ev)
    report(progress, 1, 1, "done", stage="done")
    return ev


def _record(store, ev: UnseenTypesEvaluation) -> int:
    run_id = store.start_run(ev.dataset, "evaluation", "catalog-clip",
                             {"protocol": PROTOCOL, "k": ev.k, "seed": ev.seed,
                              "unseen_types": ev.unseen_types, "baseline": ev.baseline,
                              "replaced_draws": ev.replaced_draws,
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
