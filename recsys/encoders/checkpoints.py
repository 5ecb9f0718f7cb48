"""Catalog-clip checkpoints: naming, saving (atomically), finding and loading them, and the
unaligned `frozen` baseline built from the same towers.

A checkpoint is one safetensors file (`<version>.safetensors`): the weights, and in its
metadata the JSON config (format, name, version, dataset, tower architecture, alignment
settings, calibration). Safetensors is data only: reading it runs no code, and its header is
checked against the file before any tensor is mapped. Checkpoints written before this format
(`.pt`, torch.save's pickle) are read only through torch's weights-only unpickler; one that
needs more than that is refused with a message asking to align again, never unpickled. Every
checkpoint is validated before it is used (`DamagedCheckpoint`): its config (known tower
values in their ranges), exactly the tensors the architecture has with their shapes, finite
weights.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from recsys.core.files import atomic_path
from recsys.core.model_files import (
    ModelFileError,
    read_json,
    read_safetensors,
    sniff_weights,
    tensors_finite,
    write_safetensors,
)

from .base import EncoderError, NoCheckpointError
from .clip_encoder import ClipEncoder
from .hybrid import build_catalog_model, output_dim
from .towers import (
    IMAGE_MEAN,
    IMAGE_STD,
    IMAGE_TRUNK,
    TowerConfig,
    build_clip_model,
    text_tokenizer,
)

NAME = "catalog-clip"
FROZEN_NAME = "frozen"
FROZEN_VERSION = "lite0-minilm-v1"
CHECKPOINT_FORMAT = "recsys-catalog-clip"
CHECKPOINT_FORMAT_VERSION = 2
"""1: torch.save pickle (.pt, read with weights_only=True only); 2: safetensors + JSON config."""
CHECKPOINT_SUFFIX = ".safetensors"
METADATA_KEY = "recsys"
REALIGN = ("Align the encoder again: `python -m recsys train-encoder` (or the align button of "
           "the Visual search page), then embed the catalog.")


class DamagedCheckpoint(EncoderError):
    """An encoder checkpoint that cannot be used as it is: damaged, not a checkpoint, or an
    old `.pt` file that cannot be read without running code."""


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
    encoder = load_checkpoint(row["path"], precision=precision)
    if encoder.version != row["version"]:
        raise DamagedCheckpoint(f"The encoder checkpoint {row['path']} is not the one registered "
                                f"as catalog-clip@{row['version']} (the file was replaced); it "
                                f"was not used. {REALIGN}")
    return encoder


def load_checkpoint(path: str | Path, precision: str | None = None) -> ClipEncoder:
    """Rebuild a ClipEncoder from a catalog-clip checkpoint file (safetensors, or an old `.pt`
    through torch's weights-only unpickler), validated first (`DamagedCheckpoint`)."""
    path = Path(path)
    try:
        kind = sniff_weights(path)
        if kind == "safetensors":
            tensors, metadata = read_safetensors(path)
            header = read_json(metadata.get(METADATA_KEY, ""), "its config")
        elif kind == "torch":
            header, tensors = _read_legacy(path)
        else:
            raise ModelFileError("it is not a catalog-clip checkpoint")
        cfg, header = _checked_header(header)
        model = build_catalog_model(cfg, pretrained=False)
        _check_tensors(model, tensors)
        model.load_state_dict(tensors, strict=True)
    except DamagedCheckpoint:
        raise
    except ModelFileError as exc:
        raise DamagedCheckpoint(f"The encoder checkpoint {path} is damaged ({exc.reason}); it "
                                f"was not loaded. {REALIGN}") from None
    except (RuntimeError, ValueError, TypeError, KeyError) as exc:
        raise DamagedCheckpoint(f"The encoder checkpoint {path} is damaged (its weights do not "
                                f"fit its architecture: {type(exc).__name__}); it was not "
                                f"loaded. {REALIGN}") from None
    meta = {"dataset": header.get("dataset"), "path": str(path)}
    settings = header.get("config") if isinstance(header.get("config"), dict) else {}
    if isinstance(settings.get("image_trainable"), int):
        # 0: the image tower below the heads is the frozen pretrained one, so photo features
        # an alignment kept (`feature_shards`) give this encoder's vectors through its heads
        meta["image_trainable"] = settings["image_trainable"]
    if header.get("calibration"):
        # the types it was aligned on and calibrated stacking's gamma (`calibration`); older
        # checkpoints have none: their photos are named without calibration
        meta["calibration"] = header["calibration"]
    return wrap_model(model, cfg, NAME, header["version"], NAME, precision, meta)


def _read_legacy(path: Path) -> tuple[Any, dict[str, Any]]:
    """(header, state dict) of a checkpoint written by `torch.save` before safetensors: read
    with `weights_only=True` only (torch's own unpickler, which builds tensors and plain
    containers and nothing else). A file that needs more is refused, never unpickled."""
    import warnings

    import torch

    try:
        with warnings.catch_warnings():      # torch warns about odd pickle protocols: refused
            warnings.simplefilter("ignore")  # below, or read; the warning would only confuse
            ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=False)
    except Exception as exc:  # noqa: BLE001 - every failure of the unpickler is a refusal
        if "weights only load failed" in str(exc).lower() or \
                "unsupported global" in str(exc).lower():
            raise DamagedCheckpoint(
                f"The encoder checkpoint {path} is an old .pt file that cannot be read safely "
                "(it holds more than weights and settings, and reading it could run code); it "
                f"was not loaded. {REALIGN}") from None
        raise ModelFileError("it is not a complete checkpoint (truncated or damaged)") from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), dict):
        raise ModelFileError("it is not a catalog-clip checkpoint")
    tensors = ckpt.pop("state_dict")
    return ckpt, tensors


TEXT_POOLERS = ("mean_pooler", "cls_pooler", "max_pooler", "cls_last_hidden_state_pooler")
VERSION_CHARS = re.compile(r"[A-Za-z0-9_.@:-]{1,120}")


def _checked_header(header: Any) -> tuple[TowerConfig, dict[str, Any]]:
    """The checkpoint's config, checked: its format and name, a plain version, and a tower
    whose every value is one the app builds (an image size of a million pixels, an unknown
    trunk that would be downloaded, a huge dimension: refused before anything is built)."""
    if not isinstance(header, dict) or header.get("format") != CHECKPOINT_FORMAT or \
            header.get("name") != NAME:
        raise ModelFileError("it is not a catalog-clip checkpoint")
    version = header.get("version")
    if not isinstance(version, str) or not VERSION_CHARS.fullmatch(version):
        raise ModelFileError("its version is not a plain name")
    if not isinstance(header.get("dataset"), (str, type(None))) or \
            not isinstance(header.get("calibration") or {}, dict):
        raise ModelFileError("its config is not a checkpoint config")
    calibration = header.get("calibration") or {}
    if calibration:            # used when photos are named: seen types, and numbers
        seen = calibration.get("seen_types", [])
        numbers = [calibration.get(k, 0.0) for k in ("gamma", "gamma_cosine", "score_scale")]
        if not isinstance(seen, list) or not all(isinstance(t, str) for t in seen) or \
                not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                        and math.isfinite(v) for v in numbers) or \
                not isinstance(calibration.get("validation", {}), dict) or \
                not isinstance(calibration.get("note", ""), str):
            raise ModelFileError("its calibration is not a calibration")
    tower = header.get("tower")
    if not isinstance(tower, dict):
        raise ModelFileError("its tower settings are missing")
    cfg = TowerConfig.from_dict(tower)

    def whole(value, low, high):
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high

    def number(value, low, high):
        return isinstance(value, (int, float)) and not isinstance(value, bool) and \
            math.isfinite(value) and low <= value <= high

    ok = (whole(cfg.embed_dim, 1, 4096) and whole(cfg.image_size, 32, 1024)
          and cfg.image_trunk == IMAGE_TRUNK and cfg.image_proj in ("linear", "mlp")
          and cfg.text_proj in ("linear", "mlp", "none") and cfg.text_pooler in TEXT_POOLERS
          and whole(cfg.context_length, 1, 512) and number(cfg.init_temperature, 1e-4, 10.0)
          and isinstance(cfg.conse_residual, bool) and whole(cfg.instance_dim, 0, 4096)
          and number(cfg.instance_weight, 0.0, 0.999999)
          and (cfg.text_proj != "none" or cfg.embed_dim == 384))
    if not ok:
        raise ModelFileError("its tower settings are outside what the app builds")
    return cfg, header


def _check_tensors(model, tensors: dict[str, Any]) -> None:
    """Exactly the tensors the architecture has, each with its shape, floats finite."""
    import torch

    expected = model.state_dict()
    if not isinstance(tensors, dict) or set(tensors) != set(expected):
        raise ModelFileError("its tensors are not the ones of its architecture")
    for key, want in expected.items():
        got = tensors[key]
        if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(want.shape) or \
                got.is_floating_point() != want.is_floating_point():
            raise ModelFileError("a tensor has the wrong shape or type")
    if not tensors_finite(tensors.values()):
        raise ModelFileError("its weights hold values that are not numbers (NaN or infinite)")


def new_version(dataset: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", dataset).strip("-") or "dataset"
    return f"{slug}-{datetime.now():%Y%m%d%H%M%S}"


def save_checkpoint(model, path: Path, *, version: str, dataset: str, tower: TowerConfig,
                    config: dict[str, Any], calibration: dict[str, Any] | None = None) -> Path:
    """Write a catalog-clip checkpoint atomically (a crash leaves the previous file): the
    weights as safetensors, the config as JSON in its metadata, with the types it was aligned
    on and its calibration (`calibration.TypeCalibration.to_dict()`). The file is named
    `path` with the suffix `.safetensors`; returns that path."""
    path = Path(path)
    path = path.with_suffix(CHECKPOINT_SUFFIX) if path.suffix != CHECKPOINT_SUFFIX else path
    header = {"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_FORMAT_VERSION,
              "name": NAME, "version": version, "dataset": dataset, "tower": tower.to_dict(),
              "config": config, "calibration": calibration or {}}
    with atomic_path(path) as tmp:
        write_safetensors(tmp, model.state_dict(),
                          {"format": CHECKPOINT_FORMAT,
                           METADATA_KEY: json.dumps(header, default=_plain)})
    return path


def _plain(value: Any) -> Any:
    """JSON for the few non-JSON values a config may hold (tuples are lists already)."""
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
