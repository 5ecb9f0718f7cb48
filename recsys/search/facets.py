"""Browsing a catalog: facets, filters, keyword match and CLIP search joined with the items.

Plain pandas on the items table (a few thousand rows filter in milliseconds), so the app and
the CLI show the same products for the same filters. For large catalogs `FacetMasks` keeps the
facet columns as small integer codes aligned with a search index's items, so a filter is a
vectorised comparison (about a millisecond per facet at a million items) and reaches the
search as a boolean mask (`ItemIndex.search(..., allowed_mask=...)`).
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from recsys.search.hits import Hits
from recsys.search.item_index import ItemIndex

FACETS: dict[str, str] = {
    "gender": "Gender",
    "master_category": "Category",
    "article_type": "Type",
    "base_colour": "Colour",
    "season": "Season",
    "usage": "Usage",
}
"""Item columns offered as filters, with their labels."""

KEYWORD_COLUMNS = ("title", "description", "brand", "article_type", "base_colour", "item_id")

DEFAULT_MASK_COLUMNS = (*FACETS, "brand")
"""Columns `FacetMasks` encodes unless told otherwise: the facets and the brand."""


def facet_values(items: pd.DataFrame, column: str, limit: int | None = None) -> list[str]:
    """Distinct non-empty values of a facet, most frequent first (ties by value)."""
    if column not in items or items.empty:
        return []
    counts = items[column].dropna().astype(str)
    counts = counts[counts.str.strip() != ""].value_counts()
    # ties by value, as the database counts them (`Store.item_facet_values`)
    counts = counts.sort_index(kind="stable").sort_values(ascending=False, kind="stable")
    values = list(counts.index)
    return values[:limit] if limit else values


def available_facets(items: pd.DataFrame) -> dict[str, str]:
    """Facets that have at least two values in this catalog (others cannot filter anything)."""
    return {c: label for c, label in FACETS.items() if len(facet_values(items, c)) >= 2}


def keyword_mask(items: pd.DataFrame, text: str | None) -> np.ndarray:
    """Rows where every word of `text` occurs (case-insensitive) in some text column."""
    mask = np.ones(len(items), dtype=bool)
    words = [w for w in re.split(r"\s+", (text or "").strip().lower()) if w]
    if not words:
        return mask
    cols = [c for c in KEYWORD_COLUMNS if c in items]
    haystack = items[cols].astype(str).fillna("").agg(" ".join, axis=1).str.lower()
    for word in words:
        mask &= haystack.str.contains(word, regex=False).to_numpy()
    return mask


def filter_items(items: pd.DataFrame, filters: Mapping[str, Sequence[str]] | None = None,
                 text: str | None = None, price: tuple[float, float] | None = None
                 ) -> pd.DataFrame:
    """Items matching every chosen facet value list, the keywords and the price range."""
    mask = keyword_mask(items, text)
    for column, values in (filters or {}).items():
        if values and column in items:
            mask &= items[column].astype(str).isin([str(v) for v in values]).to_numpy()
    if price is not None and "price" in items:
        p = items["price"]
        mask &= (p.isna() | ((p >= price[0]) & (p <= price[1]))).to_numpy()
    return items[mask]


def item_label(row: Mapping) -> str:
    """A short human label: the title, else the type and colour, else the id."""
    title = row.get("title")
    if isinstance(title, str) and title.strip():
        return title.strip()
    parts = [str(row[c]) for c in ("base_colour", "article_type") if isinstance(row.get(c), str)]
    return " ".join(parts) if parts else f"item {row.get('item_id')}"


def with_items(items: pd.DataFrame, result: Hits) -> pd.DataFrame:
    """Search results (rank, score, per-modality scores) joined with their item rows."""
    hits = pd.DataFrame(result.to_records())
    if hits.empty:
        return items.head(0).assign(rank=[], score=[], image_score=[], text_score=[])
    hits["rank"] = np.arange(1, len(hits) + 1)
    if len(items) > 4 * len(hits):
        # a 1M-row catalog: merging would hash every item id (1.7 s); pick the rows first
        items = items[items["item_id"].isin(hits["item_id"])]
    out = hits.merge(items, on="item_id", how="left")
    return out.sort_values("rank").reset_index(drop=True)


class FacetMasks:
    """Facet and price columns of a catalog as arrays aligned with an item order (usually
    `ItemIndex.item_ids`), precomputed once so each filter costs one vectorised comparison.

    `mask(filters, price)` takes the same arguments as `filter_items` (facet column -> chosen
    values, a (low, high) price range; items without a price pass a price filter) and returns
    a boolean array over the items. Items of `item_ids` missing from `items` match no facet
    value (and pass when no filter is set). `columns`: the columns to encode (default
    `DEFAULT_MASK_COLUMNS`; those missing from `items` are skipped, see `columns`).
    """

    def __init__(self, items: pd.DataFrame, item_ids: Sequence[str] | None = None,
                 columns: Sequence[str] | None = None):
        if item_ids is None:
            frame = items.reset_index(drop=True)
            self.item_ids = [str(i) for i in frame["item_id"]]
            rows = np.arange(len(frame))
        else:
            frame = items.reset_index(drop=True)
            self.item_ids = [str(i) for i in item_ids]
            rows = pd.Index(frame["item_id"].astype(str)).get_indexer(self.item_ids)
        self._missing = rows < 0
        take = np.where(self._missing, 0, rows)
        self._codes: dict[str, tuple[np.ndarray, dict[str, int]]] = {}
        for column in DEFAULT_MASK_COLUMNS if columns is None else columns:
            if column in frame and column not in self._codes and column != "price":
                cat = pd.Categorical(frame[column].astype("string"))
                kind = np.int16 if len(cat.categories) < 2**15 else np.int32
                codes = cat.codes.astype(kind)[take] if len(frame) else \
                    np.full(len(self.item_ids), -1, kind)
                codes[self._missing] = -1
                self._codes[column] = (codes, {str(c): i for i, c in
                                               enumerate(cat.categories)})
        self._price = None
        if "price" in frame:
            price = frame["price"].to_numpy(dtype=np.float64, na_value=np.nan)
            self._price = price[take] if len(frame) else np.full(len(self.item_ids), np.nan)
            self._price[self._missing] = np.nan
            self._no_price = np.isnan(self._price)                 # items without a price pass

    def __len__(self) -> int:
        return len(self.item_ids)

    @property
    def columns(self) -> list[str]:
        return list(self._codes)

    def mask(self, filters: Mapping[str, Sequence[str]] | None = None,
             price: tuple[float, float] | None = None) -> np.ndarray:
        """Items matching every chosen facet value list and the price range."""
        mask = np.ones(len(self.item_ids), dtype=bool)
        for column, values in (filters or {}).items():
            if not values or column not in self._codes:
                continue
            codes, categories = self._codes[column]
            wanted = [categories[str(v)] + 1 for v in values if str(v) in categories]
            lookup = np.zeros(len(categories) + 1, dtype=bool)   # slot 0: missing value
            lookup[wanted] = True
            mask &= lookup[codes + 1]                           # one gather: ~1 ms at 1M
        if price is not None and self._price is not None:
            inside = self._price >= price[0]
            inside &= self._price <= price[1]
            inside |= self._no_price
            mask &= inside
        return mask


def rank_subset(index: ItemIndex, candidates: Iterable[str] | np.ndarray,
                image: np.ndarray | None = None, text: np.ndarray | None = None,
                image_weight: float = 0.5, k: int = 48) -> Hits:
    """CLIP search restricted to `candidates`: item ids (the filtered catalog) or a boolean
    mask over `index.item_ids` (e.g. from `FacetMasks.mask`), applied inside the search."""
    if isinstance(candidates, np.ndarray) and candidates.dtype == bool:
        mask = candidates
    else:
        mask = index.mask_for(candidates)
    return index.search(image=image, text=text, k=k, image_weight=image_weight,
                        allowed_mask=mask)
