"""Catalog-clip checkpoints: naming, saving (atomically), finding and loading them, and the
unaligned `frozen` baseline built from the same towers."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ..artifacts import atomic_path
from .base import EncoderError, NoCheckpointError
from .clip_encoder import ClipEncoder
from .hybrid import build_catalog_model, output_dim
from .towers import IMAGE_MEAN, IMAGE_STD, TowerConfig, build_clip_model, text_tokenizer

NAME = "catalog-clip"
FROZEN_NAME = "frozen"
FROZEN_VERSION = "lite0-minilm-v1"
CHECKPOINT_FORMAT = "recsys-catalog-clip"
CHECKPOINT_FORMAT_VERSION = 1


def frozen_encoder(version: str | None = None, precision: str | None = None) -> ClipEncoder:
    """The pretrained towers without alignment: seeded random orthogonal projections to the
    shared dimension. Within-modality neighbours are meaningful; cross-modal scores are at
    chance by construction. This is the baseline `eval-encoder` reports."""
    import torch

    if version not in (None, FROZEN_VERSION):
        raise EncoderError(f"Unknown frozen encoder version {version!r}; the only one is "
                           f"{FROZEN_VERSION}.")
    cfg = TowerConfig()
    model = build_clip_model(cfg, pretrained=True)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for lin in (model.visual.head.proj, model.text.proj):
            w = torch.empty_like(lin.weight)
            q, _ = torch.linalg.qr(torch.randn(max(w.shape), min(w.shape), generator=gen))
            lin.weight.copy_(q.T if w.shape[0] < w.shape[1] else q)
    return wrap_model(model, cfg, FROZEN_NAME, FROZEN_VERSION, "frozen", precision,
                 {"description": "EfficientNet-Lite0 (ImageNet) + all-MiniLM-L6-v2, no alignment"})


def wrap_model(model, cfg: TowerConfig, name: str, version: str, kind: str,
               precision: str | None, meta: dict[str, Any]) -> ClipEncoder:
    """A catalog-clip-shaped open_clip model as an `Encoder`."""
    return ClipEncoder(model, text_tokenizer(cfg.context_length), name=name, version=version,
                       dim=output_dim(cfg), kind=kind, image_size=cfg.image_size,
                       mean=IMAGE_MEAN, std=IMAGE_STD, precision=precision, meta=meta)


def catalog_clip_checkpoints(store, dataset: str | None = None) -> pd.DataFrame:
    """Registered catalog-clip checkpoints (newest first), with `exists` for the file."""
    frame = store.encoders(dataset)
    frame = frame[frame["name"] == NAME].copy()
    frame["exists"] = [bool(p) and Path(p).is_file() for p in frame["path"]]
    return frame.reset_index(drop=True)


def resolve_checkpoint(store, dataset: str | None, version: str | None) -> dict[str, Any]:
    """The registry row of `catalog-clip@version`, or of the dataset's newest checkpoint."""
    if store is None:
        raise EncoderError("catalog-clip needs the database to find its checkpoint; pass the "
                           "store (or use --encoder frozen / openclip:...).")
    if version is None:
        dataset = store.resolve_dataset(dataset)
        rows = catalog_clip_checkpoints(store, dataset)
        rows = rows[rows["exists"]]
        if rows.empty:
            raise NoCheckpointError(
                f"No aligned catalog-clip encoder exists for dataset '{dataset}' yet. Train one "
                f"with `python -m recsys train-encoder --dataset {dataset}` (a few minutes on a "
                "CPU), or embed with the unaligned baseline: --encoder frozen.")
        return rows.iloc[0].to_dict()
    rows = catalog_clip_checkpoints(store)
    rows = rows[rows["version"] == version]
    if rows.empty:
        known = ", ".join(catalog_clip_checkpoints(store)["version"].head(8)) or "none"
        raise EncoderError(f"Unknown encoder catalog-clip@{version}. Known versions: {known}.")
    row = rows.iloc[0].to_dict()
    if not row["exists"]:
        raise EncoderError(f"The checkpoint of catalog-clip@{version} ({row['path']}) is missing; "
                           "retrain with `python -m recsys train-encoder`.")
    return row


def load_catalog_clip(store, dataset: str | None = None, version: str | None = None,
                      precision: str | None = None) -> ClipEncoder:
    """The aligned encoder `catalog-clip@version` (default: the dataset's newest)."""
    row = resolve_checkpoint(store, dataset, version)
    return load_checkpoint(row["path"], precision=precision)


def load_checkpoint(path: str | Path, precision: str | None = None) -> ClipEncoder:
    """Rebuild a ClipEncoder from a catalog-clip checkpoint file."""
    import torch

    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError) as exc:
        raise EncoderError(f"Cannot read the encoder checkpoint {path}: {exc}. Retrain with "
                           "`python -m recsys train-encoder`.") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise EncoderError(f"{path} is not a catalog-clip checkpoint.")
    cfg = TowerConfig.from_dict(ckpt["tower"])
    model = build_catalog_model(cfg, pretrained=False)
    model.load_state_dict(ckpt["state_dict"])
    meta = {"dataset": ckpt.get("dataset"), "path": str(path)}
    if ckpt.get("calibration"):
        # the types it was aligned on and calibrated stacking's gamma (`calibration`); older
        # checkpoints have none: their photos are named without calibration
        meta["calibration"] = ckpt["calibration"]
    return wrap_model(model, cfg, ckpt["name"], ckpt["version"], NAME, precision, meta)


def new_version(dataset: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", dataset).strip("-") or "dataset"
    return f"{slug}-{datetime.now():%Y%m%d%H%M%S}"



def save_checkpoint(model, path: Path, *, version: str, dataset: str, tower: TowerConfig,
                    config: dict[str, Any], calibration: dict[str, Any] | None = None) -> Path:
    """Write a catalog-clip checkpoint atomically (a crash leaves the previous file), with the
    types it was aligned on and its calibration (`calibration.TypeCalibration.to_dict()`)."""
    import torch

    ckpt = {"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_FORMAT_VERSION,
            "name": NAME, "version": version, "dataset": dataset, "tower": tower.to_dict(),
            "config": config, "state_dict": model.state_dict(),
            "calibration": calibration or {}}
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    return path
