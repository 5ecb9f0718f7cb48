"""The catalog's type-name vectors kept on disk (`recsys.encoders.type_names`): computed once,
read back without the text tower, only new types computed, a damaged file computed again."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.encoders import type_names as tn
from recsys.encoders.captions import ZERO_SHOT_TEMPLATES
from recsys.encoders.product_types import PRODUCT_TYPES


class Texts:
    """A stand-in text tower: a fixed vector per prompt; records every prompt it encodes."""

    name, version = "fake", "v1"

    def __init__(self):
        self.seen: list[str] = []

    def encode_texts(self, texts, batch_size=256, progress=None):
        self.seen += list(texts)
        rows = [np.random.default_rng(abs(hash(t)) % 2**32).normal(size=16) for t in texts]
        return np.asarray(rows)


def test_type_names_are_read_back_and_only_new_types_computed(tmp_path):
    enc = Texts()
    first = tn.catalog_type_texts(enc, ["Belts", "Caps", "Socks"], tmp_path, False)
    assert len(enc.seen) == 3 * len(ZERO_SHOT_TEMPLATES)
    assert (tmp_path / tn.FILE).is_file()
    enc.seen.clear()
    again = tn.catalog_type_texts(enc, ["Belts", "Caps", "Socks"], tmp_path, False)
    assert enc.seen == []                                   # no text tower at all
    assert again.types == first.types and np.allclose(again.vectors, first.vectors)
    more = tn.catalog_type_texts(enc, ["Belts", "Ties"], tmp_path, False)
    assert enc.seen == [t.format("Ties") for t in ZERO_SHOT_TEMPLATES]   # only the new type
    assert np.allclose(more.vectors[0], first.vectors[0])
    assert set(tn.read_type_vectors(tmp_path)) == {"Belts", "Caps", "Socks", "Ties"}


def test_damaged_or_foreign_file_is_computed_again(tmp_path):
    (tmp_path / tn.FILE).write_bytes(b"not an npz")
    enc = Texts()
    tn.catalog_type_texts(enc, ["Belts", "Caps"], tmp_path, False)
    assert len(enc.seen) == 2 * len(ZERO_SHOT_TEMPLATES)
    with open(tmp_path / tn.FILE, "wb") as fh:              # made with other prompts
        np.savez(fh, names=np.asarray(["Belts", "Caps"]), prompts=np.asarray("other"),
                 vectors=np.ones((2, 16), np.float32))
    assert tn.read_type_vectors(tmp_path) == {}
    # an object array would need pickle: refused, computed again
    np.save(tmp_path / "x.npy", np.asarray([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "x.npy").replace(tmp_path / tn.FILE)
    assert tn.read_type_vectors(tmp_path) == {}


def test_open_vocabulary_names_are_kept_with_the_catalog_types(tmp_path):
    enc = Texts()
    first = tn.catalog_type_texts(enc, ["Belts", "Track Pants"], tmp_path)
    assert first.open_names == list(PRODUCT_TYPES)
    assert first.feature_names[-2:] == ("open_gap", "open_mass")
    enc.seen.clear()
    again = tn.catalog_type_texts(enc, ["Belts", "Track Pants"], tmp_path)
    assert enc.seen == [] and np.allclose(again.open_vectors, first.open_vectors)
    assert set(tn.read_type_vectors(tmp_path)) == {"Belts", "Track Pants", *PRODUCT_TYPES}


def test_product_kinds_first_column_with_two_values():
    ids = ["b", "a", "c"]
    frame = pd.DataFrame({"item_id": ids, "article_type": ["Caps", None, "Belts"],
                          "master_category": ["Accessories"] * 3})
    assert tn.product_kinds(frame, ["a", "b", "c"]) == ["", "Caps", "Belts"]
    assert tn.product_kinds(frame.drop(columns="article_type"), ids) is None
