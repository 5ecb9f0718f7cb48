"""Browsing a catalog: facets, filters, keyword match and CLIP search joined with the items.

Plain pandas on the items table (a few thousand rows filter in milliseconds), so the app and
the CLI show the same products for the same filters.
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from .index import ItemIndex, SearchResult

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


def facet_values(items: pd.DataFrame, column: str, limit: int | None = None) -> list[str]:
    """Distinct non-empty values of a facet, most frequent first."""
    if column not in items or items.empty:
        return []
    counts = items[column].dropna().astype(str)
    counts = counts[counts.str.strip() != ""].value_counts()
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


def with_items(items: pd.DataFrame, result: SearchResult) -> pd.DataFrame:
    """Search results (rank, score, per-modality scores) joined with their item rows."""
    hits = pd.DataFrame(result.to_records())
    if hits.empty:
        return items.head(0).assign(rank=[], score=[], image_score=[], text_score=[])
    hits["rank"] = np.arange(1, len(hits) + 1)
    out = hits.merge(items, on="item_id", how="left")
    return out.sort_values("rank").reset_index(drop=True)


def rank_subset(index: ItemIndex, candidates: Iterable[str], image: np.ndarray | None = None,
                text: np.ndarray | None = None, image_weight: float = 0.5, k: int = 48
                ) -> SearchResult:
    """CLIP search restricted to `candidates` (the filtered catalog)."""
    allowed = {str(c) for c in candidates}
    exclude = [i for i in index.item_ids if i not in allowed]
    return index.search(image=image, text=text, k=k, image_weight=image_weight,
                        exclude=exclude)
