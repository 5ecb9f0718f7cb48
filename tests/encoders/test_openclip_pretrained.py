"""OpenCLIP through the registry: a local checkpoint loads; missing weights fail fast, with what
to download and where."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recsys.encoders import (
    EncoderError,
    get_encoder,
)

from ..encoder_helpers import draw_product


TINY_OPENCLIP = {"embed_dim": 32,
                 "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16,
                                "patch_size": 16},
                 "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32,
                              "heads": 2, "layers": 1}}


@pytest.fixture(scope="module")
def tiny_openclip(tmp_path_factory):
    """A randomly initialised tiny OpenCLIP model saved like a downloaded checkpoint."""
    import json

    import open_clip
    from open_clip.model import CLIP

    folder = tmp_path_factory.mktemp("openclip")
    torch.manual_seed(0)
    model = CLIP(**TINY_OPENCLIP)
    path = folder / "open_clip_pytorch_model.bin"
    torch.save(model.state_dict(), path)
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_OPENCLIP}))
    assert "tiny-test-clip" not in open_clip.list_models()
    return path


def test_openclip_local_checkpoint_loads_through_the_registry(tiny_openclip, shapes_store):
    from recsys.search.item_index import ItemIndex
    from recsys.vectors.embed import embed_items

    enc = get_encoder(f"openclip:tiny-test-clip/{tiny_openclip}")
    assert enc.name == "openclip:tiny-test-clip" and enc.version.startswith("file-")
    assert enc.dim == 32 and enc.kind == "openclip"
    v = enc.encode_images([draw_product("ellipse", (200, 20, 20))])
    t = enc.encode_texts(["a red circle", "a blue square"])
    assert v.shape == (1, 32) and t.shape == (2, 32)
    assert np.allclose(np.linalg.norm(t, axis=1), 1, atol=1e-4)
    # embedded once, it is reloadable by name@version from the registry (what search does)
    rep = embed_items(shapes_store, "shapes", enc)
    assert rep.embedded == {"image": 24, "text": 24}
    again = get_encoder(enc.spec, shapes_store)
    assert again.spec == enc.spec
    assert np.allclose(again.encode_texts(["a red circle"])[0], t[0], atol=1e-4)
    assert ItemIndex.from_store(shapes_store, "shapes").spec == enc.spec


def _missing_openclip_weights(monkeypatch, tmp_path) -> tuple[str, float]:
    """The message of a missing OpenCLIP checkpoint (no hub: HF_HUB_OFFLINE, an empty cache)
    and the seconds it took to say so."""
    import time

    from recsys.encoders import MissingWeightsError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    t0 = time.perf_counter()
    with pytest.raises(MissingWeightsError) as err:
        get_encoder("openclip:ViT-B-32/laion2b_s34b_b79k")
    return str(err.value), time.perf_counter() - t0


def test_openclip_missing_weights_fail_fast_with_instructions(monkeypatch, tmp_path):
    from recsys.encoders import MissingWeightsError

    msg, _ = _missing_openclip_weights(monkeypatch, tmp_path)
    assert "open_clip_pytorch_model.bin" in msg and "laion/CLIP-ViT-B-32-laion2B-s34B-b79K" in msg
    assert "--encoder openclip:ViT-B-32/" in msg
    with pytest.raises(MissingWeightsError, match="checkpoint not found"):
        get_encoder(f"openclip:ViT-B-32/{tmp_path / 'missing.bin'}")
    with pytest.raises(EncoderError, match="Unknown OpenCLIP architecture"):
        get_encoder("openclip:ViT-Q-99/laion2b_s34b_b79k")


@pytest.mark.perf
def test_openclip_missing_weights_are_reported_within_two_seconds(monkeypatch, tmp_path):
    _, seconds = _missing_openclip_weights(monkeypatch, tmp_path)
    assert seconds < 2.0
