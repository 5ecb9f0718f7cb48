"""The demo catalog's drawings, specs and rendering."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from recsys.demo.art import (
    ARTICLE_TYPES,
    BRANDS,
    COLOURS,
    PATTERNS,
    SEASONS,
    USAGES,
    draw_product,
    generate_catalog,
    render_catalog,
)

SPEC_KEYS = {"item_id", "title", "description", "gender", "master_category", "sub_category",
             "article_type", "base_colour", "pattern", "secondary_colour", "brand", "season",
             "usage", "year", "price"}


def _product_share(img: Image.Image, threshold: int) -> float:
    """Share of pixels that differ clearly from the background of their row (left edge)."""
    a = np.asarray(img, np.int16)
    return float((np.abs(a - a[:, :1, :]).max(axis=2) > threshold).mean())


@pytest.mark.parametrize("article_type", sorted(ARTICLE_TYPES))
def test_every_article_type_draws_a_product_on_a_light_background(article_type):
    for colour in ("Red", "White", "Black"):
        img = draw_product(article_type, colour, "Solid", size=96, seed=1)
        assert img.mode == "RGB" and img.size == (96, 96)
        a = np.asarray(img)
        for corner in (a[:4, :4], a[:4, -4:], a[-4:, :4], a[-4:, -4:]):
            assert corner.min() > 200
        if colour == "White":       # outline and shading keep white products visible
            assert _product_share(img, 12) > 0.15, article_type
        else:
            assert 0.15 <= _product_share(img, 40) <= 0.85, (article_type, colour)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_every_pattern_draws(pattern):
    img = draw_product("Dresses", "Navy Blue", pattern, "White", size=64, seed=2)
    assert img.size == (64, 64)
    if pattern != "Solid":
        solid = draw_product("Dresses", "Navy Blue", "Solid", "White", size=64, seed=2)
        assert not np.array_equal(np.asarray(img), np.asarray(solid))


def test_drawing_is_deterministic_and_seeded():
    args = ("Shirts", "Red", "Checked", "White")
    first = np.asarray(draw_product(*args, size=64, seed=5))
    assert np.array_equal(first, np.asarray(draw_product(*args, size=64, seed=5)))
    assert not np.array_equal(first, np.asarray(draw_product(*args, size=64, seed=6)))


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="article type"):
        draw_product("Spaceships", "Red", "Solid")
    with pytest.raises(ValueError, match="colour"):
        draw_product("Tshirts", "Ultraviolet", "Solid")
    with pytest.raises(ValueError, match="pattern"):
        draw_product("Tshirts", "Red", "Paisley")


def test_catalog_specs_are_complete_varied_and_deterministic():
    specs = generate_catalog(n_items=120, seed=3)
    assert specs == generate_catalog(n_items=120, seed=3)
    assert specs != generate_catalog(n_items=120, seed=4)
    assert len(specs) == 120
    assert len({s["item_id"] for s in specs}) == 120
    assert {s["article_type"] for s in specs} == set(ARTICLE_TYPES)
    assert len({s["base_colour"] for s in specs}) >= 10
    assert len({s["pattern"] for s in specs}) == len(PATTERNS)
    assert len({s["description"] for s in specs}) == 120
    for s in specs:
        assert set(s) == SPEC_KEYS
        art = ARTICLE_TYPES[s["article_type"]]
        assert s["item_id"].startswith("D") and s["item_id"][1:].isdigit()
        assert s["title"].startswith(s["brand"]) and art.label in s["title"]
        assert s["gender"] in art.genders and s["gender"] in s["title"]
        assert (s["master_category"], s["sub_category"]) == (art.master_category,
                                                              art.sub_category)
        assert s["pattern"] in art.patterns and s["base_colour"] in COLOURS
        assert (s["secondary_colour"] is None) == (s["pattern"] == "Solid")
        assert s["secondary_colour"] != s["base_colour"]
        assert s["brand"] in BRANDS and s["season"] in SEASONS and s["usage"] in USAGES
        assert 2019 <= s["year"] <= 2025 and isinstance(s["year"], int)
        assert isinstance(s["price"], float) and s["price"] > 0
        assert s["description"].count(".") >= 1 and len(s["description"]) > 40


def test_small_catalogs_and_prices_follow_article_types():
    assert [s["item_id"] for s in generate_catalog(n_items=3)] == ["D0001", "D0002", "D0003"]
    specs = generate_catalog(n_items=400, seed=0)
    mean = {t: np.mean([s["price"] for s in specs if s["article_type"] == t])
            for t in ("Flip Flops", "Jackets")}
    assert mean["Flip Flops"] < mean["Jackets"]
    assert {s["pattern"] for s in specs if s["article_type"] in ("Watches", "Sunglasses")} \
        == {"Solid"}


def test_render_catalog_writes_jpegs_and_reports_progress(tmp_path):
    specs = generate_catalog(n_items=5, seed=1)
    calls = []
    out = render_catalog(specs, tmp_path / "images", size=64,
                         progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 5) for i in range(1, 6)]
    assert [s["item_id"] for s in out] == [s["item_id"] for s in specs]
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == \
        sorted(f"{s['item_id']}.jpg" for s in specs)
    for spec in out:
        assert spec["image_path"].endswith(f"{spec['item_id']}.jpg")
        with Image.open(spec["image_path"]) as img:
            assert img.format == "JPEG" and img.size == (64, 64)
            img.load()
    again = render_catalog(specs, tmp_path / "images", size=64)
    assert [Image.open(s["image_path"]).tobytes() for s in again] == \
        [Image.open(s["image_path"]).tobytes() for s in out]
