"""`_Drawing.paint`'s in-place shading gives the pixels of the plain formula it replaced (light
gradient from the top left, darker edges, outline), and the cheaper 2x supersampling keeps the
photos close to the 3x ones."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from recsys.demo import art
from recsys.demo.art import FABRIC, _Drawing, draw_product


def _reference_paint(c: _Drawing, mask, fill, outline: bool, depth: float) -> None:
    """The shading as first written (five passes over three channels)."""
    ss = art._SUPERSAMPLE
    bbox = mask.img.getbbox()
    pad = int(0.02 * c.res)
    x0, y0 = max(bbox[0] - pad, 0), max(bbox[1] - pad, 0)
    x1, y1 = min(bbox[2] + pad, c.res), min(bbox[3] + pad, c.res)
    m = mask.img.crop((x0, y0, x1, y1))
    h, w = y1 - y0, x1 - x0
    if fill == FABRIC:
        col = np.asarray(c._pattern_image().crop((x0, y0, x1, y1)), np.float32)
    else:
        col = np.empty((h, w, 3), np.float32)
        col[:] = fill
    radius = max(1.0, min(0.03 * c.res, 0.18 * min(w, h)))
    coarse = m.reduce(ss).filter(ImageFilter.GaussianBlur(radius / ss))
    edge = np.asarray(coarse.resize(m.size, Image.BILINEAR), np.float32) / 255.0
    edge = np.clip((edge - 0.5) * 2.2, 0.0, 1.0)
    xs = np.linspace(0.0, 0.45, w, dtype=np.float32)[None, :]
    ys = np.linspace(0.0, 0.55, h, dtype=np.float32)[:, None]
    light = depth * (0.34 * (0.5 - xs - ys) - 0.26 * (1.0 - edge))
    lift, shade = np.maximum(light, 0.0)[..., None], np.minimum(light, 0.0)[..., None]
    out = col * (1.0 + shade - lift) + 255.0 * lift
    if outline:
        fine = np.asarray(m.filter(ImageFilter.GaussianBlur(0.0045 * c.res)),
                          np.float32) / 255.0
        out *= 1.0 - 0.5 * np.clip((0.9 - fine) / 0.35, 0.0, 1.0)[..., None]
    tile = Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), "RGB")
    c.layer.paste(tile, (x0, y0), m)


@pytest.mark.parametrize("fill,outline,depth", [(FABRIC, True, 1.0), ((248, 248, 246), True, 1.0),
                                                ((38, 38, 42), False, 0.6),
                                                (FABRIC, False, 1.8)])
def test_paint_matches_the_reference_shading(fill, outline: bool, depth: float) -> None:
    args = ("Shirts", "Red", "Checked", "White", 64, 7)
    fast, slow = _Drawing(*args), _Drawing(*args)
    for d in (fast, slow):
        mask = d.mask().poly([(0.2, 0.15), (0.8, 0.2), (0.75, 0.85), (0.25, 0.8)])
        mask.ellipse((0.05, 0.05, 0.35, 0.35))
        if d is fast:
            d.paint(mask, fill, outline=outline, depth=depth)
        else:
            _reference_paint(d, mask, fill, outline, depth)
    a = np.asarray(fast.layer, np.int16)
    b = np.asarray(slow.layer, np.int16)
    assert a[..., 3].max() == 255                      # something was painted
    assert np.abs(a - b).max() <= 1                    # float rounding only


def test_two_x_supersampling_stays_close_to_three_x(monkeypatch) -> None:
    looks = [("Tshirts", "Navy Blue", "Striped", "White"), ("Heels", "Red", "Solid", None),
             ("Dresses", "Yellow", "Polka Dot", "Navy Blue"), ("Watches", "Brown", "Solid", None)]
    assert art._SUPERSAMPLE == 2
    now = [np.asarray(draw_product(*look, size=96, seed=3), np.float32) for look in looks]
    monkeypatch.setattr(art, "_SUPERSAMPLE", 3)
    before = [np.asarray(draw_product(*look, size=96, seed=3), np.float32) for look in looks]
    for a, b in zip(now, before):
        assert np.abs(a - b).mean() < 4.0              # measured ~1.2 on 60 catalog photos
