"""The alignment settings: `CatalogClipConfig` (plain data, saved as JSON with every run)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .base import EncoderError
from .phone_families import FAMILY_NAMES
from .splits import HoldoutRule
from .tower_parts import N_IMAGE_STAGES, N_TEXT_LAYERS
from .towers import TowerConfig


def default_tower() -> TowerConfig:
    """The catalog-clip architecture (docs/encoders.md, "Generalisation"): texts keep MiniLM's
    own vectors (locked, 384-d); a photo is its ConSE vector plus a trained MLP correction, with
    a PCA block of its features (256-d, weight 0.5) for photo-to-photo search: 640-d vectors."""
    return TowerConfig(image_proj="mlp", text_proj="none", embed_dim=384, conse_residual=True,
                       instance_dim=256, instance_weight=0.5)


# The phone-style views pay on a large catalog and cost on a small one (docs/encoders.md,
# "Views by catalog size"): on all 7,672 Myntra training photos they raised held-out phone-shot
# R@10 from 0.36 to 0.63 at the same zero-shot weighted F1 (0.885 vs 0.882); on a 600-item
# slice they cut that F1 from 0.51 to 0.40. When `augment_views` is not set explicitly, an
# alignment on fewer training photos than this makes none.
AUGMENT_MIN_PHOTOS = 2000


def views_for(n_train: int, settings: dict[str, Any] | None) -> int | None:
    """The views an alignment on `n_train` training photos makes when `settings` leave
    `augment_views` unset: None (the default) from `AUGMENT_MIN_PHOTOS` photos up, else 0."""
    if settings and settings.get("augment_views") is not None:
        return None
    return None if n_train >= AUGMENT_MIN_PHOTOS else 0


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
    # Keep what the towers knew: the photo's vector, scored against the MiniLM vectors of the
    # 1,000 ImageNet class names (softmax at this temperature), is pulled toward the frozen
    # classifier's probabilities (KL, this weight). 0 = off.
    distill_weight: float = 1.0
    distill_temperature: float = 0.05
    # Calibrated stacking (`calibration`): after aligning, align again `calibration_draws`
    # times with `calibration_types` of the training types held out (pseudo-unseen; drawn
    # among types with >= `calibration_min_photos` items) and keep the gamma that best names
    # both seen and pseudo-unseen types. 0 types = no calibration (gamma 0).
    calibration_types: int = 10
    calibration_draws: int = 2
    calibration_min_photos: int = 20
    # types never drawn as pseudo-unseen (e.g. the types a held-out-types report is about, so
    # that no reported draw's types help choose gamma for another draw)
    calibration_exclude: list[str] = field(default_factory=list)
    # Phone-style augmentation (`augment`): `augment_views` shots per training photo, made by
    # the phone-shot families `augment_families` (taken in turn from a per-item start), run once
    # through the frozen tower. 0 views = none. `augment_exclude` masks families (the
    # held-out-family test aligns without the family it scores). In each step a training photo
    # is replaced by one of its views with probability `augment_prob` (the distillation still
    # reads the studio photo: the classifier's view of the clean product is the teacher).
    augment_views: int = 2
    augment_families: list[str] = field(default_factory=lambda: list(FAMILY_NAMES))
    augment_exclude: list[str] = field(default_factory=list)
    augment_prob: float = 0.25
    # The instance block (photo-to-photo search): after the PCA, `instance_epochs` epochs of a
    # contrastive loss that pulls each augmented view to its own studio photo and away from the
    # other photos of the batch (half the batches of one article type: hard negatives), at
    # `instance_temperature`. 0 epochs (or no views) = the plain PCA.
    instance_epochs: int = 10
    instance_lr: float = 1e-3
    instance_temperature: float = 0.05
    instance_batch_size: int = 256

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
    tower = cfg.tower
    if tower.text_proj not in ("linear", "mlp", "none"):
        raise EncoderError("tower.text_proj must be linear, mlp or none")
    if tower.text_proj == "none" and tower.embed_dim != 384:
        raise EncoderError("tower.text_proj 'none' keeps MiniLM's 384-d vectors: set "
                           "tower.embed_dim to 384 (or use a linear/mlp text projection)")
    if not 0.0 <= tower.instance_weight < 1.0 or tower.instance_dim < 0:
        raise EncoderError("tower.instance_weight must be in [0, 1) and instance_dim >= 0")
    if cfg.image_trainable > 0 and (cfg.distill_weight > 0 or tower.instance_dim > 0
                                    or cfg.augment_views > 0):
        raise EncoderError("Training EfficientNet layers (image_trainable > 0) works on "
                           "intermediate activations; the distillation, the instance block and "
                           "the phone-style views need the frozen pooled features. Add --set "
                           "distill_weight=0 --set 'tower={\"instance_dim\": 0}' --set "
                           "augment_views=0 to train image layers.")
    if cfg.calibration_types < 0 or cfg.calibration_draws < 1:
        raise EncoderError("calibration_types must be >= 0 (0 = off) and calibration_draws "
                           ">= 1")
    if cfg.augment_views < 0 or not 0.0 <= cfg.augment_prob <= 1.0:
        raise EncoderError("augment_views must be >= 0 and augment_prob in [0, 1]")
    unknown = sorted(set(cfg.augment_families) - set(FAMILY_NAMES))
    if unknown:
        raise EncoderError(f"Unknown phone-shot families: {', '.join(unknown)}. Known: "
                           f"{', '.join(FAMILY_NAMES)}.")
    if cfg.instance_epochs < 0 or cfg.instance_temperature <= 0 or cfg.instance_lr <= 0 \
            or cfg.instance_batch_size < 2:
        raise EncoderError("instance_epochs must be >= 0, instance_temperature and instance_lr "
                           "> 0, instance_batch_size >= 2")
    if cfg.distill_weight < 0 or cfg.distill_temperature <= 0:
        raise EncoderError("distill_weight must be >= 0 and distill_temperature > 0")
