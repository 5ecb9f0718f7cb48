"""The crop to the product: found on a textured table or background, studio and featureless
photos left alone."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from recsys.encoders.crop import crop_to_product, is_studio_photo, product_box


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


def on_texture(product_box_xyxy=(200, 250, 330, 450), size=(480, 640)):
    rng = np.random.default_rng(3)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    wood = 120 + 30 * np.sin(xx / 9.0 + 3 * np.sin(yy / 40.0))
    bg = np.dstack([wood, wood * 0.8, wood * 0.6]) + rng.normal(0, 4, (h, w, 3))
    img = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8))
    ImageDraw.Draw(img).ellipse(product_box_xyxy, fill=(30, 60, 200))
    return img


def test_crop_finds_the_product_on_a_textured_background():
    box = product_box(on_texture())
    assert box is not None
    x0, y0, x1, y1 = box
    # the crop contains the product and is much smaller than the photo
    assert x0 <= 200 and y0 <= 250 and x1 >= 330 and y1 >= 450
    assert (x1 - x0) * (y1 - y0) < 0.25 * 480 * 640
    out = crop_to_product(on_texture())
    assert out.size == (x1 - x0, y1 - y0) and out.mode == "RGB"


def studio_photo(size=224):
    img = Image.new("RGB", (size, size), (255, 255, 255))
    ImageDraw.Draw(img).rectangle((60, 40, 160, 190), fill=(180, 30, 40))
    return img


def test_crop_leaves_studio_photos_and_featureless_photos_alone():
    studio = studio_photo()
    assert is_studio_photo(studio)
    assert crop_to_product(studio).size == studio.size          # identical photo stays first
    flat = Image.new("RGB", (300, 200), (90, 120, 150))
    assert crop_to_product(flat).size == flat.size
    grey = Image.new("LA", (64, 64), (128, 255))                # any mode comes back as RGB
    assert crop_to_product(grey).mode == "RGB"
