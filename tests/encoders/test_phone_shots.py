"""Phone shots of catalog photos: reproducible, phone-sized, the product kept."""

from __future__ import annotations

import numpy as np

from recsys.encoders.phone_shots import (
    PhoneShotStyle,
    phone_shot,
    product_mask,
    shot_rng,
)

from .test_crop import studio_photo


def test_phone_shots_are_reproducible_phone_sized_and_keep_the_product():
    a = phone_shot(studio_photo(), shot_rng(0, "item-1"))
    b = phone_shot(studio_photo(), shot_rng(0, "item-1"))
    c = phone_shot(studio_photo(), shot_rng(1, "item-1"))
    style = PhoneShotStyle()
    assert a.size == (style.width, style.height) and a.mode == "RGB"
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))
    # some pixels are still the product's red; the white studio background is gone
    arr = np.asarray(a).astype(int)
    red = (arr[..., 0] > 110) & (arr[..., 1] < 80) & (arr[..., 2] < 90)
    assert red.mean() > 0.01
    mask = product_mask(studio_photo())
    assert mask[100, 100] > 0.9 and mask[5, 5] < 0.1
