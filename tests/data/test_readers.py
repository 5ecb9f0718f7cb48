"""Reading tables: every record read is imported or reported with its line; fields longer than
the csv module's limit kept, longer than the field limit reported and never held whole (a
100 MB line read in bounded memory), lines shifted by extra or missing fields reported, line
endings and multi-line records kept, bytes that are not UTF-8 cost their row only; Parquet
values or columns that inflate past the limits refused; messages that name a table's columns
only when its first line reads as a header, and never quote a server file."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.data import readers
from recsys.data.catalog_import import import_catalog
from recsys.data.interactions_import import import_interactions
from recsys.data.readers import max_field_chars, read_table
from recsys.data.report import DataImportError, describe_columns, safe_reason
from recsys.store import Store

from ..app_helpers import ROOT
from ..import_helpers import (
    adds_up,
    check_counts,
    make_catalog,
    write_file,
)

KB = 1024


# -- a huge field ---------------------------------------------------------------------------------
def test_field_limit_setting(monkeypatch):
    assert max_field_chars() == 10 * 2**20
    assert max_field_chars(0.5) == 2**19
    monkeypatch.setenv("RECSYS_MAX_CSV_FIELD_MB", "2")
    assert max_field_chars() == 2 * 2**20
    monkeypatch.setenv("RECSYS_MAX_CSV_FIELD_MB", "lots")
    with pytest.raises(DataImportError, match="RECSYS_MAX_CSV_FIELD_MB"):
        max_field_chars()
    with pytest.raises(DataImportError, match="positive"):
        max_field_chars(0)


def test_long_field_and_long_line_are_reported_with_their_line(tmp_path, monkeypatch):
    """With a 1 KB limit: a 2 KB field is reported ("a field longer than"), a 5 KB line too
    ("the line is longer", not read), each on its own line; the rows around them import."""
    monkeypatch.setenv("RECSYS_MAX_CSV_FIELD_MB", str(1 / 1024))
    path = tmp_path / "cat.csv"
    rows = ["id,title,description", "a,A,short", f"b,B,{'x' * 2 * KB}", "c,C,short",
            f'd,D,"{"y" * 5 * KB}"', "e,E,short", f"f,F,{'z' * 900}"]
    path.write_text("\n".join(rows) + "\n")
    frame, bad = read_table(path)
    assert list(frame.index) == [2, 4, 6, 7]
    assert [line for line, _ in bad] == [3, 5]
    assert "a field longer than 1 KB" in bad[0][1]
    assert "the line is longer than 4 KB" in bad[1][1] and "not read" in bad[1][1]
    store = Store(tmp_path / "s.duckdb")
    try:
        rep = import_catalog(store, path, dataset="shop")
        assert rep.imported == 4 and rep.lines["malformed CSV line"] == [3, 5]
        check_counts(rep)
        assert "RECSYS_MAX_CSV_FIELD_MB" in rep.summary()
        log = tmp_path / "log.csv"
        log.write_text(f"user,item,event\nu1,a,view\nu2,b,{'v' * 3 * KB}\nu3,c,cart\n")
        rep = import_interactions(store, log, dataset="shop")
        assert rep.imported == 2 and rep.lines["malformed line"] == [3]
        check_counts(rep)
    finally:
        store.close()


def test_a_row_spread_over_many_short_lines_is_capped(tmp_path):
    """A quoted field of 3,000 short lines (over the 4 KB row cap at a 1 KB limit): reported
    on the line that opened it; its lines are read again, each imported or reported."""
    body = "\n".join(f"l{i},x" for i in range(3000))
    path = tmp_path / "t.csv"
    path.write_text(f'id,title\na,A\nb,"{body}"\nc,C\n')
    frame, bad = read_table(path, max_field_mb=1 / 1024)
    assert bad[0][0] == 3 and "its row is longer than 4 KB" in bad[0][1]
    assert {"a", "c"} <= set(frame["id"])
    assert len(frame) + len(bad) == 3002          # every line but the header: a record or reported
    assert list(frame.index[-3:]) == [3001, 3002, 3003]      # read again: l2998, l2999, c


def test_line_endings_survive_the_line_reader(tmp_path):
    """Lone CR (classic Mac), CRLF and LF files, and an over-long line ending in each."""
    for end in ("\n", "\r\n", "\r"):
        path = tmp_path / "t.csv"
        path.write_bytes(end.join(["id,title", "a,A", f"b,{'x' * 3000}", "c,C", ""]).encode())
        frame, bad = read_table(path, max_field_mb=0.5 / 1024)
        assert list(frame["id"]) == ["a", "c"] and list(frame.index) == [2, 4], repr(end)
        assert [line for line, _ in bad] == [3]
    path.write_bytes(b"id,title\r" + b"\r".join(b"i%d,T" % i for i in range(50_000)) + b"\r")
    frame, bad = read_table(path, max_field_mb=0.1)     # lines joined by CR: not "one line"
    assert len(frame) == 50_000 and not bad


def test_a_multi_line_description_under_the_limit_still_imports(tmp_path):
    path = tmp_path / "t.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "title", "description"])
        w.writerow(["a", "A", "line one\nline two\r\nline three"])
        w.writerow(["b", "B", "d" * 200_000])            # over the csv module's default limit
    frame, bad = read_table(path)
    assert not bad and frame.loc[2, "description"] == "line one\nline two\r\nline three"
    assert len(frame.loc[5, "description"]) == 200_000


PEAK = """
import json, sys
from recsys.data.readers import read_table
frame, bad = read_table(sys.argv[1])
peak = [line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM")][0]
print(json.dumps({"rows": len(frame), "bad": bad, "peak_kb": int(peak)}))
"""
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking test process


def test_a_100_mb_single_line_field_is_read_in_bounded_memory(tmp_path):
    """The reported 1 GB single-line field at 100 MB (the behaviour does not depend on the
    size): the line is reported, the other rows imported, peak memory well under the field's
    size times the 8-9 copies the old reader made (300 MB: 2.65 GB before)."""
    path = tmp_path / "big.csv"
    with open(path, "w") as fh:
        fh.write("id,title,description\na,A,short\nb,B,\"")
        chunk = "x" * 2**20
        for _ in range(100):
            fh.write(chunk)
        fh.write("\"\nc,C,short\n")
    out = subprocess.run([sys.executable, "-c", PEAK, str(path)], capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert result["rows"] == 2 and [line for line, _ in result["bad"]] == [3]
    assert "longer than 40 MB" in result["bad"][0][1]
    assert result["peak_kb"] < 300 * 1024, f"peak {result['peak_kb'] / 1024:.0f} MB"


# -- Parquet -------------------------------------------------------------------------------------
def test_parquet_value_over_the_limit_is_reported(tmp_path):
    path = tmp_path / "t.parquet"
    pd.DataFrame({"id": ["a", "b", "c"], "title": ["A", "B" * 3 * KB, "C"]}).to_parquet(path)
    frame, bad = read_table(path, max_field_mb=1 / 1024)
    assert list(frame["id"]) == ["a", "c"] and [r for r, _ in bad] == [2]
    assert "a field longer than" in bad[0][1]


def dictionary_parquet(path: Path, rows: int, value: str) -> None:
    """`rows` rows repeating one value, written once in a dictionary: a tiny file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    zeros = pa.array(np.zeros(rows, dtype=np.int32))
    pq.write_table(pa.table({"id": pa.DictionaryArray.from_arrays(zeros, pa.array(["a"])),
                             "title": pa.DictionaryArray.from_arrays(zeros, pa.array([value]))}),
                   path, compression="zstd")


def test_parquet_that_repeats_a_value_into_gigabytes_is_refused(tmp_path, monkeypatch):
    """A 0.2 MB file standing for 2 GB of text (1M rows of one 2 KB title): refused once the
    decoded text passes 100x the file's size (at least MIN_TABLE_TEXT_MB), counted from the
    dictionary before any string is made. Before: 5.8 GB."""
    path = tmp_path / "bomb.parquet"
    dictionary_parquet(path, 200_000, "x" * 2 * KB)          # 400 MB of text
    monkeypatch.setattr(readers, "MIN_TABLE_TEXT_MB", 16)
    assert path.stat().st_size < 200 * KB
    with pytest.raises(DataImportError, match="decodes to more than 16 MB of text"):
        read_table(path)
    small = tmp_path / "ok.parquet"
    dictionary_parquet(small, 2000, "y" * 100)
    assert len(read_table(small)[0]) == 2000


def test_parquet_column_inflating_past_the_ratio_is_refused(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "zip-bomb.parquet"
    pq.write_table(pa.table({"id": ["a"], "title": ["z" * (70 * 2**20)]}), path,
                   compression="zstd", use_dictionary=False)
    assert path.stat().st_size < 200 * KB
    with pytest.raises(DataImportError, match="inflates .* times"):
        read_table(path)


def _unicode_error() -> UnicodeDecodeError:
    try:
        b"abcd\xff".decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc
    raise AssertionError


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


def test_fields_longer_than_the_csv_module_limit_are_kept(store, tmp_path):
    long = "x" * 200_000
    make_catalog(tmp_path)
    csv = write_file(tmp_path / "long.csv", f'id,title,description,image\na,Red,"{long}",a.png\n'
                                       f"b,Blue,short,b.png\n")
    rep = import_catalog(store, csv, tmp_path / "images", dataset="shop")
    assert rep.imported == 2 and adds_up(rep)
    assert store.items("shop")["description"].str.len().max() == 200_000
    log = write_file(tmp_path / "longid.csv", f"user,item\n{long},a\nu1,b\n")
    rep = import_interactions(store, log, dataset="shop")
    assert rep.imported == 1 and rep.problems == {"user or item id is not a plain id": 1}


def test_extra_and_missing_fields_are_reported_not_shifted(store, tmp_path):
    log = write_file(tmp_path / "x.csv", "user,item\n1,a\n2,b,extra,fields\n3\n4,d\n")
    rep = import_interactions(store, log, dataset="x")
    assert rep.rows_read == 4 and rep.imported == 2 and adds_up(rep)
    assert rep.lines == {"malformed line": [3, 4]}
    x = store.interactions("x")
    assert sorted(zip(x["user_id"], x["item_id"])) == [("1", "a"), ("4", "d")]
    assert "extra" not in set(x["user_id"]) | set(x["item_id"])


def test_line_numbers_follow_multiline_records_and_blank_lines(store, tmp_path):
    make_catalog(tmp_path)
    csv = write_file(tmp_path / "m.csv", 'id,title,description,image\na,Red,"two\nlines",a.png\n\n'
                                    'b,,no title,b.png\nc,Green,x,c.png,extra\n')
    rep = import_catalog(store, csv, tmp_path / "images", dataset="shop")
    assert rep.lines == {"malformed CSV line": [6], "missing title": [5]}
    assert rep.imported == 1 and adds_up(rep)


def test_bytes_that_are_not_utf8_cost_their_row_only(store, tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(b"user,item\n" + b"u1,a\n" * 2000 + b"u2,caf\xe9\n" + b"u3,b\n")
    rep = import_interactions(store, path, dataset="x")
    assert rep.imported == 2001 and rep.lines == {"malformed line": [2002]} and adds_up(rep)


def test_server_files_are_not_echoed(store, tmp_path):
    passwd = write_file(tmp_path / "passwd", "root:x:0:0:root:/root:/bin/bash\n"
                                        "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n")
    config = write_file(tmp_path / "settings.conf", "SECRET_TOKEN=abc123,def\nuser = admin\n"
                                               "password = hunter2\nport, 5432, extra, x\n"
                                               "host = db\n")
    for path in (passwd, config):
        for call in (lambda: import_catalog(store, path, None, dataset="x"),
                     lambda: import_interactions(store, path, dataset="x")):
            with pytest.raises(DataImportError) as err:
                call()
            for secret in ("root", "bash", "SECRET", "abc123", "hunter2", "admin"):
                assert secret not in str(err.value), (path.name, str(err.value))


def test_real_tables_still_name_their_columns(store, tmp_path):
    log = write_file(tmp_path / "t.csv", "who,what\nu1,a\nu2,b\n")
    with pytest.raises(DataImportError, match="its columns: who, what"):
        import_interactions(store, log, dataset="x")


def test_read_table_reports_every_record(tmp_path):
    path = write_file(tmp_path / "t.csv", 'a,b\n1,2\n3,"4\n5,6\n\n7,8,9\n10,11\n')
    frame, bad = read_table(path)
    assert frame.index.tolist() == [2, 4, 7] and [line for line, _ in bad] == [3, 6]
