"""DOCSTRING TO WRITE."""

from __future__ import annotations

from recsys.data.datasets import (
    describe_columns,
    safe_reason,
)


def test_column_names_are_shown_only_for_a_real_header():
    assert describe_columns(["id", "title", "Unnamed: 2", "price (EUR)"]) == \
        "its columns: id, title, Unnamed: 2, price (EUR)"
    for names in (["root:x:0:0:root:/root:/bin/bash"], ["SECRET=x", "b"], ["id"],
                  ["a", "b\x00c"], ["a", "x" * 80], ["HOME=/root TOKEN=1", "y"]):
        assert describe_columns(names) == \
            "its first line does not read as column names (not shown)"
    assert "13 more" in describe_columns([f"c{i}" for i in range(25)])
    assert safe_reason(ValueError("expected b'\\x93NUMPY', got b'root:x'")) == \
        "expected …, got …"
    assert safe_reason(ValueError("Expected 3 fields in line 5, saw 4")) == \
        "Expected 3 fields in line 5, saw 4"
    assert "position 4" in safe_reason(_unicode_error())


def _unicode_error() -> UnicodeDecodeError:
    try:
        b"abcd\xff".decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc
    raise AssertionError
