"""Hyperparameters that describe themselves: every model's settings are a dataclass whose
fields carry a help text, a range and choices (`hp`), so the Train page builds its widgets
from them (`describe_config`) and the command line's `-p NAME=VALUE` strings are checked and
converted to the field types (`coerce_params`) with a clear error for anything else.

`ModelConfig` holds what every model shares (the seed), `TrainConfig` what models trained for
several epochs share; `modalities_hp` / `modality_signals` the `modalities` setting of content
and fusion models and the signals it asks of a dataset.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from .errors import ModelError


def hp(default: Any, help: str, low: float | None = None, high: float | None = None,
       choices: tuple | None = None, log: bool = False) -> Any:
    """A config field that describes itself (type, default, range, help) for the Train page."""
    return field(default=default, metadata={"help": help, "low": low, "high": high,
                                            "choices": choices, "log": log})


def modality_signals(modalities: tuple, cf: bool = False) -> frozenset[str]:
    """The signals a model with a `modalities` setting needs: those modalities (any one, the
    "vectors" pseudo-signal, while the setting is empty: every modality the data has), plus
    "cf" for models that also read the interactions' co-occurrence."""
    from recsys.vectors.modalities import ANY_VECTORS

    mods = frozenset(modalities) if modalities else frozenset({ANY_VECTORS})
    return mods | ({"cf"} if cf else frozenset())


def modalities_hp(help: str) -> Any:
    """The `modalities` setting of content and fusion models (empty: all the data has)."""
    return hp((), f"{help}; comma-separated names (image, text, video, imported ones), empty: "
              "every modality the dataset has")


@dataclass
class ModelConfig:
    """Hyperparameters shared by every model."""

    seed: int = hp(0, "random seed (sampling, initialisation, validation users)", 0, 2**31 - 1)


@dataclass
class TrainConfig(ModelConfig):
    """Hyperparameters of models trained for several epochs with early stopping."""

    epochs: int = hp(60, "maximum number of epochs", 1, 1000)
    patience: int = hp(6, "stop after this many epochs without a better validation NDCG@20",
                       1, 100)
    lr: float = hp(0.005, "Adam learning rate", 1e-4, 0.1, log=True)
    batch_size: int = hp(2048, "training pairs per batch", 8, 65536, log=True)


def describe_config(config_class: type, overrides: dict | None = None) -> list[dict]:
    """Machine-readable hyperparameters: name, type, default, range, choices, help."""
    overrides = overrides or {}
    out = []
    for f in fields(config_class):
        default = overrides.get(f.name, f.default if f.default is not MISSING else None)
        out.append({"name": f.name, "type": type(default).__name__, "default": default,
                    "low": f.metadata.get("low"), "high": f.metadata.get("high"),
                    "choices": list(f.metadata["choices"]) if f.metadata.get("choices") else None,
                    "log": f.metadata.get("log", False), "help": f.metadata.get("help", "")})
    return out


def coerce_params(config_class: type, params: dict[str, Any]) -> dict[str, Any]:
    """Check names and convert values (e.g. strings from the command line) to the field types."""
    known = {f.name: f for f in fields(config_class)}
    out = {}
    for name, value in params.items():
        if name not in known:
            raise ModelError(f"Unknown hyperparameter {name!r}; this model takes "
                             f"{', '.join(sorted(known))}.")
        f = known[name]
        kind = type(f.default) if f.default is not MISSING else str
        try:
            if kind is bool and isinstance(value, str):
                value = value.lower() in ("1", "true", "yes", "on")
            elif kind in (tuple, list) and isinstance(value, str):
                value = tuple(v.strip() for v in value.split(",") if v.strip())
            else:
                value = kind(value)
        except (TypeError, ValueError, OverflowError):
            raise ModelError(f"Hyperparameter {name} expects {kind.__name__}, got {value!r}.") \
                from None
        if isinstance(value, float) and not math.isfinite(value):
            # NaN slips through every range check (all comparisons with it are false)
            raise ModelError(f"Hyperparameter {name} must be a finite number, got {value}.")
        low, high = f.metadata.get("low"), f.metadata.get("high")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and (
                (low is not None and value < low) or (high is not None and value > high)):
            raise ModelError(f"Hyperparameter {name}={value} is outside {low}..{high}.")
        if f.metadata.get("choices") and value not in f.metadata["choices"] and \
                not isinstance(value, tuple):
            raise ModelError(f"Hyperparameter {name} must be one of "
                             f"{', '.join(map(str, f.metadata['choices']))}.")
        out[name] = value
    return out
