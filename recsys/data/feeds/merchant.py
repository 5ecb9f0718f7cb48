"""Google Merchant Center product feeds: TSV, or XML (RSS 2.0 `<item>` / Atom `<entry>`) with
the `g:` namespace (http://base.google.com/ns/1.0).

Fields read: id, title, description, link, image_link, additional_image_link, price,
sale_price, brand, gender, age_group, color, size, google_product_category, product_type,
item_group_id. Variants (entries sharing an `item_group_id`) become one product whose id is the
group id; its first entry gives the title, photo and price, and every variant's id, colour, size
and price are kept in `extra["variants"]`.

XML is parsed with `defusedxml` and no DTD at all: entity expansion (the "billion laughs"),
external entities (XXE) and external DTDs are refused, never resolved.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse
from xml.etree.ElementTree import ParseError

from recsys.data.feeds.base import FEED_COLUMNS, Feed
from recsys.data.readers import read_table
from recsys.data.report import DataImportError, safe_reason

G_NS = "http://base.google.com/ns/1.0"
ATOM_NS = "http://www.w3.org/2005/Atom"
FIELDS = ("id", "title", "description", "link", "image_link", "additional_image_link", "price",
          "sale_price", "brand", "gender", "age_group", "color", "size",
          "google_product_category", "product_type", "item_group_id")
MAX_XML_BYTES = 2 * 2**30               # a feed bigger than this is refused before parsing
KIDS = ("kids", "toddler", "infant", "newborn")
_PRICE = re.compile(r"^\s*([0-9][0-9,]*(?:\.[0-9]+)?)\s*([A-Za-z]{3})?\s*$")


def read_merchant(path: Path) -> Feed:
    if not path.is_file():
        raise DataImportError(f"File not found: {path}")
    with open(path, "rb") as fh:
        head = fh.read(1024).lstrip(b"\xef\xbb\xbf").lstrip()
    if head.startswith(b"<"):
        records, positions, bad, unit = _read_xml(path)
    else:
        records, positions, bad, unit = _read_tsv(path)
    return _products(records, positions, bad, unit)


def _read_tsv(path: Path) -> tuple[list[dict], list[int], list[tuple[int, str]], str]:
    frame, bad = read_table(path)
    columns = {c: c.strip().lower().removeprefix("g:") for c in frame.columns}
    if "id" not in columns.values() and "item_group_id" not in columns.values():
        raise DataImportError(f"{path.name} has no id column, so it is not a Merchant Center "
                              "feed; import it with --format generic.")
    frame = frame.rename(columns=columns)
    keep = [c for c in FIELDS if c in frame.columns]
    records = frame[keep].to_dict("records")
    return records, [int(i) for i in frame.index], bad, frame.attrs.get("unit", "line")


def _read_xml(path: Path) -> tuple[list[dict], list[int], list[tuple[int, str]], str]:
    if path.stat().st_size > MAX_XML_BYTES:
        raise DataImportError(f"{path.name} is larger than {MAX_XML_BYTES // 2**30} GB, the "
                              "limit for an XML feed.")
    records: list[dict] = []
    ends = {"item", f"{{{ATOM_NS}}}entry", "entry"}
    try:
        for _, elem in iterparse(str(path), events=("end",), forbid_dtd=True,
                                 forbid_entities=True, forbid_external=True):
            if elem.tag not in ends:
                continue
            record: dict = {}
            for child in elem:
                tag = child.tag
                name = tag.split("}", 1)[1] if tag.startswith("{") else tag
                ns = tag[1:].split("}", 1)[0] if tag.startswith("{") else ""
                if ns not in (G_NS, ATOM_NS, ""):
                    continue
                if name == "link" and child.get("href"):
                    value = child.get("href")
                elif name in ("summary", "content"):
                    name, value = "description", "".join(child.itertext())
                else:
                    value = "".join(child.itertext())
                if name not in FIELDS:
                    continue
                value = (value or "").strip()
                if name == "additional_image_link":
                    record[name] = ",".join(filter(None, [record.get(name), value]))
                elif ns == G_NS or name not in record:   # g:title wins over a plain title
                    record[name] = value
            records.append(record)
            elem.clear()
    except DefusedXmlException:
        raise DataImportError(f"{path.name} declares a DTD or entities; product feeds never "
                              "need them, and they are refused (entity expansion and external "
                              "entities are a known attack).") from None
    except ParseError as exc:
        raise DataImportError(f"{path.name} is not well-formed XML: {safe_reason(exc)}") \
            from None
    if not records:
        raise DataImportError(f"{path.name} has no <item> or <entry> elements, so it is not a "
                              "Merchant Center feed.")
    return records, list(range(1, len(records) + 1)), [], "entry"


def parse_price(text: object) -> tuple[float | None, str | None]:
    """"12.99 USD" -> (12.99, "USD"); (None, None) when it is not a price."""
    if text is None or (isinstance(text, float) and pd.isna(text)):
        return None, None
    match = _PRICE.match(str(text))
    if not match:
        return None, None
    return float(match.group(1).replace(",", "")), (match.group(2) or "").upper() or None


def _gender(gender: object, age_group: object) -> str | None:
    g = str(gender or "").strip().lower()
    kids = str(age_group or "").strip().lower() in KIDS
    if g in ("male", "men", "man"):
        return "Boys" if kids else "Men"
    if g in ("female", "women", "woman"):
        return "Girls" if kids else "Women"
    if g == "unisex":
        return "Unisex"
    return None


def _text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    text = str(value).strip()
    return text or None


def _products(records: list[dict], positions: list[int], bad: list[tuple[int, str]],
              unit: str) -> Feed:
    groups: dict[str, list[int]] = {}
    for k, record in enumerate(records):
        key = _text(record.get("item_group_id"))     # entries repeating an id are reported
        groups.setdefault(f"g:{key}" if key else f"row:{k}", []).append(k)
    rows, index, currencies = [], [], set()
    for key, members in groups.items():
        first = records[members[0]]
        shown, _ = parse_price(first.get("sale_price"))
        regular, currency = parse_price(first.get("price"))
        if currency:
            currencies.add(currency)
        price = shown if shown is not None else regular
        if price is None and _text(first.get("price")):
            price_text = _text(first.get("price"))       # reported by the importer
        else:
            price_text = None if price is None else repr(price)
        path = [p.strip() for p in str(first.get("product_type") or "").split(">") if p.strip()]
        category = [p.strip() for p in str(first.get("google_product_category") or "")
                    .split(">") if p.strip()]
        extra = {k: v for k, v in {
            "link": _text(first.get("link")),
            "currency": currency,
            "regular_price": regular if shown is not None else None,
            "additional_images": [u for u in str(first.get("additional_image_link") or "")
                                  .split(",") if u.strip()] or None,
            "age_group": _text(first.get("age_group")),
            "google_product_category": _text(first.get("google_product_category")),
            "product_type": _text(first.get("product_type")),
        }.items() if v is not None}
        if key.startswith("g:"):
            extra["variants"] = [{k: v for k, v in {
                "id": _text(records[m].get("id")), "color": _text(records[m].get("color")),
                "size": _text(records[m].get("size")),
                "price": parse_price(records[m].get("sale_price"))[0]
                or parse_price(records[m].get("price"))[0]}.items() if v is not None}
                for m in members]
        item_id = _text(first.get("item_group_id")) or _text(first.get("id"))
        rows.append({
            "item_id": item_id, "title": _text(first.get("title")),
            "description": _text(first.get("description")),
            "gender": _gender(first.get("gender"), first.get("age_group")),
            "master_category": category[0] if category else None,
            "sub_category": path[1] if len(path) > 2 else (path[0] if path else None),
            "article_type": path[-1] if path else None,
            "base_colour": _text(first.get("color")), "brand": _text(first.get("brand")),
            "price": price_text, "image_path": _text(first.get("image_link")),
            "extra": json.dumps(extra) if extra else None})
        index.append(positions[members[0]])
    frame = pd.DataFrame(rows, columns=list(FEED_COLUMNS), index=pd.Index(index), dtype="string")
    details: dict[str, int | str] = {"feed entries": len(records) + len(bad)}
    grouped = len(records) - len(rows)
    if grouped:
        details["variant entries grouped into their product (item_group_id)"] = grouped
    if currencies:
        details["currency"] = ", ".join(sorted(currencies))
    return Feed(frame, len(records) + len(bad), unit, bad, details)
