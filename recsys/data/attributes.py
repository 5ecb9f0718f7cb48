"""Catalog attributes a shopper would name: article type, colour, brand, usage, price band.

One place for the attributes that the shopper simulator draws tastes over and that the
attribute-level explanations (`recsys.explain.attribution`) weigh:

* **brand**: the catalog's brand column when it has one, else inferred from the product names.
  Myntra names read "<brand> <gender word> <description>" ("Reid & Taylor Men Solid Grey Socks",
  "United Colors of Benetton Women Blue Top"), so the words before the first gender word are the
  brand; a name without a gender word takes the longest brand seen elsewhere that it starts with,
  else its first word. Spellings that differ only in case are merged into the most frequent one
  ("United Colors Of Benetton" -> "United Colors of Benetton").
* **price band**: four bands cut at the catalog's price quartiles ("₹1,075-1,749"); no band
  when the catalog has no prices (Myntra).

Plain pandas / numpy, no store.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

GENDER_WORDS = frozenset({"men", "women", "unisex", "boys", "girls", "kids", "boy", "girl",
                          "men's", "women's", "mens", "womens", "girl's", "boy's", "infant",
                          "infants", "baby", "babies"})
"""Words that end the brand part of a product name."""

MAX_BRAND_WORDS = 5

ATTRIBUTES: dict[str, str] = {
    "article_type": "type",
    "base_colour": "colour",
    "brand": "brand",
    "usage": "usage",
    "price_band": "price",
}
"""Attribute columns of `attribute_table`, with the word a sentence uses for each."""

PRICE_BANDS = 4


def _brand_part(title: str) -> str | None:
    """The words before the first gender word (None when there is none, or it comes first)."""
    words = title.split()
    for i, word in enumerate(words[:MAX_BRAND_WORDS + 1]):
        if word.lower().strip(".,") in GENDER_WORDS:
            return " ".join(words[:i]) if i else None
    return None


def infer_brands(titles: Iterable[str | None],
                 brands: Iterable[str | None] | None = None) -> list[str]:
    """The brand of each product: its `brands` entry when given and non-empty, else inferred
    from its name (see the module docstring); "" when there is nothing to go on."""
    titles = ["" if t is None or (isinstance(t, float) and t != t) else str(t).strip()
              for t in titles]
    given = [None] * len(titles) if brands is None else [
        b.strip() if isinstance(b, str) and b.strip() else None for b in brands]
    parts = [_brand_part(t) for t in titles]
    spellings: dict[str, Counter] = {}
    for p in parts:
        if p:
            spellings.setdefault(p.lower(), Counter())[p] += 1
    canonical = {low: c.most_common(1)[0][0] for low, c in spellings.items()}
    known = sorted(canonical, key=lambda b: -len(b.split()))        # longest first
    out = []
    for title, brand, part in zip(titles, given, parts):
        if brand:
            out.append(brand)
        elif part:
            out.append(canonical[part.lower()])
        else:
            low = title.lower()
            match = next((b for b in known if low == b or low.startswith(b + " ")), None)
            out.append(canonical[match] if match else (title.split()[0] if title else ""))
    return out


def price_bands(prices: Sequence[float] | pd.Series, n: int = PRICE_BANDS) -> list[str | None]:
    """A band label per price ("₹1,075-1,749"), cut at the quantiles of the known prices; None
    for a missing price, and for every item when fewer than `n` prices are known."""
    p = pd.to_numeric(pd.Series(list(prices), dtype="object"), errors="coerce").to_numpy(float)
    known = p[np.isfinite(p)]
    if len(known) < n or np.unique(known).size < 2:
        return [None] * len(p)
    edges = np.unique(np.quantile(known, np.linspace(0, 1, n + 1)))
    labels = [f"₹{lo:,.0f}-{hi:,.0f}" for lo, hi in zip(edges[:-1], edges[1:])]
    band = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, len(labels) - 1)
    return [labels[b] if np.isfinite(v) else None for b, v in zip(band, p)]


def attribute_table(items: pd.DataFrame) -> pd.DataFrame:
    """One row per item (`item_id` plus the `ATTRIBUTES` columns it has: strings, None when
    unknown); an attribute with fewer than two distinct values is left out (it cannot tell
    items apart)."""
    out = pd.DataFrame({"item_id": items["item_id"].astype(str).to_numpy()})
    for column in ATTRIBUTES:
        if column == "brand":
            values = infer_brands(items["title"] if "title" in items else [None] * len(items),
                                  items["brand"] if "brand" in items else None)
        elif column == "price_band":
            values = price_bands(items["price"]) if "price" in items else [None] * len(items)
        elif column in items:
            values = [v.strip() if isinstance(v, str) and v.strip() else None
                      for v in items[column]]
        else:
            continue
        values = [v if v else None for v in values]
        if len({v for v in values if v is not None}) >= 2:
            out[column] = values
    return out


# -- whom a product is for ----------------------------------------------------------------------
GENDER_WORDS = {"woman": "women", "women": "women", "ladies": "women", "lady": "women",
                "female": "women", "womens": "women", "her": "women",
                "man": "men", "men": "men", "mens": "men", "male": "men", "gents": "men",
                "him": "men", "boy": "boys", "boys": "boys", "girl": "girls", "girls": "girls",
                "kid": "kids", "kids": "kids", "children": "kids", "child": "kids"}
"""English words for whom a product is for, as catalogs and shoppers' queries write them."""
PEOPLE = ("men", "women", "boys", "girls")
MALE_GENDERS = frozenset(w for w, g in GENDER_WORDS.items() if g in ("men", "boys"))
FEMALE_GENDERS = frozenset(w for w, g in GENDER_WORDS.items() if g in ("women", "girls"))


def people_gender(value) -> str | None:
    """A catalog gender as one of men/women/boys/girls, None for unisex, kids or unknown."""
    g = GENDER_WORDS.get(str(value or "").strip().lower())
    return g if g in PEOPLE else None


# -- an item's categories (the new-items protocol's attribute baselines) -------------------------
CATEGORY_COLUMNS = ("article_type", "sub_category", "master_category")
"""Catalog columns that name an item's category, most specific first (the first one the
catalog fills is used)."""

_GENRES = re.compile(r"(?:^|\n|\.\s)\s*(?:genres?|categories)\s*:\s*([^\n.]+)", re.IGNORECASE)


def item_categories(items: pd.DataFrame) -> list[tuple[str, ...]]:
    """Each item's categories: the genres listed in its description ("Genres: Action,
    Comedy", as MovieLens titles are imported) plus its most specific category column that the
    catalog fills (`CATEGORY_COLUMNS`: Myntra's article type). Empty for an item with
    neither. Rows follow `items`."""
    column = next((c for c in CATEGORY_COLUMNS if c in items
                   and items[c].notna().any()), None)
    out = []
    descriptions = items["description"] if "description" in items else [None] * len(items)
    categories = items[column] if column else [None] * len(items)
    for text, category in zip(descriptions, categories):
        found: list[str] = []
        if isinstance(text, str):
            match = _GENRES.search(text)
            if match:
                found += [g.strip().lower() for g in match.group(1).split(",") if g.strip()]
        if isinstance(category, str) and category.strip():
            found.append(category.strip().lower())
        out.append(tuple(dict.fromkeys(found)))
    return out


def category_matrix(items: pd.DataFrame, item_ids: Sequence[str]) -> tuple[sp.csr_matrix, list[str]]:
    """The 0/1 matrix items x categories (`item_categories`), rows in `item_ids` order (an id
    missing from `items` gets an empty row), and the category names of its columns."""
    cats = dict(zip(items["item_id"].astype(str), item_categories(items)))
    names = sorted({c for cs in cats.values() for c in cs})
    col = {c: j for j, c in enumerate(names)}
    rows, cols = [], []
    for i, item in enumerate(item_ids):
        for c in cats.get(str(item), ()):
            rows.append(i)
            cols.append(col[c])
    matrix = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)),
                           shape=(len(item_ids), len(names)), dtype=np.float32)
    return matrix, names
