"""Property tests at each decoder boundary (issue 19): photos, videos and feature files (.npy
with its id mapping, Parquet, CSV), decoded as an upload is, by a worker under its budget.

Seeds are valid files and the issue's attacks (scaled down: a huge TIFF tile, many JPEG scans,
an MJPEG video whose frames grow, a run-length-encoded Parquet, a wild id mapping); hypothesis
damages them (bytes flipped, cut or inserted) and rewrites their size fields with awkward
numbers (0, 1, 65,535, 2^31...). For every input:

  * no traceback: the boundary's own error (`ImageError`, `VideoError`, `DataImportError`)
    with a message, or a valid result (an RGB photo of at most 2,048 px a side; frames of at
    most 448 px; an import report whose rows add up, with the database unchanged on refusal);
  * the worker's peak memory for the request stays under the stated budget (its growth over
    the request, measured in the worker from /proc: VmHWM reset before the request).

Derandomized and bounded to a few tens of seconds per boundary in the default run;
`RECSYS_FUZZ_SCALE=10` explores ten times more with fresh randomness.
"""

from __future__ import annotations

import io
import os
import struct

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from recsys import usecases
from recsys.core import sandbox
from recsys.core.errors import RecsysError
from recsys.data.datasets import DataImportError
from recsys.data.images import WORK_SIDE, ImageError, load_image
from recsys.data.video import FRAME_SIDE, VideoError, sample_frames
from recsys.store import Store

from ..decode_attacks import big_tile_tiff, flat_jpeg, growing_video, many_scans_jpeg
from ..import_helpers import snapshot

pytestmark = pytest.mark.filterwarnings("ignore:Truncated File Read:UserWarning")

SCALE = float(os.environ.get("RECSYS_FUZZ_SCALE", "1"))
FUZZ = settings(deadline=None, derandomize=SCALE == 1, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
AWKWARD = [0, 1, 2, 15, 16, 255, 256, 4097, 16_000, 32_767, 65_535, 2**31 - 1, 2**32 - 1]


def examples(n: int) -> settings:
    return settings(FUZZ, max_examples=max(1, int(n * SCALE)))


def within_budget(kind: str, before: sandbox.Reply | None) -> None:
    """If a request reached a worker since `before` (the last reply then), the worker grew by
    no more than the budget of `kind` for it."""
    reply = sandbox.last_reply()
    if reply is None or reply is before:
        return                  # refused before decoding (empty, too big...)
    assert reply.sandboxed
    assert reply.peak_mb - reply.base_mb <= sandbox.budget(kind).memory_mb, reply


def outcome(exc: Exception) -> str:
    """A short class of an error message, for hypothesis' statistics."""
    text = str(exc)
    for words in ("budget", "scans", "would need", "pixels a side", "picture", "dimensions",
                  "rows", "itemID", "empty", "not an image", "corrupt", "not a readable",
                  "no frame", "could not be read", "no item id column", "mapping"):
        if words in text:
            return words
    return "other"


@st.composite
def damaged(draw, seeds: dict[str, bytes], head: int = 512) -> bytes:
    """A seed with integers in its first `head` bytes overwritten by awkward values (sizes,
    tile sizes, counts), bytes flipped, a cut or an insertion."""
    data = bytearray(seeds[draw(st.sampled_from(sorted(seeds)))])
    gentle = draw(st.integers(0, 2)) == 0           # a third: size fields only
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, max(0, min(head, len(data)) - 4)))
        width = draw(st.sampled_from([2, 4]))
        value = draw(st.sampled_from(AWKWARD)) % (1 << (8 * width))
        order = draw(st.sampled_from(["<", ">"]))
        data[at:at + width] = struct.pack(order + ("H" if width == 2 else "I"), value)
    if gentle:
        return bytes(data)
    for _ in range(draw(st.integers(0, 4))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[:draw(st.integers(0, len(data)))]
    if draw(st.booleans()):
        at = draw(st.integers(0, len(data)))
        data[at:at] = draw(st.binary(max_size=40))
    return bytes(data)


# -- photos ---------------------------------------------------------------------------------------
def _photo(fmt: str, size=(37, 23), **options) -> bytes:
    buf = io.BytesIO()
    Image.effect_noise(size, 40).convert("RGB").save(buf, fmt, **options)
    return buf.getvalue()


PHOTOS = {
    "jpeg": _photo("JPEG"), "progressive": _photo("JPEG", progressive=True),
    "png": _photo("PNG"), "gif": _photo("GIF"), "webp": _photo("WEBP"), "bmp": _photo("BMP"),
    "tiff-deflate": _photo("TIFF", compression="tiff_adobe_deflate"),
    "tiff-tiled": big_tile_tiff(48, 32, tile=64),
    "tiff-tile-at-limit": big_tile_tiff(48, 32, tile=8192),     # 192 MB tile: accepted
    "tiff-big-tile": big_tile_tiff(48, 32, tile=9216),          # 243 MB tile: refused
    "jpeg-scans": many_scans_jpeg(320, 240, 150),
    "jpeg-declared-huge": flat_jpeg(64, 48)[:400],
}


@given(data=st.one_of(st.binary(max_size=300), damaged(PHOTOS), damaged(PHOTOS),
                     damaged(PHOTOS)),
       target=st.sampled_from([None, 64, 224]))
@examples(150)
def test_photo_bytes_decode_to_a_message_or_a_bounded_photo(data: bytes, target):
    before = sandbox.last_reply()
    try:
        img = load_image(data, target_size=target)
    except ImageError as exc:
        assert str(exc)
        within_budget("photo", before)
        event(f"refused: {outcome(exc)}")
        return
    event("decoded")
    assert img.mode == "RGB" and 1 <= min(img.size) and max(img.size) <= WORK_SIDE
    assert sandbox.last_reply() is not before
    within_budget("photo", before)


# -- videos ---------------------------------------------------------------------------------------
def _clip(fmt: str, codec: str, size=(48, 32), frames: int = 6) -> bytes:
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=4)
        stream.width, stream.height = size
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        for k in range(frames):
            img = np.full((size[1], size[0], 3), 40 * k % 255, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


@pytest.fixture(scope="module")
def clips() -> dict[str, bytes]:
    pytest.importorskip("av")
    return {"mp4": _clip("mp4", "mpeg4"), "mkv-mjpeg": _clip("matroska", "mjpeg"),
            "mov-mjpeg": _clip("mov", "mjpeg"),
            "mkv-grow": growing_video("matroska", small=32, big=4112),
            "mov-grow": growing_video("mov", small=32, big=4112)}


@st.composite
def damaged_clip(draw, clips: dict[str, bytes]) -> bytes:
    """A clip damaged like a photo; in MJPEG clips, a frame's declared size rewritten too."""
    data = bytearray(draw(damaged(clips, head=4096)))
    sofs = [k for k in range(len(data) - 9) if data[k:k + 2] == b"\xff\xc0"]
    if sofs and draw(st.booleans()):
        at = draw(st.sampled_from(sofs))
        data[at + 5:at + 9] = struct.pack(">HH", draw(st.sampled_from(AWKWARD)) & 0xFFFF,
                                          draw(st.sampled_from(AWKWARD)) & 0xFFFF)
    return bytes(data)


@given(data=st.data())
@examples(40)
def test_video_bytes_decode_to_a_message_or_small_frames(clips, data):
    clip = data.draw(st.one_of(st.binary(max_size=300), damaged_clip(clips)))
    before = sandbox.last_reply()
    try:
        frames = sample_frames(clip)
    except VideoError as exc:
        assert str(exc)
        within_budget("video", before)
        event(f"refused: {outcome(exc)}")
        return
    event(f"{len(frames)} frames")
    assert frames and all(max(f.size) <= FRAME_SIDE and f.mode == "RGB" for f in frames)
    within_budget("video", before)


# -- feature files --------------------------------------------------------------------------------
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
