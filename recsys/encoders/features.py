"""Where an alignment gets the frozen towers' outputs (`TowerFeatures`: by running them), and
what it hands on to the catalog's embedding (`TowerOutputs`: so no photo is encoded twice)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .augment import view_features
from .training_data import cache_images, cache_texts


class TowerFeatures:
    """Where an alignment gets the frozen towers' outputs: computed here by running the towers
    (the default). A benchmark that re-aligns many times passes an object with the same three
    methods that reads them from a disk cache instead (`benchmarks/phone_cache.py`)."""

    def images(self, model, paths, cfg, pixels, progress, flip):
        return cache_images(model, paths, cfg, pixels, progress, flip)

    def texts(self, model, tokenize, texts, cfg, progress):
        return cache_texts(model, tokenize, texts, cfg, progress)

    def views(self, model, cfg, paths, item_ids, plan, pixels, progress, donor_paths):
        return view_features(model, cfg, paths, item_ids, plan, pixels, progress, donor_paths)


@dataclass
class TowerOutputs:
    """The frozen towers' pooled outputs an alignment computed over its items (only when both
    towers stay frozen below their heads: `image_trainable == text_trainable == 0`, the
    default). The aligned model's vectors of those photos and captions are then its heads
    applied to these rows (`ClipEncoder.encode_image_features` / `encode_text_features`), so
    embedding the catalog right after the alignment runs the image tower only over the photos
    the alignment did not see (the held-out items)."""

    item_ids: list[str]
    image_paths: list[str]
    images: Any                      # [n, 1280] pooled EfficientNet features (bf16 tensor)
    captions: list[str] | None = None
    texts: Any | None = None         # [n, 384] pooled MiniLM features of each item's caption

    def __post_init__(self) -> None:
        self._row = {item: i for i, item in enumerate(self.item_ids)}

    def __len__(self) -> int:
        return len(self.item_ids)

    def image_rows(self, item_ids: Sequence[str], paths: Sequence[str],
                   hashes: Sequence[Any] | None = None) -> np.ndarray:
        """Row of each item's photo features, -1 where it has none (another photo path).
        (`hashes`: unused, the features were computed from these files just now.)"""
        return self._rows(item_ids, paths, self.image_paths)

    def image_features(self, rows: np.ndarray):
        """The pooled features of `rows` (from `image_rows`)."""
        import torch
        return self.images[torch.from_numpy(np.asarray(rows, dtype=np.int64))]

    def text_features(self, rows: np.ndarray):
        import torch
        return self.texts[torch.from_numpy(np.asarray(rows, dtype=np.int64))]

    def text_rows(self, item_ids: Sequence[str], captions: Sequence[str]) -> np.ndarray:
        """Row of each item's caption features, -1 where it has none (another caption)."""
        if self.texts is None or self.captions is None:
            return np.full(len(item_ids), -1, dtype=np.int64)
        return self._rows(item_ids, captions, self.captions)

    def _rows(self, item_ids, values, known) -> np.ndarray:
        out = np.full(len(item_ids), -1, dtype=np.int64)
        for i, (item, value) in enumerate(zip(item_ids, values)):
            row = self._row.get(str(item))
            if row is not None and known[row] == str(value):
                out[i] = row
        return out
