"""DOCSTRING TO WRITE."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from recsys.encoders import crop_to_product


def test_crop_to_product_finds_the_product_on_a_textured_table():
    rng = np.random.default_rng(0)
    table = (120 + 25 * rng.random((300, 400, 3))).astype(np.uint8)
    img = Image.fromarray(table)
    ImageDraw.Draw(img).rectangle([230, 60, 330, 200], fill=(200, 20, 20))
    box = crop_to_product(img)
    assert 100 <= box.width <= 190 and 140 <= box.height <= 240     # 101 x 141 + padding
    arr = np.asarray(box, dtype=float)
    assert (arr[..., 0] - arr[..., 1] > 100).mean() > 0.4   # mostly the red product
    plain = Image.new("RGB", (200, 100), (90, 90, 90))        # nothing stands out
    assert crop_to_product(plain).size == (200, 100)          # left as it is
