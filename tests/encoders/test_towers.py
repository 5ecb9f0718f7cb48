"""The frozen towers' vectors."""

from __future__ import annotations

import numpy as np

from ..encoder_helpers import draw_product


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
