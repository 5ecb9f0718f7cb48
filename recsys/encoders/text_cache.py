"""Pooled text-tower features of fixed texts (prompt ensembles of type names), kept per machine.

The "no close match" decision needs the catalog's type names and a broad list of product-type
names (`product_types.PRODUCT_TYPES`, about 200 names x 5 prompts) through the encoder's text
tower, at every embedding of a catalog. The tower's transformer is the pretrained MiniLM for
every encoder that keeps it frozen, so its pooled outputs for the same prompts are the same
for all of them: they are computed once per machine (in `conse.names_cache_path`'s folder,
keyed by a fingerprint of the transformer's weights and the texts) and only the encoder's own
projection runs per encoder. An encoder whose transformer was fine-tuned has another
fingerprint, so it never reads another's features.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def broad_prompts() -> list[str]:
    """Every prompt of the broad product-type list: the texts kept per machine."""
    from .captions import ZERO_SHOT_TEMPLATES, class_prompts
    from .product_types import PRODUCT_TYPES

    return [p for t in PRODUCT_TYPES for p in class_prompts(t, ZERO_SHOT_TEMPLATES)]


def cached_text_vectors(encoder: Any, texts: Sequence[str]) -> np.ndarray | None:
    """[len(texts), d] vectors of `texts` through `encoder`: its projection applied to pooled
    tower features, those of the broad list's prompts kept per machine (the others, e.g. a
    catalog's own type names, computed now). None when the encoder is not a two-tower model
    with a separate projection (then the caller runs `encoder.encode_texts`)."""
    model = getattr(encoder, "model", None)
    tokenize = getattr(encoder, "tokenize", None)
    text = getattr(model, "text", None)
    if text is None or tokenize is None or not hasattr(encoder, "encode_text_features") \
            or not all(hasattr(text, a) for a in ("transformer", "pooler", "proj", "config")):
        return None
    from .conse import _text_fingerprint, kept_vectors, minilm_vectors

    texts = [str(t) for t in texts]
    try:
        key = ("pooled-prompts",) + _text_fingerprint(model)
    except (AttributeError, TypeError, RuntimeError):
        return None
    broad = broad_prompts()
    row = {t: i for i, t in enumerate(broad)}
    kept = None
    if any(t in row for t in texts):
        kept = kept_vectors(key, broad, lambda: minilm_vectors(model, tokenize, broad))
    others = list(dict.fromkeys(t for t in texts if t not in row))
    fresh = dict(zip(others, np.asarray(minilm_vectors(model, tokenize, others),
                                        dtype=np.float32))) if others else {}
    pooled = np.stack([kept[row[t]] if t in row else fresh[t] for t in texts])
    return np.asarray(encoder.encode_text_features(pooled), dtype=np.float32)
