"""Where an alignment gets the frozen towers' outputs (`TowerFeatures`: by running them)."""

from __future__ import annotations

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
