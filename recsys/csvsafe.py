"""CSV exports that spreadsheets cannot run: cells that would start a formula are escaped.

A product title such as `=HYPERLINK("http://evil", "click")` or `=cmd|' /C calc'!A0` in a
downloaded CSV is executed by Excel, LibreOffice or Google Sheets when the file is opened
(CSV/formula injection, OWASP). Text cells starting with `=`, `+`, `-`, `@`, a tab or a
carriage return get a leading apostrophe, which spreadsheets show as text. Numbers stay
numbers: only text is escaped, so a price of -5 is still -5.

Use `to_csv_bytes(frame)` for every CSV download (the app's download buttons, CLI exports).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(value: Any) -> Any:
    """`value` with a leading apostrophe when it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
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
