"""The encoder registry: specs parsed and bad ones refused with the accepted forms, new kinds
registered, ConSE as a registered baseline, catalog-clip without a checkpoint says to train,
and encoder modules that never import the registry above them."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from recsys.encoders import (
    EncoderError,
    NoCheckpointError,
    get_encoder,
    parse_spec,
)
from recsys.encoders.base import Encoder, EncoderSpec
from recsys.encoders.registry import encoder_kinds, register_encoder_kind

from ..encoder_helpers import draw_product


@pytest.mark.parametrize("spec, expected", [
    (None, EncoderSpec("catalog-clip")),
    ("catalog-clip", EncoderSpec("catalog-clip")),
    ("catalog-clip@myntra-20250101120000", EncoderSpec("catalog-clip", None,
                                                       "myntra-20250101120000")),
    ("frozen", EncoderSpec("frozen")),
    ("openclip:ViT-B-32/laion2b_s34b_b79k", EncoderSpec("openclip",
                                                        "ViT-B-32/laion2b_s34b_b79k")),
    ("openclip:ViT-B-32/models/open_clip_pytorch_model.bin",
     EncoderSpec("openclip", "ViT-B-32/models/open_clip_pytorch_model.bin")),
    ("openclip:ViT-B-32@file-0123abcd", EncoderSpec("openclip", "ViT-B-32", "file-0123abcd")),
])
def test_parse_spec(spec, expected):
    assert parse_spec(spec) == expected
    if spec:
        assert str(parse_spec(spec)) == spec


@pytest.mark.parametrize("spec", ["clip", "catalog-clip@", "openclip:", "resnet:50"])
def test_bad_specs_are_refused_with_the_accepted_forms(spec):
    with pytest.raises(EncoderError) as err:
        parse_spec(spec)
    assert "catalog-clip" in str(err.value) or "Incomplete" in str(err.value)


def test_registry_accepts_new_kinds():
    class Constant(Encoder):
        name, version, dim, kind = "constant", "1", 3, "test"

        def encode_images(self, images, batch_size=64, progress=None, failures=None):
            return np.tile(np.eye(3, dtype=np.float32)[0], (len(images), 1))

        def encode_texts(self, texts, batch_size=256, progress=None):
            return np.tile(np.eye(3, dtype=np.float32)[1], (len(texts), 1))

    register_encoder_kind("constant", lambda spec, store, dataset: Constant())
    enc = get_encoder("constant")
    assert "constant" in encoder_kinds()
    assert enc.spec == "constant@1" and enc.encode_text("x").tolist() == [0, 1, 0]
    assert enc.encode_images(["a", "b"]).shape == (2, 3)


def test_catalog_clip_without_checkpoint_says_to_train(store):
    store.set_setting("active_dataset", "none")
    with store.transaction() as cur:
        store.upsert_dataset(cur, "shop", "catalog")
    with pytest.raises(NoCheckpointError) as err:
        get_encoder("catalog-clip", store, "shop")
    assert "train-encoder --dataset shop" in str(err.value)
    with pytest.raises(EncoderError, match="Unknown encoder catalog-clip@nope"):
        get_encoder("catalog-clip@nope", store)
    with pytest.raises(EncoderError, match="needs the database"):
        get_encoder("catalog-clip")


ENCODERS = Path(__file__).resolve().parents[2] / "recsys" / "encoders"


def test_encoder_modules_do_not_import_the_registry_below_it():
    """The registry imports the concrete encoders; none of them may import it back (the old
    base.py <-> catalog_clip.py cycle)."""
    below = {"base", "towers", "clip_encoder", "checkpoints", "conse", "hybrid", "tower_parts",
             "training_data", "trainer", "alignment", "loss", "clip_config", "captions",
             "splits", "openclip_pretrained", "phone_shots", "crop"}
    for name in below:
        tree = ast.parse((ENCODERS / f"{name}.py").read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level}
        assert "registry" not in imported and None not in imported, name


def test_conse_encoder_is_a_registered_baseline():
    assert parse_spec("conse").kind == "conse"
    enc = get_encoder("conse")
    assert enc.dim == 384 and enc.spec.startswith("conse@")
    v = enc.encode_images([draw_product("ellipse", (200, 20, 20))])
    t = enc.encode_texts(["a red ball", "running shoes"])
    assert v.shape == (1, 384) and t.shape == (2, 384)
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-3)
