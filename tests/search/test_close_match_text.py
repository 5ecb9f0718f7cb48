""""No close match" on Visual search with the catalog's type names: the decision kept beside the
index uses them, and is calibrated again when they come or go."""

from __future__ import annotations

import json

import numpy as np

from recsys.encoders.match_threshold import DEFAULT_FALSE_ALARM
from recsys.encoders.match_decision import TypeTexts
from recsys.search import close_match
from recsys.search.close_match import catalog_threshold, check_close_match
from recsys.search.item_index import ItemIndex
from recsys.search.vector_index import VectorIndex


def _unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def test_catalog_decision_uses_type_names_and_the_unseen_photos_cutoff(tmp_path):
    rng = np.random.default_rng(0)
    names = _unit(rng.normal(size=(7, 32)))              # the 7th kind is not sold
    kinds = np.repeat(np.arange(6), 40)
    unseen = np.tile(np.arange(40) >= 32, 6)             # 8 per kind never trained on
    spread = np.where(unseen, 0.5, 0.2)[:, None]
    photos = _unit(names[kinds] + spread * _unit(rng.normal(size=(240, 32))))
    ids = [f"it{i:03d}" for i in range(240)]
    labels = [f"kind{k}" for k in kinds]
    vectors = VectorIndex({"image": 32})
    vectors.add(ids, {"image": photos}, {"image": np.ones(240, bool)})
    index = ItemIndex(vectors, "enc", "v1")
    texts = TypeTexts([f"kind{k}" for k in range(6)], names[:6])

    found = catalog_threshold(index, labels, tmp_path, "t", texts, unseen)
    assert found.model.uses_text and found.model.cutoff_on == "validation"
    saved = json.loads((tmp_path / close_match.FILE).read_text())
    assert saved["token"] == f"t:names:fa{DEFAULT_FALSE_ALARM:g}"
    own = check_close_match(index, index.image[3], found)
    assert own.close
    off = [check_close_match(index, _unit(names[6] + 0.5 * _unit(rng.normal(size=32))),
                             found).close for _ in range(30)]
    new = [check_close_match(index, _unit(names[i % 6] + 0.5 * _unit(rng.normal(size=32))),
                             found).close for i in range(60)]
    assert np.mean(off) <= 0.1 and np.mean(new) >= 0.85
    # an encoder without a text tower: the saved text decision is not reused
    plain = catalog_threshold(index, labels, tmp_path, "t")
    assert not plain.model.uses_text and plain.texts is None
    assert check_close_match(index, index.image[3], plain).close
