"""Encoder registry, captions, held-out rule, the frozen towers and the cached training path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recsys.encoders import (EncoderError, HoldoutRule, NoCheckpointError, caption_variants,
                             get_encoder, item_caption, parse_spec)
from recsys.encoders.base import Encoder, EncoderSpec, encoder_kinds, register_encoder_kind
from recsys.encoders.catalog_clip import (CatalogClipConfig, contrastive_loss, image_bottom,
                                          image_top, text_bottom, text_top)

from .encoder_helpers import draw_product, frozen, shapes_store  # noqa: F401


# -- specs and the registry ---------------------------------------------------------------------
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


# -- captions and the held-out rule ------------------------------------------------------------
def test_caption_uses_every_field_and_skips_empty_ones():
    item = {"title": "Turtle Check Men Navy Blue Shirt", "gender": "Men", "article_type": "Shirts",
            "base_colour": "Navy Blue", "sub_category": "Topwear", "master_category": "Apparel",
            "usage": "Casual", "season": "Fall", "year": 2011.0, "brand": "Turtle",
            "description": "Slim fit cotton shirt"}
    cap = item_caption(item)
    for word in ("Turtle Check", "Navy Blue Shirts for Men", "Topwear", "Apparel", "Casual",
                 "Fall 2011", "Slim fit cotton shirt"):
        assert word in cap
    assert "By Turtle" not in cap   # the brand is already in the title
    assert item_caption({"title": "Mug", "brand": "Acme", "description": None,
                         "gender": float("nan")}) == "Mug. By Acme."
    kinds = dict(caption_variants(item))
    assert kinds["title"] == item["title"] and kinds["category:a photo of {}"] == \
        "a photo of Shirts"
    assert kinds["attributes"] == "navy blue shirts for men"


def test_holdout_rule_is_deterministic_and_about_twenty_percent():
    rule = HoldoutRule()
    ids = [str(i) for i in range(5000)]
    splits = rule.splits(ids)
    assert list(rule.splits(ids[::-1]))[::-1] == list(splits)   # order does not matter
    share = (splits == "heldout").mean()
    assert 0.18 < share < 0.22
    assert 0.03 < (splits == "val").mean() < 0.05
    assert HoldoutRule(seed=1).splits(ids).tolist() != splits.tolist()
    assert HoldoutRule.from_dict(rule.to_dict()) == rule


def test_config_round_trips_and_rejects_unknown_settings():
    cfg = CatalogClipConfig(epochs=3, image_trainable=2)
    again = CatalogClipConfig.from_dict(cfg.to_dict())
    assert again == cfg
    with pytest.raises(EncoderError, match="Unknown catalog-clip setting"):
        CatalogClipConfig.from_dict({"epochs": 1, "learning_rate": 1})


def test_multi_positive_loss_reduces_to_clip_loss():
    torch.manual_seed(0)
    logits = torch.randn(6, 6)
    plain = contrastive_loss(logits)
    assert torch.allclose(plain, contrastive_loss(logits, torch.eye(6, dtype=torch.bool)))
    pos = torch.eye(6, dtype=torch.bool)
    pos[0, 1] = pos[1, 0] = True
    # two texts that describe both photos: the loss no longer pushes them apart
    logits2 = logits.clone()
    logits2[0, 1] = logits2[1, 0] = 5.0
    assert contrastive_loss(logits2, pos) < contrastive_loss(logits2)


# -- the frozen towers --------------------------------------------------------------------------
def test_frozen_encoder_vectors(frozen):
    assert frozen.spec == "frozen@lite0-minilm-v1" and frozen.dim == 256
    imgs = [draw_product("ellipse", (200, 20, 20)), draw_product("rectangle", (20, 20, 200))]
    v = frozen.encode_images(imgs)
    t = frozen.encode_texts(["a red circle", "a blue square", ""])
    assert v.shape == (2, 256) and t.shape == (3, 256)
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-4)
    assert np.allclose(np.linalg.norm(t, axis=1), 1, atol=1e-4)
    assert np.allclose(frozen.encode_image(imgs[0]), v[0], atol=2e-3)
    # texts come back in input order although they are batched by length
    assert np.allclose(frozen.encode_texts(["a blue square"])[0], t[1], atol=2e-3)


def test_cached_path_equals_the_full_model(frozen):
    """Training runs tops over cached bottoms: that must compute what inference computes."""
    model = frozen.model
    x = frozen.pixels([np.asarray(draw_product("polygon", (30, 170, 60), 224))] * 2)
    with torch.inference_mode():
        full = model.encode_image(x)
        for level in (0, 1, 2, 3):
            h = image_bottom(model.visual, x, level)
            assert torch.allclose(image_top(model.visual, h, level), full, atol=1e-4), level
        ids = frozen.tokenize(["a green triangle flag", "red"])
        full_t = model.encode_text(ids)
        for level in (0, 1, 2):
            h, mask = text_bottom(model.text, ids, level)
            assert torch.allclose(text_top(model.text, h, mask, level), full_t, atol=1e-4), level
