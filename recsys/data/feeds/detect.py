"""Which catalog format a file is in, and reading a Merchant or Shopify feed as products."""

from __future__ import annotations

from pathlib import Path

from recsys.data.feeds.base import Feed
from recsys.data.report import DataImportError

_SNIFF_BYTES = 64 * 1024


def _head(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(_SNIFF_BYTES)


def detect_catalog_format(path: str | Path) -> str:
    """`merchant`, `shopify`, `myntra` or `generic`, from the file's first bytes (an XML feed,
    or a table's header). Parquet is read by the generic importer."""
    path = Path(path)
    if not path.is_file():
        raise DataImportError(f"File not found: {path}")
    if path.suffix.lower() in (".parquet", ".pq"):
        return "generic"
    head = _head(path).lstrip(b"\xef\xbb\xbf").lstrip()
    if head.startswith(b"<"):
        return "merchant"
    first = head.split(b"\n", 1)[0].decode("utf-8", "replace").strip("\r")
    sep = "\t" if "\t" in first else ","
    names = {n.strip().strip('"').lower() for n in first.split(sep)}
    if "handle" in names and ("image src" in names or "body (html)" in names):
        return "shopify"
    if "image_link" in names and ("id" in names or "g:id" in names):
        return "merchant"
    if "productdisplayname" in names and "articletype" in names:
        return "myntra"
    return "generic"


def read_catalog_feed(path: str | Path, fmt: str) -> Feed:
    """A `merchant` or `shopify` catalog feed as products."""
    path = Path(path)
    if fmt == "merchant":
        from recsys.data.feeds.merchant import read_merchant
        return read_merchant(path)
    if fmt == "shopify":
        from recsys.data.feeds.shopify import read_shopify
        return read_shopify(path)
    raise DataImportError(f"Unknown feed format {fmt!r}; use merchant or shopify.")


def describe_format(fmt: str) -> str:
    """A one-line description of a catalog format (the Data page's preview)."""
    return {"merchant": "Google Merchant Center product feed (photos by URL)",
            "shopify": "Shopify products CSV export (photos by URL)",
            "myntra": "Myntra styles.csv (photos in images/ beside it)",
            "generic": "a generic CSV/TSV/Parquet catalog (photos in a folder or by URL)"
            }.get(fmt, fmt)
