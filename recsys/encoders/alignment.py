"""One alignment run, without the store: training items in, an aligned open_clip model out.

`align` loads the pretrained towers, caches their frozen bottoms over the items' photos and
caption variants, and trains the tops for `cfg.epochs` (see `trainer.Trainer`). It records
nothing: `catalog_clip.train_catalog_clip` wraps it with the run registry and the checkpoint,
and the held-out-types evaluation calls it directly on a catalog with whole types removed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..progress import ProgressCallback, report, scaled
from .clip_config import CatalogClipConfig
from .clip_encoder import normalise_pixels
from .conse import build_conse_head
from .hybrid import add_instance_block, build_catalog_model
from .towers import IMAGE_MEAN, IMAGE_STD, text_tokenizer
from .trainer import Trainer
from .training_data import build_pairs, cache_images, cache_texts

EpochCallback = Callable[[int, float, float, dict], None]


@dataclass
class AlignmentResult:
    """The aligned model (eval mode, frozen) and what happened while training it."""

    model: Any
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)


def align(items: pd.DataFrame, cfg: CatalogClipConfig, progress: ProgressCallback | None = None,
          on_epoch: EpochCallback | None = None) -> AlignmentResult:
    """Align the pretrained towers on `items` (rows with `image_path`, the text fields and a
    `split` column: 'train' rows train, 'val' rows are the validation numbers).

    `on_epoch(epoch, train_loss, val_loss, metrics)` is called after every epoch.
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

    # Share of the bar per phase, from measured costs on Myntra.
    img_share, txt_share = (0.45, 0.1)
    t_cache = time.perf_counter()
    img_cache, img_flip = cache_images(model, pairs.image_paths, cfg, pixels,
                                       scaled(progress, 0.0, img_share), flip=cfg.flip_augment)
    t_img = time.perf_counter() - t_cache
    txt_cache = cache_texts(model, tokenize, pairs.texts, cfg,
                            scaled(progress, img_share, img_share + txt_share))
    t_txt = time.perf_counter() - t_cache - t_img

    trainer = Trainer(model, pairs, train_idx, val_idx, img_cache, img_flip, txt_cache, cfg,
                      distill_head)
    history: list[dict[str, Any]] = []
    start = img_share + txt_share
    per_epoch = (1.0 - start) / cfg.epochs
    for epoch in range(1, cfg.epochs + 1):
        te = time.perf_counter()
        bar = scaled(progress, start + (epoch - 1) * per_epoch, start + epoch * per_epoch)
        train_loss = trainer.train_epoch(epoch, bar)
        val_loss, val_metrics = trainer.validate()
        seconds = time.perf_counter() - te
        metrics = {**val_metrics,
                   "temperature": float(1 / trainer.model.logit_scale.detach().exp())}
        if on_epoch is not None:
            on_epoch(epoch, train_loss, val_loss, {**metrics, "seconds": seconds})
        history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                        **metrics, "seconds": seconds})
        report(bar, 1, 1, f"epoch {epoch}/{cfg.epochs}", stage="epoch", loss=train_loss,
               val_loss=val_loss, **{k: round(v, 4) for k, v in val_metrics.items()})
        if trainer.step >= trainer.total_steps:
            break

    if cfg.tower.instance_dim > 0:     # PCA of the training photos' pooled features
        add_instance_block(model, cfg.tower, img_cache[torch.from_numpy(train_idx)].float())
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()
    last = history[-1] if history else {}
    metrics = {k: v for k, v in last.items() if k.startswith("val_")}
    metrics.update({"train_loss": last.get("train_loss"), "val_loss": last.get("val_loss"),
                    "epochs": len(history), "steps": trainer.step,
                    "seconds": time.perf_counter() - t0,
                    "seconds_cache_images": t_img, "seconds_cache_texts": t_txt,
                    "trainable_parameters": trainer.n_trainable})
    return AlignmentResult(model, history, metrics)
