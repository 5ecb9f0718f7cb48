"""Encoders: product photos and texts -> vectors in one shared space.

Public API (nothing heavy is imported until used):

- `get_encoder(spec=None, store=None, dataset=None) -> Encoder` (spec: "catalog-clip",
  "catalog-clip@VERSION", "catalog-clip:CHECKPOINT_PATH", "frozen",
  "openclip:ARCH/PRETRAINED_OR_PATH")
- `portable_spec(spec, store, dataset) -> str`: the same encoder's spec loadable without the
  database (for processes that must not open it, e.g. Ray workers)
- `Encoder.encode_images(...)`, `.encode_texts(...)`, `.encode_image(one)`, `.dim`, `.name`,
  `.version`, `.spec`
- `train_catalog_clip(store, dataset=None, config=None, progress=None) -> EncoderInfo`
- `CatalogClipConfig`, `item_caption(item)`, `HoldoutRule`
- `evaluate_encoder(store, dataset, encoder, baseline="conse")`: held-out 20% (in-distribution)
- `evaluate_unseen_types(store, dataset, k=10, seed=0)`: whole article types held out
- `evaluate_phone_shots(store, dataset, encoder, n=500, seed=0)`: phone-style queries
- `crop_to_product(pil_image) -> pil_image`: crop an upload to the product (visual search)
"""

from __future__ import annotations

from typing import Any

from .base import Encoder, EncoderError, EncoderSpec, MissingWeightsError, NoCheckpointError
from .registry import (DEFAULT_ENCODER, encoder_kinds, get_encoder, parse_spec,
                       portable_spec, register_encoder_kind)
from .captions import (ZERO_SHOT_TEMPLATES, attribute_phrase, caption_variants, class_prompts,
                       item_caption, item_category)
from .splits import HoldoutRule

_LAZY = {
    "CatalogClipConfig": "clip_config", "EncoderInfo": "catalog_clip",
    "train_catalog_clip": "catalog_clip", "frozen_encoder": "checkpoints",
    "load_catalog_clip": "checkpoints", "catalog_clip_checkpoints": "checkpoints",
    "TowerConfig": "towers", "ClipEncoder": "clip_encoder",
    "evaluate_encoder": "evaluate", "EncoderEvaluation": "evaluate",
    "evaluate_unseen_types": "evaluate_unseen", "UnseenTypesEvaluation": "evaluate_unseen",
    "evaluate_phone_shots": "evaluate_phone", "PhoneShotEvaluation": "evaluate_phone",
    "crop_to_product": "crop", "conse_encoder": "conse",
}

__all__ = ["DEFAULT_ENCODER", "Encoder", "EncoderError", "EncoderSpec", "MissingWeightsError",
           "NoCheckpointError", "encoder_kinds", "get_encoder", "parse_spec", "portable_spec",
           "register_encoder_kind", "ZERO_SHOT_TEMPLATES", "attribute_phrase",
           "caption_variants", "class_prompts", "item_caption", "item_category", "HoldoutRule",
           *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
