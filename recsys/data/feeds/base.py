"""The product table every catalog feed reader returns (`Feed`) and the format names."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

CATALOG_FORMATS = ("merchant", "shopify", "generic", "myntra")
INTERACTION_FORMATS = ("ga4", "shopify-orders")
FEED_COLUMNS = ("item_id", "title", "description", "gender", "master_category", "sub_category",
                "article_type", "base_colour", "brand", "price", "image_path", "extra")


@dataclass
class Feed:
    """A feed read as products: `frame` (FEED_COLUMNS, strings; indexed by the first line or
    entry of each product), `entries` read, the `bad` entries (position, reason) and
    `details` for the report (variants grouped, currencies...)."""

    frame: pd.DataFrame
    entries: int
    unit: str
    bad: list[tuple[int, str]] = field(default_factory=list)
    details: dict[str, int | str] = field(default_factory=dict)


