"""Shared helpers for the encoder tests: a tiny drawn catalog of coloured shapes (the `frozen`
and `shapes_store` fixtures that use them are in conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from PIL import Image, ImageDraw

from recsys.store import Store

COLOURS = {"Red": (220, 30, 30), "Blue": (30, 60, 220), "Green": (30, 170, 60),
           "Black": (20, 20, 20)}
SHAPES = {"Circle Badges": "ellipse", "Square Tiles": "rectangle", "Triangle Flags": "polygon"}


def draw_product(shape: str, rgb: tuple[int, int, int], size: int = 96) -> Image.Image:
    """A coloured shape on white: enough structure for the encoders to tell items apart."""
    img = Image.new("RGB", (size, size), (255, 255, 255))
    d = ImageDraw.Draw(img)
    box = (size // 6, size // 6, size - size // 6, size - size // 6)
    if shape == "ellipse":
        d.ellipse(box, fill=rgb)
    elif shape == "rectangle":
        d.rectangle(box, fill=rgb)
    else:
        d.polygon([(size // 2, size // 8), (size - size // 8, size - size // 8),
                   (size // 8, size - size // 8)], fill=rgb)
    return img


def make_shapes_catalog(folder: Path, copies: int = 2) -> Path:
    """`copies` x 4 colours x 3 shapes products (24 by default) with photos and a CSV."""
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    rows = []
    for c in range(copies):
        for colour, rgb in COLOURS.items():
            for category, shape in SHAPES.items():
                item_id = f"{colour.lower()}-{shape[:3]}-{c}"
                draw_product(shape, tuple(max(0, v - 25 * c) for v in rgb)).save(
                    images / f"{item_id}.png")
                rows.append({"item_id": item_id, "title": f"{colour} {shape} number {c}",
                             "article_type": category, "base_colour": colour,
                             "gender": "Unisex", "description": f"a {colour.lower()} {shape}",
                             "image_path": f"{item_id}.png"})
    csv = folder / "catalog.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return csv


def import_shapes(store: Store, folder: Path, copies: int = 2, dataset: str = "shapes") -> str:
    from recsys.data.catalog_import import import_catalog

    csv = make_shapes_catalog(folder, copies)
    rep = import_catalog(store, csv, folder / "images", dataset=dataset)
    assert rep.imported == copies * 12
    return dataset
