"""Streamlit's "magic" writes every bare string statement of a page script onto the page: a
docstring meant for a constant (after the module's own docstring) showed up at the top of the
Data page as "Messages of a step that reran the page...". No page has one."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _bare_strings(body, top: bool):
    for i, node in enumerate(body):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) \
                and isinstance(node.value.value, str) and not (top and i == 0):
            yield node.lineno
        for attr in ("body", "orelse", "finalbody"):    # with / if / for / try blocks
            if isinstance(node, (ast.With, ast.If, ast.For, ast.While, ast.Try)):
                yield from _bare_strings(getattr(node, attr, None) or [], False)


def test_no_page_writes_a_stray_docstring():
    pages = sorted((ROOT / "app_pages").glob("*.py")) + [ROOT / "app.py"]
    assert len(pages) > 5
    stray = {p.name: lines for p in pages
             if (lines := list(_bare_strings(ast.parse(p.read_text()).body, True)))}
    assert not stray, stray
