"""Catalog CLIP: pretrained towers aligned on a catalog's own photo-text pairs (the default).

`train_catalog_clip(store, dataset)` is the entry point: it picks the dataset's training items
(never the held-out 20%, see `splits.HoldoutRule`), runs one alignment (`alignment.align`),
saves the checkpoint atomically and registers it with its config (including the held-out rule,
so `eval-encoder` scores the same items) and its metrics, with one run row per epoch.

How alignment works:

1. The frozen bottoms run once over the training items: EfficientNet-Lite0 activations up to
   the first trained stage (optionally for the mirrored photo too) and MiniLM hidden states up
   to the first trained layer for every distinct caption (`training_data`). That is most of the
   compute, done once instead of once per epoch.
2. Each epoch runs only the trained tops over the cache (`trainer`). Every item is paired with
   one of its caption variants (full caption, title, colour+category phrase, category prompts),
   and the loss counts every batch entry that the text truly describes as a positive
   (UniCL-style, `loss`), so two T-shirts sharing "a photo of Tshirts" are not pushed apart.
   With the default heads (`hybrid`: locked MiniLM text, ConSE + MLP photo head) the loss also
   keeps the photo vectors close to the frozen ImageNet classifier (`loss.distillation_loss`).
3. Batch-norm statistics stay frozen, so the cached path computes exactly what the full model
   computes on a photo (`tower_parts`); the trained layers are the model's own modules, so
   after training (and fitting the instance block's PCA) the open_clip model is simply saved
   (`checkpoints`).

The names other modules imported from here before the split are re-exported below.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from recsys.core import config as recsys_config
from recsys.core.errors import RecsysError
from recsys.core.progress import ProgressCallback, report

from .alignment import AlignmentResult, align
from .checkpoints import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_FORMAT_VERSION,
    FROZEN_NAME,
    FROZEN_VERSION,
    NAME,
    catalog_clip_checkpoints,
    frozen_encoder,
    load_catalog_clip,
    load_checkpoint,
    new_version,
    resolve_checkpoint,
    save_checkpoint,
    wrap_model,
)
from .clip_config import (
    AUGMENT_MIN_PHOTOS,
    CatalogClipConfig,
    check_config,
    default_tower,
    views_for,
)
from .clip_encoder import torch_threads
from .loss import contrastive_loss
from .tower_parts import (
    N_IMAGE_STAGES,
    N_TEXT_LAYERS,
    image_bottom,
    image_top,
    image_top_modules,
    text_bottom,
    text_top,
    text_top_modules,
)
from .training_data import training_items

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_FORMAT_VERSION", "FROZEN_NAME", "FROZEN_VERSION",
           "NAME", "N_IMAGE_STAGES", "N_TEXT_LAYERS", "AlignmentResult", "CatalogClipConfig",
           "EncoderInfo", "TrainingError", "align", "catalog_clip_checkpoints", "check_config",
           "contrastive_loss", "default_tower", "frozen_encoder", "image_bottom", "image_top",
           "image_top_modules", "load_catalog_clip", "load_checkpoint", "new_version",
           "resolve_checkpoint", "save_checkpoint", "text_bottom", "text_top",
           "text_top_modules", "train_catalog_clip", "training_items", "wrap_model"]


class TrainingError(RecsysError):
    """The catalog cannot be used to align an encoder (too few items with photos...)."""


@dataclass
class EncoderInfo:
    """A trained (or registered) encoder: what `train_catalog_clip` returns."""

    name: str
    version: str
    dataset: str | None
    path: str | None
    config: dict[str, Any]
    metrics: dict[str, Any]
    run_id: int | None = None
    seconds: float | None = None
    # in memory only, right after an alignment: the aligned model as an encoder and the frozen
    # towers' outputs over the training photos (`features.TowerOutputs`), so the catalog's
    # embedding neither reloads the checkpoint nor encodes those photos again
    reuse: Any = field(default=None, repr=False, compare=False)

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(replace(self, reuse=None))
        data.pop("reuse")
        return {**data, "spec": self.spec}


@dataclass
class AlignedReuse:
    """What a fresh alignment hands to the embedding of the same catalog."""

    encoder: Any                     # the aligned model as a `ClipEncoder` (same weights as saved)
    outputs: Any                     # `features.TowerOutputs` or None


def train_catalog_clip(store, dataset: str | None = None,
                       config: CatalogClipConfig | dict | None = None,
                       progress: ProgressCallback | None = None,
                       features=None, keep: bool = False) -> EncoderInfo:
    """Align the pretrained towers on a catalog's photos and texts; save, register, return it.

    Records a run (kind "encoder") with one row per epoch. On any exception or Ctrl-C the run
    is marked failed/interrupted and no checkpoint is written or registered (the previous one
    stays the dataset's current encoder). `features`: where the frozen towers' outputs come
    from (default: computed, see `alignment.align`). `keep`: the returned info's `reuse`
    holds the aligned model and the towers' outputs (`AlignedReuse`) for embedding the
    catalog at once; without it nothing heavy is kept.
    """
    cfg = config if isinstance(config, CatalogClipConfig) else CatalogClipConfig.from_dict(config)
    check_config(cfg)
    dataset = store.resolve_dataset(dataset)
    t0 = time.perf_counter()
    items = training_items(store, dataset, cfg.holdout)
    train_items = items[items["split"] != "heldout"].reset_index(drop=True)
    if cfg.max_items is not None:
        train_items = train_items.head(cfg.max_items)
    views_rule = None
    if not isinstance(config, CatalogClipConfig):     # settings, not a whole config object
        n_photos = int((train_items["split"] == "train").sum())
        views = views_for(n_photos, config)
        if views is not None and views != cfg.augment_views:
            cfg = replace(cfg, augment_views=views)
            views_rule = (f"no phone-style views: {n_photos:,} training photos, fewer than "
                          f"{AUGMENT_MIN_PHOTOS:,} (set augment_views to make them)")
    if len(train_items) < 8:
        raise TrainingError(f"Dataset '{dataset}' has {len(train_items)} items with a photo and "
                            "a title outside the held-out 20%; aligning an encoder needs at least "
                            "8. Import a larger catalog.")
    version = new_version(dataset)
    run_config = {**cfg.to_dict(), "version": version, "n_items": int(len(items)),
                  "n_train": int((train_items["split"] == "train").sum()),
                  "n_val": int((train_items["split"] == "val").sum()),
                  "n_heldout": int((items["split"] == "heldout").sum())}
    if views_rule:
        run_config["views_rule"] = views_rule
    run_id = store.start_run(dataset, "encoder", NAME, run_config)
    if features is None:        # the photos' tower features go to disk as they are computed
        features = sharded_features(store, dataset, train_items, cfg)
    try:
        with torch_threads():
            result = align(train_items, cfg, progress,
                           on_epoch=lambda epoch, loss, val_loss, metrics: store.add_epoch(
                               run_id, epoch, loss, val_loss,
                               {k: v for k, v in metrics.items() if k != "seconds"},
                               metrics["seconds"]), features=features)
            info = _save_and_register(store, dataset, cfg, result, version, run_id, run_config,
                                      t0, keep)
    except Exception as exc:
        store.finish_run(run_id, "failed", time.perf_counter() - t0,
                         message=f"{type(exc).__name__}: {exc}"[:500])
        raise
    except BaseException:
        # Ctrl-C, or Streamlit stopping the script when the user leaves the page
        store.finish_run(run_id, "interrupted", time.perf_counter() - t0,
                         message="interrupted; the previous encoder checkpoint is unchanged")
        raise
    report(progress, 1, 1, f"saved {info.spec}", stage="done")
    return info


def sharded_features(store, dataset: str, items, cfg: CatalogClipConfig):
    """`feature_shards.ShardedTowerFeatures` over the dataset's shard folder for `items`' photos
    (their path and content hash), so a stopped alignment resumes from what it computed and the
    embedding after it finds every training photo's features (see `feature_shards`)."""
    from .clip_encoder import resolve_precision
    from .feature_shards import (
        PhotoFeatureShards,
        ShardedTowerFeatures,
        photo_key,
        shard_folder,
        tower_key,
    )

    folder = shard_folder(store.path, dataset,
                          tower_key(cfg.tower.image_size, resolve_precision(cfg.precision)))
    hashes = items["content_hash"] if "content_hash" in items else [None] * len(items)
    keys = {str(p): photo_key(str(p), h if isinstance(h, str) else None)
            for p, h in zip(items["image_path"], hashes)}
    return ShardedTowerFeatures(PhotoFeatureShards(folder), keys)


def _save_and_register(store, dataset: str, cfg: CatalogClipConfig, result: AlignmentResult,
                       version: str, run_id: int, run_config: dict, t0: float,
                       keep: bool = False) -> EncoderInfo:
    folder = recsys_config.artifacts_dir(store.path, "encoders", NAME)
    calib = result.calibration.to_dict() if result.calibration is not None else None
    path = save_checkpoint(result.model, folder / f"{version}.safetensors", version=version,
                           dataset=dataset, tower=cfg.tower, config=cfg.to_dict(),
                           calibration=calib)
    seconds = time.perf_counter() - t0
    metrics = {**result.metrics, "seconds": seconds}
    enc_config = {**run_config, "run_id": run_id, "calibration": calib}
    store.register_encoder(NAME, version, NAME, dataset, str(path), enc_config, metrics)
    store.finish_run(run_id, "finished", seconds, artifact_path=str(path),
                     message=f"{NAME}@{version}")
    info = EncoderInfo(NAME, version, dataset, str(path), enc_config, metrics, run_id, seconds)
    if keep:
        meta = {"dataset": dataset, "path": str(path), "image_trainable": cfg.image_trainable}
        if calib:
            meta["calibration"] = calib
        encoder = wrap_model(result.model, cfg.tower, NAME, version, NAME, None, meta)
        info.reuse = AlignedReuse(encoder, result.outputs)
    return info
