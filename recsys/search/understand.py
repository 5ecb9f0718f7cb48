"""Query understanding for text search: the words of a query that name a gender, a
colour or a product type of this catalog become soft boosts on top of the text-to-product
similarity, so "black running shoes for women" ranks women's black shoes first while the
encoder still orders them (and a product missing one attribute can still come next).

Everything is recognised from the catalog's own facet values (`gender`, `base_colour`,
`article_type`), plus, for types, the words its product titles use for them (the demo's
"Casual Shoes" are titled "Sneakers"): a title word found in most titles of one type and
rarely in others', or one that nearly only one type's titles use (Myntra's "running" for
Sports Shoes, "analogue" for Watches), and a few shoppers' words a catalog's titles may not
use (`TYPE_SYNONYMS`: Myntra titles its sneakers "Casual Shoes"). A type named by its own
name wins over one a word only hints at ("navy blue formal shirt": Shirts, not Formal
Shoes). A query that names a type whose products are nearly all one gender, and no gender,
prefers that gender softly ("red summer dress": women's red tops before a men's red shirt). A small table of English gender words ("woman", "ladies", "boy", "kids")
maps onto the catalog's gender values. Matching is per word, singular or plural, so
"t-shirts" finds "Tshirts" and "shoes" finds "Casual Shoes" and "Sports Shoes" (a partial
match, boosted less than a full one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pandas as pd

from recsys.data.attributes import GENDER_WORDS

FACETS = {"gender": "gender", "colour": "base_colour", "type": "article_type"}
BOOSTS = {"type": 3.0, "gender": 1.5, "colour": 1.0}
"""Score added for a full match per attribute, in units of the spread (standard deviation) of
the query's scores over its candidate pool, so a boost means as much on any encoder's scale;
a partial match (only the head word: "shoes" for Casual and Sports Shoes, "blue" for Navy
Blue) gets `PARTIAL` of it. A type is usually named by its head word alone, so a partial type
match counts in full."""
PARTIAL = {"type": 1.0, "gender": 0.6, "colour": 0.6}
UNISEX_SHARE = 0.5
"""A unisex product gets this share of the gender boost: it suits everyone, but a query that
says "for women" prefers women's products."""
TITLE_SHARE = 0.8       # a title word names a type when most of its titles have it...
OTHER_SHARE = 0.05      # ...and few titles of other types do
IMPLIED_GENDER = 0.9    # a type whose products are this much one gender implies it
HINT_PRECISION = 0.85   # or when nearly all titles that use it are of that type...
HINT_MIN_TITLES = 10    # ...and enough of them do ("running" -> Sports Shoes, "analogue" ->
                        # Watches on Myntra)
TYPE_SYNONYMS: dict[str, tuple[str, ...]] = {
    "sneaker": ("Casual Shoes", "Sports Shoes"), "trainer": ("Sports Shoes",),
    "running": ("Sports Shoes",), "jogging": ("Sports Shoes",),
    "tee": ("Tshirts",), "pant": ("Trousers",), "purse": ("Handbags", "Wallets", "Clutches"),
    "sandal": ("Sandals", "Sports Sandals"), "flipflop": ("Flip Flops",),
    "spectacle": ("Sunglasses",), "shade": ("Sunglasses",), "hoodie": ("Sweatshirts",),
}
"""Shoppers' words for product types that catalogs' titles may not use (Myntra titles
its sneakers "Casual Shoes"), each mapped to the type names it may mean; only the names a
catalog has are used."""


def words(text: str) -> list[str]:
    """Lower-case singular words, hyphens dropped ("T-Shirts" -> ["tshirt"])."""
    out = []
    for w in re.findall(r"[a-z0-9']+", str(text).lower().replace("-", "")):
        w = w.replace("'s", "").replace("'", "")
        if len(w) > 3 and w.endswith("es") and w[:-2].endswith(("ss", "sh", "ch", "x")):
            w = w[:-2]
        elif len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
            w = w[:-1]
        if w:
            out.append(w)
    return out


_GENDER = {words(k)[0]: v for k, v in GENDER_WORDS.items()}


@dataclass
class QueryAttributes:
    """What a query asks for: per attribute, the catalog values it names fully (all their
    words in the query) and partially (their last word only)."""

    full: dict[str, set[str]] = field(default_factory=dict)
    partial: dict[str, set[str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return any(self.full.values()) or any(self.partial.values())

    def describe(self) -> dict[str, list[str]]:
        return {a: sorted(self.full.get(a) or self.partial.get(a) or ())
                for a in FACETS if self.full.get(a) or self.partial.get(a)}


class Vocabulary:
    """The catalog's facet values and type words, for `understand`."""

    def __init__(self, items: pd.DataFrame) -> None:
        self.values: dict[str, dict[str, list[str]]] = {}
        for attr, column in FACETS.items():
            if column in items:
                vals = [v for v in items[column].dropna().astype(str).unique() if v.strip()]
                self.values[attr] = {v: words(v) for v in vals}
        self.type_words: dict[str, set[str]] = {}
        """Per type, the words that name it besides its own name: title words (most of its
        titles and few others use them; or nearly only its titles do) and `TYPE_SYNONYMS`."""
        if "article_type" in items and "title" in items:
            self._learn_type_words(items)
        self.type_gender: dict[str, str] = {}
        """Types whose products are nearly all one gender (unisex ones aside): a query naming
        such a type and no gender prefers that gender ("red summer dress": women's)."""
        if "article_type" in items and "gender" in items:
            frame = items[["article_type", "gender"]].dropna().astype(str)
            frame = frame[frame["gender"].str.lower() != "unisex"]
            for kind, genders in frame.groupby("article_type")["gender"]:
                counts = genders.value_counts()
                if len(genders) and counts.iloc[0] >= IMPLIED_GENDER * len(genders):
                    self.type_gender[str(kind)] = str(counts.index[0])
        for word, kinds in TYPE_SYNONYMS.items():
            for kind in kinds:
                if kind in self.values.get("type", {}):
                    self.type_words.setdefault(kind, set()).add(word)

    def _learn_type_words(self, items: pd.DataFrame) -> None:
        frame = items[["article_type", "title"]].dropna()
        if frame.empty:
            return
        bags = [set(words(t)) for t in frame["title"]]
        kinds = frame["article_type"].astype(str).to_numpy()
        total: dict[str, int] = {}
        per: dict[str, dict[str, int]] = {}
        for kind, bag in zip(kinds, bags):
            for w in bag:
                total[w] = total.get(w, 0) + 1
                per.setdefault(kind, {})[w] = per.get(kind, {}).get(w, 0) + 1
        counts = pd.Series(kinds).value_counts()
        colour_words = {w for ws in self.values.get("colour", {}).values() for w in ws}
        gender_words = set(_GENDER) | {w for ws in self.values.get("gender", {}).values()
                                            for w in ws}
        for kind, n in counts.items():
            for w, c in per.get(kind, {}).items():
                others = total[w] - c
                common = c >= TITLE_SHARE * n and others <= OTHER_SHARE * (len(kinds) - n)
                telling = c >= HINT_MIN_TITLES and c >= HINT_PRECISION * total[w]
                if ((common or telling) and w not in colour_words and w not in gender_words
                        and len(w) > 2):
                    self.type_words.setdefault(str(kind), set()).add(w)

    def understand(self, query: str) -> QueryAttributes:
        """The catalog values the query's words name (see the module docstring)."""
        said = words(query)
        bag = set(said)
        found = QueryAttributes()
        for attr, values in self.values.items():
            full, partial, titled = set(), set(), set()
            for value, ws in values.items():
                if ws and set(ws) <= bag:
                    full.add(value)
                elif ws and ws[-1] in bag and len(ws) > 1:
                    partial.add(value)
                if attr == "type" and self.type_words.get(value, set()) & bag:
                    titled.add(value)
            if attr == "type" and not full:
                # a type named by its own name wins ("formal shirt": Shirts, not the Formal
                # Shoes that "formal" hints at); otherwise the words that hint at one
                full = titled
            if attr == "gender":
                asked = {_GENDER[w] for w in said if w in _GENDER}
                for value, ws in values.items():
                    norm = _GENDER.get(ws[0], ws[0]) if ws else ""
                    if norm in asked or (norm in ("boys", "girls") and "kids" in asked):
                        full.add(value)
            if attr == "colour" and full:       # "navy blue" named: not every "blue" too
                partial = set()
                full = {v for v in full if not any(set(values[v]) < set(values[o])
                                                   for o in full)}
            if attr == "type" and full:
                partial = set()
            found.full[attr], found.partial[attr] = full, partial
        types = found.full.get("type") or set()
        implied = {self.type_gender.get(t) for t in types}
        if types and not found.full.get("gender") and len(implied) == 1 and None not in implied:
            found.partial["gender"] = implied      # a softer boost than a gender said
        return found


def boosts(attributes: QueryAttributes, rows: pd.DataFrame,
           weights: Mapping[str, float] | None = None, unit: float | None = None) -> np.ndarray:
    """The score added to each product row (gender, base_colour, article_type columns) for
    the attributes it has of those the query names: `weights` times `unit` (the spread of the
    query's scores; 1 when not given)."""
    weights = dict(BOOSTS if weights is None else weights)
    out = np.zeros(len(rows), dtype=np.float32)
    if unit is None:
        unit = 1.0
    for attr, column in FACETS.items():
        full, partial = attributes.full.get(attr, set()), attributes.partial.get(attr, set())
        if not (full or partial) or column not in rows:
            continue
        values = rows[column].astype(str).to_numpy()
        gain = np.where(np.isin(values, list(full)), 1.0,
                        np.where(np.isin(values, list(partial)), PARTIAL[attr], 0.0))
        if attr == "gender":
            gain = np.where((gain == 0) & (np.char.lower(values.astype(str)) == "unisex"),
                            UNISEX_SHARE, gain)
        out += np.float32(weights[attr] * unit) * gain.astype(np.float32)
    return out


def matching_ids(attributes: QueryAttributes, rows: pd.DataFrame) -> list[str]:
    """The item_ids of `rows` that have every attribute the query names (full or partial;
    unisex products count for a gender)."""
    keep = np.ones(len(rows), dtype=bool)
    for attr, column in FACETS.items():
        wanted = attributes.full.get(attr, set()) | attributes.partial.get(attr, set())
        if not wanted or column not in rows:
            continue
        values = rows[column].astype(str)
        ok = values.isin(wanted).to_numpy().copy()
        if attr == "gender":
            ok |= values.str.lower().eq("unisex").to_numpy()
        keep &= ok
    return rows["item_id"].astype(str)[keep].tolist()


def boosted(pools, rows: pd.DataFrame, attributes: QueryAttributes, k: int):
    """The best `k` of several `Hits` of one query (pooled, each item once) by their score plus
    the attribute boosts; the returned `Hits` carry the boosted scores (parts unchanged)."""
    from recsys.search.hits import Hits

    seen: dict[str, tuple] = {}
    for hits in pools:
        for j, item in enumerate(hits.item_ids):
            if item not in seen:
                seen[item] = (hits, j)
    if not seen:
        return pools[0]
    ids = list(seen)
    unique = rows.assign(item_id=rows["item_id"].astype(str)).drop_duplicates("item_id")
    frame = unique.set_index("item_id").reindex(ids).reset_index()
    base = np.array([seen[i][0].scores[seen[i][1]] for i in ids], dtype=np.float32)
    spread = float(np.std(pools[-1].scores)) if len(pools[-1]) > 1 else 0.0
    total = base + boosts(attributes, frame, unit=spread or 0.01)
    order = np.argsort(-total, kind="stable")[:k]
    names = list(dict.fromkeys(m for h in pools for m in h.parts))
    return Hits(np.array([seen[ids[o]][0].slots[seen[ids[o]][1]] for o in order], np.int64),
                [ids[o] for o in order], total[order].astype(np.float32),
                {m: np.array([seen[ids[o]][0].part(m)[seen[ids[o]][1]] for o in order],
                             np.float32) for m in names}, pools[0].method)
