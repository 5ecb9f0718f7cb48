"""Phone-style views only where they pay: a small catalog aligns without them unless
`augment_views` is set (docs/encoders.md, "Views by catalog size")."""

from __future__ import annotations

import json

from recsys.encoders.clip_config import AUGMENT_MIN_PHOTOS, views_for


def test_views_follow_the_catalog_size_unless_set():
    assert views_for(AUGMENT_MIN_PHOTOS - 1, None) == 0
    assert views_for(AUGMENT_MIN_PHOTOS - 1, {"epochs": 3}) == 0
    assert views_for(AUGMENT_MIN_PHOTOS, None) is None          # the default (2 views)
    assert views_for(10, {"augment_views": 2}) is None           # set explicitly: kept
    assert views_for(10, {"augment_views": 0}) is None


def test_a_small_catalog_aligns_without_views(shapes_store):
    from recsys import usecases

    info = usecases.train_encoder(shapes_store, "shapes",
                                  {"epochs": 1, "max_steps": 1, "batch_size": 8})
    assert info.metrics["augmented_views"] == 0 and info.metrics["seconds_cache_views"] == 0
    assert "no phone-style views" in info.config["views_rule"]
    row = shapes_store.encoders("shapes").iloc[0]
    assert json.loads(row["config"])["augment_views"] == 0      # what was run is recorded
    assert info.reuse is None                                   # nothing heavy kept
