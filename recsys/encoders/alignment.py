"""One alignment run, without the store: training items in, an aligned open_clip model out.

`align` loads the pretrained towers, caches their frozen bottoms over the items' photos and
caption variants, and trains the tops for `cfg.epochs` (see `trainer.Trainer`); then, over
the same cache, `calibrate_types` aligns copies with some training types held out to choose
calibrated stacking's gamma (`calibration`), returned with the types aligned on. It records
nothing: `catalog_clip.train_catalog_clip` wraps it with the run registry and the checkpoint,
and the held-out-types evaluation calls it directly on a catalog with whole types removed.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd

from recsys.core.progress import ProgressCallback, report, scaled

from .calibration import (
    TypeCalibration,
    ValidationScores,
    choose_fusion,
    choose_gamma,
    draw_pseudo_unseen,
)
from .captions import ZERO_SHOT_TEMPLATES, class_prompts
from .clip_config import CatalogClipConfig
from .clip_encoder import normalise_pixels
from .conse import build_conse_head
from .hybrid import add_instance_block, build_catalog_model
from .tower_parts import image_top
from .towers import IMAGE_MEAN, IMAGE_STD, text_tokenizer
from .trainer import Trainer
from .augment import ViewPlan
from .instance import train_instance_block
from .features import TowerFeatures, TowerOutputs
from .training_data import autocast, build_pairs

EpochCallback = Callable[[int, float, float, dict], None]


@dataclass
class AlignmentResult:
    """The aligned model (eval mode, frozen) and what happened while training it."""

    model: Any
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    calibration: TypeCalibration | None = None
    # the frozen towers' pooled outputs over the items (None when tower layers trained), for
    # embedding the catalog without running the image tower over these photos again
    outputs: TowerOutputs | None = None


def align(items: pd.DataFrame, cfg: CatalogClipConfig, progress: ProgressCallback | None = None,
          on_epoch: EpochCallback | None = None, features=None) -> AlignmentResult:
    """Align the pretrained towers on `items` (rows with `image_path`, the text fields and a
    `split` column: 'train' rows train, 'val' rows are the validation numbers).

    `on_epoch(epoch, train_loss, val_loss, metrics)` is called after every epoch. `features`
    supplies the frozen towers' outputs (default `features.TowerFeatures`: run the towers).
    With `cfg.augment_views` > 0 the training and validation photos also get phone-style views
    (`augment`): seen by the heads during training and by the instance block's training.
    """
    import torch

    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    report(progress, 0, 1, "loading the pretrained towers", stage="load")
    model = build_catalog_model(cfg.tower, pretrained=True, instance=False)
    model.visual.to(memory_format=torch.channels_last)
    tokenize = text_tokenizer(cfg.tower.context_length)
    distill_head = None
    if cfg.distill_weight > 0:
        head = model.visual.head
        distill_head = head.conse if hasattr(head, "conse") else build_conse_head(model, tokenize)

    def pixels(arrays):
        return normalise_pixels(arrays, IMAGE_MEAN, IMAGE_STD)

    pairs = build_pairs(items)
    split = items["split"].to_numpy() if "split" in items else np.full(len(items), "train")
    train_idx = np.flatnonzero(split == "train")
    val_idx = np.flatnonzero(split == "val")
    if len(train_idx) < 2:
        train_idx = np.arange(len(split))

    features = features if features is not None else TowerFeatures()
    plan = ViewPlan(tuple(cfg.augment_families), cfg.augment_views, cfg.seed)
    # Share of the bar per phase, from measured costs on Myntra.
    img_share, txt_share = (0.45, 0.1)
    view_share = 0.0
    if plan.active:
        img_share, txt_share, view_share = 0.2, 0.05, 0.35
    t_cache = time.perf_counter()
    img_cache, img_flip = features.images(model, pairs.image_paths, cfg, pixels,
                                          scaled(progress, 0.0, img_share), cfg.flip_augment)
    t_img = time.perf_counter() - t_cache
    txt_cache = features.texts(model, tokenize, pairs.texts, cfg,
                               scaled(progress, img_share, img_share + txt_share))
    t_txt = time.perf_counter() - t_cache - t_img
    views, view_ok = None, None
    t_views = 0.0
    if plan.active:
        t_v = time.perf_counter()
        rows = np.concatenate([train_idx, val_idx])
        got = features.views(model, cfg, [pairs.image_paths[r] for r in rows],
                             [pairs.item_ids[r] for r in rows], plan, pixels,
                             scaled(progress, img_share + txt_share,
                                    img_share + txt_share + view_share), pairs.image_paths)
        views = torch.zeros((len(pairs.item_ids), plan.views, got.features.shape[-1]),
                            dtype=torch.bfloat16)
        views[torch.from_numpy(rows)] = got.features
        view_ok = np.zeros((len(pairs.item_ids), plan.views), dtype=bool)
        view_ok[rows] = plan.allowed(got.families, cfg.augment_exclude)
        t_views = time.perf_counter() - t_v
    img_share += txt_share + view_share
    txt_share = 0.0

    # the untrained model, kept for the calibration alignments (same start as the main one)
    initial = copy.deepcopy(model) if cfg.calibration_types > 0 else None
    calib_share = 0.0
    if initial is not None:
        calib_share = (1.0 - img_share - txt_share) * cfg.calibration_draws / (
            cfg.calibration_draws + 1)
    trainer, history = _train(model, pairs, train_idx, val_idx, img_cache, img_flip,
                              txt_cache, cfg, distill_head, scaled(progress, img_share + txt_share,
                                                   1.0 - calib_share), on_epoch,
                              views=views, view_ok=view_ok)
    calibration = calibrate_types(initial, pairs, train_idx, val_idx, img_cache, img_flip,
                                  txt_cache, cfg, tokenize, scaled(progress, 1.0 - calib_share, 1.0),
                                  views=views, view_ok=view_ok)

    instance_info: dict[str, Any] = {}
    if cfg.tower.instance_dim > 0:     # PCA of the training photos' pooled features
        add_instance_block(model, cfg.tower, img_cache[torch.from_numpy(train_idx)].float())
        if views is not None:
            instance_info = train_instance_block(
                model.visual.head, img_cache, views, view_ok, train_idx, pairs.categories, cfg,
                val_rows=val_idx, progress=progress)
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()
    last = history[-1] if history else {}
    metrics = {k: v for k, v in last.items() if k.startswith("val_")}
    metrics.update({"train_loss": last.get("train_loss"), "val_loss": last.get("val_loss"),
                    "epochs": len(history), "steps": trainer.step,
                    "seconds": time.perf_counter() - t0,
                    "seconds_cache_images": t_img, "seconds_cache_texts": t_txt,
                    "seconds_cache_views": t_views,
                    "augmented_views": int(view_ok.sum()) if view_ok is not None else 0,
                    "trainable_parameters": trainer.n_trainable,
                    "calibration_gamma": calibration.gamma})
    if instance_info.get("final"):
        metrics.update({f"instance_{k}": v for k, v in instance_info["final"].items()
                        if k != "epoch"})
        metrics["seconds_instance"] = instance_info.get("seconds")
    return AlignmentResult(model, history, metrics, calibration,
                           _outputs(pairs, img_cache, txt_cache, cfg))


def _outputs(pairs, img_cache, txt_cache, cfg: CatalogClipConfig) -> TowerOutputs | None:
    """What the catalog's embedding can reuse: the pooled photo features (and the pooled
    features of each item's full caption) when the towers stayed frozen below their heads."""
    if cfg.image_trainable > 0 or img_cache is None or img_cache.ndim != 2:
        return None
    captions, texts = None, None
    if cfg.text_trainable <= 0 and getattr(txt_cache, "ndim", 0) == 2:
        captions = [pairs.texts[t] for t in pairs.caption_ids]
        import torch
        texts = txt_cache[torch.from_numpy(np.asarray(pairs.caption_ids))]
    return TowerOutputs(list(pairs.item_ids), list(pairs.image_paths), img_cache, captions,
                        texts)


def _train(model, pairs, train_idx, val_idx, img_cache, img_flip, txt_cache,
           cfg: CatalogClipConfig, distill_head, progress: ProgressCallback | None,
           on_epoch: EpochCallback | None = None, label: str = "", views=None, view_ok=None):
    """`cfg.epochs` epochs of the trained tops over the caches; the trainer and the history."""
    import time as _time

    trainer = Trainer(model, pairs, train_idx, val_idx, img_cache, img_flip, txt_cache, cfg,
                      distill_head, views=views, view_ok=view_ok)
    history: list[dict[str, Any]] = []
    per_epoch = 1.0 / cfg.epochs
    for epoch in range(1, cfg.epochs + 1):
        te = _time.perf_counter()
        bar = scaled(progress, (epoch - 1) * per_epoch, epoch * per_epoch)
        train_loss = trainer.train_epoch(epoch, bar)
        val_loss, val_metrics = trainer.validate()
        seconds = _time.perf_counter() - te
        metrics = {**val_metrics,
                   "temperature": float(1 / trainer.model.logit_scale.detach().exp())}
        if on_epoch is not None:
            on_epoch(epoch, train_loss, val_loss, {**metrics, "seconds": seconds})
        history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                        **metrics, "seconds": seconds})
        report(bar, 1, 1, f"{label}epoch {epoch}/{cfg.epochs}", stage="epoch", loss=train_loss,
               val_loss=val_loss, **{k: round(v, 4) for k, v in val_metrics.items()})
        if trainer.step >= trainer.total_steps:
            break
    return trainer, history


def calibrate_types(initial, pairs, train_idx: np.ndarray, val_idx: np.ndarray, img_cache,
                    img_flip, txt_cache, cfg: CatalogClipConfig, tokenize,
                    progress: ProgressCallback | None = None, views=None,
                    view_ok=None) -> TypeCalibration:
    """Calibrated stacking's gamma, chosen on validation only (see `calibration`): for each of
    `cfg.calibration_draws` draws of `cfg.calibration_types` pseudo-unseen types among the
    training types, align a copy of `initial` (the untrained model) without them and score
    the photos never trained on (the pseudo-unseen types' items and the other types' 'val'
    items) against all the training types' prompts."""
    import torch
    import torch.nn.functional as F

    categories = np.asarray(pairs.categories, dtype=object)
    seen_types = sorted({c for c in categories[train_idx] if c})
    scale = (float(np.sqrt(1.0 - cfg.tower.instance_weight))
             if cfg.tower.instance_dim > 0 else 1.0)
    calib = TypeCalibration(seen_types=seen_types, score_scale=scale)
    if initial is None or cfg.calibration_types <= 0:
        calib.note = "calibration off (calibration_types=0)"
        return calib
    draws = draw_pseudo_unseen(list(categories[train_idx]), cfg.calibration_types,
                               cfg.calibration_draws, cfg.seed, cfg.calibration_min_photos,
                               cfg.calibration_exclude)
    if not draws:
        calib.note = (f"not calibrated: fewer than 2 types with at least "
                      f"{cfg.calibration_min_photos} training items")
        return calib
    classes = seen_types
    prompts = [p for c in classes for p in class_prompts(c, ZERO_SHOT_TEMPLATES)]
    scores: list[ValidationScores] = []
    for d, unseen in enumerate(draws):
        model = copy.deepcopy(initial)
        head = model.visual.head
        distill = None
        if cfg.distill_weight > 0:
            distill = head.conse if hasattr(head, "conse") else build_conse_head(model, tokenize)
        is_unseen = np.isin(categories, unseen)
        sub_train = train_idx[~is_unseen[train_idx]]
        sub_val = val_idx[~is_unseen[val_idx]]
        _train(model, pairs, sub_train, sub_val, img_cache, img_flip, txt_cache, cfg, distill,
               scaled(progress, d / len(draws), (d + 1) / len(draws)),
               label=f"calibration {d + 1}/{len(draws)} (without {len(unseen)} types), ",
               views=views, view_ok=view_ok)
        rows = np.concatenate([np.flatnonzero(is_unseen), sub_val])
        rows = rows[np.isin(categories[rows], classes)]
        if len(rows) == 0:
            continue
        model.eval()
        with torch.inference_mode(), autocast(cfg):
            tv = model.encode_text(tokenize(prompts)).float()
            tv = F.normalize(tv, dim=-1).reshape(len(classes), len(ZERO_SHOT_TEMPLATES), -1)
            tv = F.normalize(tv.mean(1), dim=-1)
            feats = img_cache[torch.from_numpy(rows)].float()
            iv = F.normalize(image_top(model.visual, feats, cfg.image_trainable).float(), dim=-1)
            conse = None
            if hasattr(head, "conse") and cfg.image_trainable == 0:
                conse = (F.normalize(head.conse(feats).float(), dim=-1) @ tv.T).float().numpy()
        index = {c: i for i, c in enumerate(classes)}
        scores.append(ValidationScores(
            (iv @ tv.T).float().numpy(), np.array([index[c] for c in categories[rows]]),
            np.array([c not in unseen for c in classes]), is_unseen[rows], conse))
    if not scores:
        calib.note = "not calibrated: no validation photos"
        return calib
    gamma, table = choose_gamma(scores)
    best = next(row for row in table if row["gamma"] == gamma)
    raw = table[0]
    calib.gamma_cosine = gamma
    calib.gamma = gamma * scale
    calib.validation = {"pseudo_unseen_types": draws, "criterion": "harmonic mean of seen and "
                        "pseudo-unseen accuracy (all types competing), mean over draws",
                        "chosen": best, "uncalibrated": raw,
                        "n_photos": [int(len(s.truth)) for s in scores]}
    if all(s.conse_scores is not None for s in scores):
        # measured, not applied: fusing with the ConSE block needs its vector at inference
        calib.validation["conse_fusion"] = choose_fusion(scores)
    return calib
