"""The alignment settings: `CatalogClipConfig` (plain data, saved as JSON with every run)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .base import EncoderError
from .splits import HoldoutRule
from .tower_parts import N_IMAGE_STAGES, N_TEXT_LAYERS
from .towers import TowerConfig


def default_tower() -> TowerConfig:
    """The catalog-clip architecture: the pretrained towers with MLP projections to 256-d."""
    return TowerConfig(image_proj="mlp", text_proj="mlp")


@dataclass
class CatalogClipConfig:
    """Everything that defines an alignment run (saved as JSON with the run and the encoder)."""

    # Defaults = the best measured configuration on Myntra (docs/encoders.md): both towers
    # frozen, two-layer MLP projections trained over cached pooled features for 30 epochs.
    # Unfreezing MiniLM's top layer or EfficientNet's conv_head cost 5-30x the time and did not
    # score better on the held-out items.
    tower: TowerConfig = field(default_factory=lambda: default_tower())
    # Which layers learn: 0 = projection only; n = the top n groups of EfficientNet-Lite0
    # (1 = conv_head, 2 = + last stage, 3 = + the 192-channel stage) / of MiniLM's 6 layers.
    image_trainable: int = 0
    text_trainable: int = 0
    epochs: int = 30
    batch_size: int = 256
    lr_head: float = 2e-3            # projections and temperature
    lr_tower: float = 3e-4           # unfrozen tower layers
    weight_decay: float = 0.05
    warmup_fraction: float = 0.05
    flip_augment: bool = False       # also cache the mirrored photo and pick one at random
    multi_positive: bool = True      # identical descriptions in a batch count as positives
    caption_weights: dict[str, float] = field(default_factory=lambda: {
        "caption": 0.35, "title": 0.25, "attributes": 0.15, "category": 0.25})
    holdout: HoldoutRule = field(default_factory=HoldoutRule)
    seed: int = 0
    max_items: int | None = None     # use at most this many training items (tests, smoke runs)
    max_steps: int | None = None     # stop after this many optimiser steps (tests)
    precision: str = "auto"          # bf16 autocast where the CPU supports it natively

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["holdout"] = self.holdout.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "CatalogClipConfig":
        data = dict(data or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise EncoderError(f"Unknown catalog-clip setting(s): {', '.join(unknown)}. "
                               f"Known: {', '.join(sorted(known))}.")
        tower = TowerConfig.from_dict({**default_tower().to_dict(),
                                       **(data.pop("tower", None) or {})})
        holdout = HoldoutRule.from_dict(data.pop("holdout", None))
        return cls(tower=tower, holdout=holdout, **data)


def check_config(cfg: CatalogClipConfig) -> None:
    if not 0 <= cfg.image_trainable <= N_IMAGE_STAGES + 1:
        raise EncoderError(f"image_trainable must be 0..{N_IMAGE_STAGES + 1}")
    if not 0 <= cfg.text_trainable <= N_TEXT_LAYERS:
        raise EncoderError(f"text_trainable must be 0..{N_TEXT_LAYERS}")
    if cfg.epochs < 1 or cfg.batch_size < 2:
        raise EncoderError("epochs must be >= 1 and batch_size >= 2")
