"""CSV exports that spreadsheets cannot run: cells that would start a formula are escaped.

A product title such as `=HYPERLINK("http://evil", "click")` or `=cmd|' /C calc'!A0` in a
downloaded CSV is executed by Excel, LibreOffice or Google Sheets when the file is opened
(CSV/formula injection, OWASP). Text cells starting with `=`, `+`, `-`, `@` (or their
full-width forms `＝ ＋ － ＠`), a tab, a carriage return or a line break, and cells where such
a character follows leading whitespace or invisible characters (spaces, no-break spaces,
zero-width and direction marks, other control characters: some spreadsheets skip them before
looking for a formula), get a leading apostrophe, which spreadsheets show as text. Numbers stay
numbers: only text is escaped, so a price of -5 is still -5; " Red dress" stays as it is.

Use `to_csv_bytes(frame)` for every CSV download (the app's download buttons, CLI exports).
"""

from __future__ import annotations

import unicodedata
from typing import Any

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d",
                  "\uff20")


def _blank(char: str) -> bool:
    """Whitespace, control, format (zero-width, direction marks) or separator characters."""
    return char.isspace() or unicodedata.category(char) in ("Cc", "Cf", "Zs", "Zl", "Zp")


def escape_cell(value: Any) -> Any:
    """`value` with a leading apostrophe when it is text a spreadsheet could run as a formula:
    it starts with a formula character, or one follows leading blanks."""
    if not isinstance(value, str) or not value:
        return value
    if value.startswith(FORMULA_STARTS):
        return "'" + value
    start = 0
    while start < len(value) and _blank(value[start]):
        start += 1
    if start and value.startswith(FORMULA_STARTS, start):
        return "'" + value
    return value


def escape_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` whose text cells (and column names) are escaped; numbers untouched."""
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values):
            out[column] = values.map(escape_cell, na_action="ignore")
    out.columns = [escape_cell(c) for c in out.columns]
    out.index = out.index.map(escape_cell)
    return out


def to_csv_bytes(frame: pd.DataFrame, index: bool = False) -> bytes:
    """UTF-8 CSV of `frame`, safe to open in a spreadsheet."""
    return escape_frame(frame).to_csv(index=index).encode("utf-8")
