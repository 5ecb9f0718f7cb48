"""Spreadsheet-safe CSV exports: cells that would run a formula (also behind blanks) are escaped,
plain text is kept."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from recsys.data.export import escape_cell, escape_frame, to_csv_bytes


@pytest.mark.parametrize("cell", [" =1+1", "\n=cmd|' /C calc'!A0", "\u00a0=HYPERLINK(1)",
                                  "\u200b=x", " " * 100 + "=x", " -2+3", "\x00=1",
                                  "\uff1dSUM(A1)", "\u2028@x", " \t=1", "\n", "\r+1"])
def test_formulas_behind_blanks_are_escaped(cell):
    assert escape_cell(cell) == "'" + cell


def test_plain_text_with_leading_blanks_is_kept():
    for cell in ("  Red dress", " 42 shoes", "   ", "abc", "a=b"):
        assert escape_cell(cell) == cell
    frame = pd.DataFrame({"title": [" =1+1", "  ok"], "price": [-5.0, 3.0]})
    text = to_csv_bytes(frame).decode()
    assert "' =1+1" in text and "  ok" in text and "-5.0" in text


@pytest.mark.parametrize("cell, escaped", [
    ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"), ("+1+2", "'+1+2"), ("-2+3", "'-2+3"),
    ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"), ("Red shirt", "Red shirt"),
    ("", ""), (-5, -5), (3.5, 3.5), (None, None)])
def test_escape_cell(cell, escaped):
    assert escape_cell(cell) == escaped


def test_csv_download_cannot_run_formulas():
    frame = pd.DataFrame({"item_id": ["a", "=b"], "title": ['=HYPERLINK("http://x","y")', "ok"],
                          "score": [-1.5, 2.0], "=col": [1, 2]})
    frame["title"] = frame["title"].astype("string")
    out = escape_frame(frame)
    assert out["title"].tolist() == ["'=HYPERLINK(\"http://x\",\"y\")", "ok"]
    assert out["score"].tolist() == [-1.5, 2.0] and list(out.columns)[-1] == "'=col"
    assert frame["title"].iloc[0].startswith("=")            # the original is untouched
    back = pd.read_csv(io.BytesIO(to_csv_bytes(frame)))
    assert not any(str(v).startswith(("=", "+", "@")) for v in back.to_numpy().ravel())
    assert back["score"].tolist() == [-1.5, 2.0]
