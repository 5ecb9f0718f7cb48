"""Shopify's products CSV export: several rows per product (`Handle`), the first with the
product's fields, the others with more variants or photos.

Read: Handle (the item id), Title, Body (HTML) (stripped to text), Vendor (brand), Type or
Product Category (article type; the category path's first step is the master category), Tags,
Variant Price (the lowest), Image Src with its Image Position (the first photo is the item's,
the others are kept in `extra`), Option1/2 values (variants), Variant SKU.
"""

from __future__ import annotations

import html
import json
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd

from recsys.data.feeds.base import FEED_COLUMNS, Feed
from recsys.data.readers import read_table
from recsys.data.report import DataImportError

BLOCK_TAGS = {"p", "br", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr",
              "table", "section"}
SKIP_TAGS = {"script", "style", "template", "noscript"}
GENDER_WORDS = {"men": "Men", "mens": "Men", "men's": "Men", "male": "Men",
                "women": "Women", "womens": "Women", "women's": "Women", "female": "Women",
                "boys": "Boys", "girls": "Girls", "unisex": "Unisex"}


class _TextOnly(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in SKIP_TAGS:
            self._skip += 1
        elif tag in BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIP_TAGS and self._skip:
            self._skip -= 1
        elif tag in BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(markup: object) -> str | None:
    """The visible text of an HTML fragment, whitespace collapsed (scripts and styles dropped)."""
    if markup is None or (isinstance(markup, float) and pd.isna(markup)):
        return None
    parser = _TextOnly()
    parser.feed(str(markup))
    parser.close()
    text = " ".join(html.unescape("".join(parser.parts)).split())
    return text or None


def _text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NA:
        return None
    text = str(value).strip()
    return text or None


def _col(frame: pd.DataFrame, *names: str) -> str | None:
    lower = {c.strip().lower(): c for c in frame.columns}
    for name in names:
        if name.lower() in lower:
            return lower[name.lower()]
    return None


def read_shopify(path: Path) -> Feed:
    frame, bad = read_table(path, sep=",")
    handle = _col(frame, "Handle")
    if handle is None:
        raise DataImportError(f"{path.name} has no Handle column, so it is not a Shopify "
                              "products export; import it with --format generic.")
    cols = {name: _col(frame, *aliases) for name, aliases in {
        "title": ("Title",), "body": ("Body (HTML)", "Body HTML"), "vendor": ("Vendor",),
        "type": ("Type",), "category": ("Product Category", "Standard Product Type"),
        "tags": ("Tags",), "price": ("Variant Price",), "sku": ("Variant SKU",),
        "image": ("Image Src",), "position": ("Image Position",),
        "option1": ("Option1 Value",), "option2": ("Option2 Value",),
        "gender": ("Google Shopping / Gender",)}.items()}

    def get(row: dict, name: str) -> str | None:
        return _text(row.get(cols[name])) if cols[name] else None

    records = frame.to_dict("records")
    lines = [int(i) for i in frame.index]
    groups: dict[str, list[int]] = {}
    for k, row in enumerate(records):
        key = _text(row.get(handle))
        groups.setdefault(f"h:{key}" if key else f"row:{k}", []).append(k)
    rows, index = [], []
    for key, members in groups.items():
        member_rows = [records[m] for m in members]
        head = next((r for r in member_rows if get(r, "title")), member_rows[0])
        images = []
        for order, r in enumerate(member_rows):
            src = get(r, "image")
            if src:
                try:
                    pos = float(get(r, "position") or "inf")
                except ValueError:
                    pos = float("inf")
                images.append((pos, order, src))
        photos = list(dict.fromkeys(src for _, _, src in sorted(images)))
        prices = []
        for r in member_rows:
            try:
                prices.append(float(get(r, "price") or "nan"))
            except ValueError:
                pass
        prices = [p for p in prices if p == p]
        category = [p.strip() for p in (get(head, "category") or "").split(">") if p.strip()]
        tags = [t.strip() for t in (get(head, "tags") or "").split(",") if t.strip()]
        gender = GENDER_WORDS.get((get(head, "gender") or "").lower())
        if gender is None:
            for tag in tags:
                gender = gender or GENDER_WORDS.get(tag.lower())
        variants = [{k: v for k, v in {"sku": get(r, "sku"), "option1": get(r, "option1"),
                                       "option2": get(r, "option2"),
                                       "price": get(r, "price")}.items() if v}
                    for r in member_rows if get(r, "sku") or get(r, "option1")]
        extra = {k: v for k, v in {"tags": tags or None, "additional_images": photos[1:] or None,
                                   "variants": variants or None,
                                   "product_category": get(head, "category")}.items()
                 if v is not None}
        price_text = repr(min(prices)) if prices else get(head, "price")
        rows.append({
            "item_id": _text(head.get(handle)), "title": get(head, "title"),
            "description": html_to_text(get(head, "body")), "gender": gender,
            "master_category": category[0] if category else None,
            "sub_category": category[1] if len(category) > 2 else None,
            "article_type": get(head, "type") or (category[-1] if category else None),
            "base_colour": None, "brand": get(head, "vendor"), "price": price_text,
            "image_path": photos[0] if photos else None,
            "extra": json.dumps(extra) if extra else None})
        index.append(lines[members[0]])
    out = pd.DataFrame(rows, columns=list(FEED_COLUMNS), index=pd.Index(index), dtype="string")
    details: dict[str, int | str] = {"CSV rows": len(records) + len(bad)}
    if len(records) > len(rows):
        details["variant and photo rows grouped into their product (Handle)"] = \
            len(records) - len(rows)
    return Feed(out, len(records) + len(bad), frame.attrs.get("unit", "line"), bad, details)
