"""The plain-torch towers (`lite_towers`) are open_clip's model: same state-dict keys in the
same order, same outputs, same random numbers drawn when built; checkpoints written from the
open_clip model load into them with the same vectors; the tokenizer gives transformers' ids;
and the default path imports neither open_clip nor timm, torchvision or transformers."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from recsys.encoders.clip_config import default_tower
from recsys.encoders.towers import (
    TowerConfig,
    build_clip_model,
    build_openclip_model,
    minilm_path,
    text_tokenizer,
)

from ..encoder_helpers import draw_product

ROOT = Path(__file__).resolve().parents[2]
TEXTS = ["a red cotton T-shirt", "", "Nike running shoes for men, size 10 – blue/white",
         "Crème brûlée  DÉCOR   naïve café", "北京 handbag 👜 with ZIP", "x" * 400,
         "word " * 80]


def _randomise(model, seed: int = 0) -> None:
    """Every float tensor of `model` (weights and batch-norm statistics) set to seeded random
    values, so outputs depend on all of them."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                r = torch.rand(t.shape, generator=gen)
                t.copy_(0.5 + r if name.endswith("running_var") else (r - 0.5) * 0.2)


@pytest.mark.slow
@pytest.mark.parametrize("cfg", [TowerConfig(image_size=96, text_proj="mlp"),
                                 replace(default_tower(), image_size=96)],
                         ids=["linear-mlp", "default"])
def test_same_keys_and_outputs_as_the_open_clip_model(cfg):
    old = build_openclip_model(cfg, pretrained=False)
    new = build_clip_model(cfg, pretrained=False)
    assert type(new).__module__ == "recsys.encoders.lite_towers"
    old_sd, new_sd = old.state_dict(), new.state_dict()
    assert list(old_sd) == list(new_sd)
    assert all(old_sd[k].shape == new_sd[k].shape for k in old_sd)
    _randomise(old)
    new.load_state_dict(old.state_dict(), strict=True)
    old.eval(), new.eval()
    images = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    ids = text_tokenizer(cfg.context_length)(TEXTS)
    with torch.no_grad():
        assert torch.allclose(old.encode_image(images), new.encode_image(images), atol=1e-5)
        assert torch.allclose(old.encode_text(ids), new.encode_text(ids), atol=1e-5)


def test_built_pretrained_like_open_clip_weights_and_random_state():
    """Seeded builds draw the same random numbers: the heads an alignment starts from, and
    the random state after the build, are the ones the open_clip model had."""
    cfg = default_tower()
    torch.manual_seed(0)
    old = build_openclip_model(cfg, pretrained=True)
    after_old = torch.rand(4)
    torch.manual_seed(0)
    new = build_clip_model(cfg, pretrained=True)
    after_new = torch.rand(4)
    assert torch.equal(after_old, after_new)
    old_sd, new_sd = old.state_dict(), new.state_dict()
    assert all(torch.equal(old_sd[k], new_sd[k]) for k in old_sd)


@pytest.mark.slow
def test_open_clip_checkpoint_loads_with_the_same_vectors(tmp_path, monkeypatch):
    """A checkpoint saved from the open_clip model (as every checkpoint before this change
    was) loads into the plain-torch model and gives the same photo and text vectors."""
    from recsys.encoders import hybrid
    from recsys.encoders.checkpoints import load_checkpoint, save_checkpoint, wrap_model

    cfg = replace(default_tower(), image_size=96)
    with monkeypatch.context() as m:
        m.setattr(hybrid, "build_clip_model", build_openclip_model)
        old = hybrid.build_catalog_model(cfg, pretrained=False)
    assert type(old).__name__ == "CustomTextCLIP"
    _randomise(old, seed=3)
    path = save_checkpoint(old, tmp_path / "v1", version="v1", dataset="demo", tower=cfg,
                           config={})
    loaded = load_checkpoint(path)
    assert type(loaded.model).__module__ == "recsys.encoders.lite_towers"
    before = wrap_model(old, cfg, "catalog-clip", "v1", "catalog-clip", "fp32", {})
    loaded.precision = before.precision = "fp32"
    photos = [draw_product("ellipse", (200, 20, 20)), draw_product("rectangle", (20, 20, 200))]
    assert np.allclose(before.encode_images(photos), loaded.encode_images(photos), atol=1e-5)
    assert np.allclose(before.encode_texts(TEXTS), loaded.encode_texts(TEXTS), atol=1e-5)


def test_tokenizer_gives_the_transformers_ids():
    from transformers import AutoTokenizer

    reference = AutoTokenizer.from_pretrained(str(minilm_path()))
    for length in (8, 64):
        want = reference(TEXTS, padding="longest", truncation=True, max_length=length,
                         return_tensors="pt")["input_ids"]
        got = text_tokenizer(length)(TEXTS)
        assert got.dtype == torch.long and torch.equal(got, want)
    assert text_tokenizer(64).pad_token_id == reference.pad_token_id


def test_imagenet_class_names_are_timms():
    from timm.data import ImageNetInfo

    from recsys.encoders.conse import imagenet_class_names

    want = [str(n).strip() for n in ImageNetInfo().label_descriptions(detailed=False)]
    assert list(imagenet_class_names()) == want


@pytest.mark.slow
def test_the_default_encoder_path_imports_no_open_clip():
    """Building the default (pretrained) catalog-clip model and encoding a photo and a text
    import none of open_clip, timm, torchvision, transformers or torch._dynamo (seconds of
    CPU each on a first start; loading a checkpoint builds the same model)."""
    code = """
import sys, json
import numpy as np
from recsys.encoders.clip_config import default_tower
from recsys.encoders.hybrid import build_catalog_model
from recsys.encoders.checkpoints import wrap_model
cfg = default_tower()
model = build_catalog_model(cfg, pretrained=True)
enc = wrap_model(model, cfg, "catalog-clip", "v1", "catalog-clip", None, {})
enc.encode_texts(["a red shirt", "shoes"])
enc.encode_arrays([np.full((224, 224, 3), 200, np.uint8)])
heavy = ("open_clip", "timm", "torchvision", "transformers", "torch._dynamo")
print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
