"""Property tests at the feature-file decoders (.npy with its id mapping, Parquet, CSV), decoded
as an upload is, by a worker under its budget: a `DataImportError` leaving the database
unchanged, or an import report whose rows add up; the worker stays under the features budget.
Derandomized in the default run; `RECSYS_FUZZ_SCALE=10` explores ten times more."""

from __future__ import annotations

import io
import struct

import numpy as np
import pandas as pd
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from recsys import usecases
from recsys.core import sandbox
from recsys.core.errors import RecsysError
from recsys.data.report import DataImportError
from recsys.store import Store

from ..data.test_fuzz_decoders import AWKWARD, damaged, outcome, within_budget
from ..fuzz_helpers import examples
from ..import_helpers import snapshot


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """A store with a dataset 'shop' of items "0".."11", and a work folder."""
    root = tmp_path_factory.mktemp("fuzzfeat")
    pd.DataFrame({"item_id": [str(i) for i in range(12)],
                  "title": [f"Product {i}" for i in range(12)]}).to_csv(root / "cat.csv",
                                                                         index=False)
    store = Store(root / "f.duckdb")
    usecases.import_catalog(store, root / "cat.csv", dataset="shop")
    yield store, root
    store.close()


def check_import(store: Store, call) -> None:
    """An import whose only exception is a DataImportError leaving the database unchanged, and
    whose report adds up; the worker stayed under the features budget."""
    before, last = snapshot(store), sandbox.last_reply()
    try:
        rep = call()
    except DataImportError as exc:
        assert str(exc) and snapshot(store) == before
        event(f"refused: {outcome(exc)}")
        return
    except RecsysError as exc:                      # e.g. a modality name: not expected here
        raise AssertionError(f"unexpected {type(exc).__name__}: {exc}") from None
    finally:
        within_budget("features", last)
    event("report, refused" if rep.refused else "report, imported")
    if rep.refused:
        assert rep.imported == 0
    else:
        assert rep.rows_read == rep.imported + rep.rows_skipped, rep.summary()
        assert 0 < rep.imported <= 12


def _npy_header(descr: str, fortran: bool, shape: tuple) -> bytes:
    text = f"{{'descr': {descr!r}, 'fortran_order': {fortran}, 'shape': {shape!r}, }}"
    text += " " * ((64 - (len(text) + 11) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin1")


@st.composite
def npy_files(draw) -> bytes:
    """A .npy file: mostly a readable matrix (a numeric dtype, a small shape and the data for
    it, now and then NaN, zeros or a cut), else an awkward header (odd dtype, huge or
    non-2-D shape) over whatever bytes."""
    if draw(st.integers(0, 3)):
        descr = draw(st.sampled_from(["<f4", "<f8", "<i8", "<f2", ">f4", "|i1"]))
        shape = (draw(st.integers(0, 16)), draw(st.integers(1, 6)))
        rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        values = rng.normal(size=shape) * draw(st.sampled_from([1, 100]))
        if draw(st.booleans()):
            values.flat[:draw(st.integers(0, values.size))] = draw(
                st.sampled_from([0.0, np.nan, np.inf]))
        with np.errstate(invalid="ignore"):
            body = values.astype(np.dtype(descr)).tobytes()
        if not draw(st.integers(0, 5)):
            body = body[:draw(st.integers(0, len(body)))]
        return _npy_header(descr, draw(st.booleans()), shape) + body
    descr = draw(st.sampled_from(["<f4", "|b1", "<U3", "|O", "<c8", "V8", "<M8[D]"]))
    shape = draw(st.one_of(st.tuples(st.sampled_from(AWKWARD), st.sampled_from(AWKWARD)),
                           st.tuples(st.integers(0, 12)),
                           st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3))))
    return _npy_header(descr, draw(st.booleans()), shape) + draw(st.binary(max_size=400))


mappings = st.one_of(
    st.none(), st.none(), st.none(),
    st.lists(st.one_of(st.integers(-2, 14), st.sampled_from(AWKWARD), st.just("x"),
                       st.just("1.5"), st.just("1e20")), max_size=14).map(
        lambda rows: "asin\titemID\n" + "".join(f"B{k}\t{r}\n" for k, r in enumerate(rows))),
    st.lists(st.sampled_from([str(i) for i in range(14)] + ["", "ghost"]), max_size=16).map(
        lambda ids: "\n".join(ids) + "\n"),
    st.binary(max_size=120).map(lambda b: b.decode("latin1")),
)


@given(npy=st.one_of(npy_files(), npy_files(), st.binary(max_size=200)), mapping=mappings)
@examples(50)
def test_npy_and_id_mapping(shop, npy: bytes, mapping: str | None):
    store, root = shop
    folder = root / "npy"
    folder.mkdir(exist_ok=True)
    (folder / "f.npy").write_bytes(npy)
    ids = None
    if mapping is not None:
        (folder / "ids.csv").write_text(mapping, encoding="latin1")
        ids = folder / "ids.csv"
    check_import(store, lambda: usecases.import_features(store, folder / "f.npy", "fz", "shop",
                                                         ids=ids))


def _fix_lengths(ids: list, vectors: list) -> list:
    return vectors[:len(ids)] + [None] * max(0, len(ids) - len(vectors))


def _parquet(ids, vectors, kind: str) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    value = {"list-f64": pa.list_(pa.float64()), "list-i8": pa.list_(pa.int8()),
             "large-list": pa.large_list(pa.float32()), "fixed-3": pa.list_(pa.float32(), 3),
             "list-str": pa.list_(pa.string()), "text": pa.string()}[kind]
    vectors = _fix_lengths(ids, vectors)
    if kind == "fixed-3":
        vectors = [v if v is None or len(v) == 3 else None for v in vectors]
    if kind == "list-i8":
        vectors = [None if v is None else [max(-128, min(127, int(x))) if np.isfinite(x) else 0
                                     for x in v]
                   for v in vectors]
    if kind == "list-str":
        vectors = [None if v is None else [str(x) for x in v] for v in vectors]
    if kind == "text":
        vectors = [None if v is None else " ".join(str(x) for x in v) for v in vectors]
    table = pa.table({"item_id": pa.array(ids, pa.string()), "vector": pa.array(vectors, value)})
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


parquet_files = st.builds(
    _parquet,
    st.lists(st.one_of(st.none(), st.sampled_from([str(i) for i in range(14)] + [""])),
             min_size=0, max_size=20),
    st.lists(st.one_of(st.none(), st.lists(st.one_of(st.floats(allow_nan=True, width=32),
                                                     st.integers(-3, 3)), max_size=5)),
             min_size=20, max_size=20),
    st.sampled_from(["list-f64", "list-i8", "large-list", "fixed-3", "list-str", "text"]),
)


@given(data=st.data())
@examples(40)
def test_parquet_tables(shop, data):
    store, root = shop
    raw = data.draw(parquet_files)
    if data.draw(st.booleans()):
        raw = data.draw(damaged({"p": raw}, head=len(raw)))
    (root / "f.parquet").write_bytes(raw)
    check_import(store, lambda: usecases.import_features(store, root / "f.parquet", "fz",
                                                         "shop"))


@st.composite
def csv_rows(draw) -> bytes:
    """A feature table as a person might write it: a header, then rows of an id (often one
    of the dataset's) and a vector as text or as one column per dimension; with quotes,
    separators, blank lines, rows with too many or too few fields."""
    sep = draw(st.sampled_from([",", "\t"]))
    wide = draw(st.booleans())
    dim = draw(st.integers(1, 4))
    head = ["item_id"] + ([f"d{k}" for k in range(dim)] if wide else ["vector"])
    lines = [sep.join(head)]
    number = st.one_of(st.integers(-3, 3).map(str), st.floats(allow_nan=True).map(repr),
                       st.sampled_from(["", "x", "1e400", "-0"]))
    for _ in range(draw(st.integers(0, 14))):
        item = draw(st.one_of(st.integers(0, 14).map(str), st.sampled_from(["", " 3 ", "x"])))
        values = draw(st.lists(number, min_size=dim - 1, max_size=dim + 1))
        if wide:
            fields = [item, *values]
        else:
            text = draw(st.sampled_from(["[{}]", "{}", '"[{}]"'])).format(
                draw(st.sampled_from([", ", " ", ";"])).join(values))
            fields = [item, text]
        lines.append(sep.join(fields) if draw(st.integers(0, 9)) else "")
    return ("\n".join(lines) + draw(st.sampled_from(["\n", "", "\r\n"]))).encode()


csv_files = st.one_of(
    csv_rows(), csv_rows(),
    st.binary(max_size=500),
    st.text(alphabet=st.sampled_from('ab,"\n\r\t;=1.5 []e-\x00é'), max_size=300).map(
        lambda t: t.encode("utf-8")),
    st.builds(lambda head, body: head + body,
              st.sampled_from([b"item_id,vector\n", b"id\tembedding\n", b"id,d0,d1,d2\n",
                               b"\xef\xbb\xbfsku,vector\n", b"id,id\n"]),
              st.text(alphabet=st.sampled_from('0123456789,\t"\n []-.eNa'), max_size=400).map(
                  lambda t: t.encode())),
)


@given(data=csv_files)
@examples(60)
def test_csv_tables(shop, data: bytes):
    store, root = shop
    (root / "f.csv").write_bytes(data)
    check_import(store, lambda: usecases.import_features(
        store, root / "f.csv", "fz", "shop",
        columns={"item_id": "sku"} if data.startswith(b"\xef\xbb\xbfsku") else None))
