"""Small files that ask a decoder for a lot of memory or CPU, made in a few milliseconds and a few
MB by the tests themselves: no data file is committed.

* `many_scans_jpeg`: a progressive JPEG followed by thousands of 12-byte scans (each a pass
  over every block of the photo: 20,000 scans of a 36 MP photo cost 40-70 s of CPU);
* `big_tile_tiff`: a TIFF of a small photo whose single deflate tile is declared huge (1.7 MB
  of zeros that inflate to 1.76 GB);
* `flat_jpeg`: a valid grey JPEG of any size, written as repeated MCUs (4 bytes per 16x16
  pixels), without ever holding the picture;
* `growing_video`: an MJPEG video (Matroska or QuickTime) whose first frames are 64x64 and a
  later one 16,000x16,000;
* `rle_parquet`: 4,096 rows of 8,192 zeros in a 2 KB Parquet file;
* `mmrec_id_map`: a 28-byte `i_id_mapping.csv` naming itemID 300,000,000;
* `worker_growth_mb`: what the last decoding request added to its worker's memory."""

from __future__ import annotations

import io
import struct
import zlib
from fractions import Fraction
from pathlib import Path

from PIL import Image

from recsys.core import sandbox


def _segments(data: bytes) -> list[tuple[int, bytes]]:
    """A JPEG cut into (marker, bytes) segments; a scan includes its entropy-coded data."""
    out = [(0xD8, data[:2])]
    i = 2
    while i < len(data):
        marker = data[i + 1]
        if marker == 0xD9:
            out.append((marker, data[i:i + 2]))
            break
        j = i + 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker == 0xDA:
            while not (data[j] == 0xFF and data[j + 1] != 0 and not 0xD0 <= data[j + 1] <= 0xD7):
                j += 1
        out.append((marker, data[i:j]))
        i = j
    return out


def many_scans_jpeg(width: int = 6000, height: int = 6000, scans: int = 20_000) -> bytes:
    """A flat progressive JPEG followed by `scans` extra AC scans of the luma channel, each a
    12-byte header with no data (the decoder reads zeros: end-of-band runs over every block)."""
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (120, 80, 40)).save(buf, "JPEG", progressive=True,
                                                           quality=80)
    body = b"".join(s for m, s in _segments(buf.getvalue()) if m != 0xD9)
    table = bytes([0x12]) + bytes([1] + [0] * 15) + bytes([0xE0])   # AC table 2: EOB14 = "0"
    body += b"\xff\xc4" + struct.pack(">H", 2 + len(table)) + table
    sos = bytes([1, 1, 0x02, 1, 63, 0x00])        # Y only, AC table 2, Ss=1, Se=63, Ah=Al=0
    scan = b"\xff\xda" + struct.pack(">H", 2 + len(sos)) + sos + b"\x7f\xff"
    return body + scan * scans + b"\xff\xd9"


def _zeros_zlib(n: int, chunk: int = 1 << 22) -> bytes:
    """A valid zlib stream of `n` zero bytes (n a multiple of `chunk`, or small), made by
    repeating the compressed form of one chunk after a full flush (each such block is
    independent)."""
    if n < 2 * chunk:
        return zlib.compress(bytes(n), 9)
    assert n % chunk == 0
    co = zlib.compressobj(9)
    zero = bytes(chunk)
    first = co.compress(zero) + co.flush(zlib.Z_FULL_FLUSH)
    block = co.compress(zero) + co.flush(zlib.Z_FULL_FLUSH)
    tail = co.flush(zlib.Z_FINISH)[:-4]
    adler = ((n % 65521) << 16) | 1                  # Adler-32 of n zero bytes
    return first + block * (n // chunk - 1) + tail + struct.pack(">I", adler)


def big_tile_tiff(width: int = 64, height: int = 64, tile: int = 24_192) -> bytes:
    """A little-endian RGB TIFF with one deflate tile of `tile` x `tile` pixels (zeros)."""
    data = _zeros_zlib(tile * tile * 3, chunk=tile * 3 * 64)
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 3, None), (259, 3, 1, 8),
               (262, 3, 1, 2), (277, 3, 1, 3), (284, 3, 1, 1), (322, 4, 1, tile),
               (323, 4, 1, tile), (324, 4, 1, None), (325, 4, 1, len(data))]
    bits_at = 8 + 2 + 12 * len(entries) + 4
    data_at = bits_at + 8
    out = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        value = {258: bits_at, 324: data_at}.get(tag, value)
        if kind == 3 and count == 1:
            out += struct.pack("<HHIHH", tag, kind, count, value, 0)
        else:
            out += struct.pack("<HHII", tag, kind, count, value)
    return out + struct.pack("<I", 0) + struct.pack("<4H", 8, 8, 8, 0) + data


def flat_jpeg(width: int, height: int) -> bytes:
    """A mid-grey baseline 4:2:0 JPEG of `width` x `height` (multiples of 16): PIL's header of a
    16x16 grey photo with the size patched, and its one MCU repeated."""
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (128, 128, 128)).save(buf, "JPEG", quality=75)
    head, out = b"", b""
    for marker, seg in _segments(buf.getvalue()):
        if marker == 0xC0:
            seg = seg[:5] + struct.pack(">HH", height, width) + seg[9:]
        if marker == 0xDA:
            length = struct.unpack(">H", seg[2:4])[0]
            mcu = seg[2 + length:]
            out = head + seg[:2 + length] + mcu * ((width // 16) * (height // 16))
            continue
        if marker == 0xD9:
            return out + seg
        head += seg
    raise AssertionError("no scan")


def growing_video(fmt: str = "matroska", small: int = 64, big: int = 16_000,
                  n_small: int = 3) -> bytes:
    """MJPEG at 2 frames/s: `n_small` frames of `small` x `small`, then one of `big` x `big`
    (Matroska: fmt "matroska", QuickTime: "mov"). Each frame is a whole JPEG, so the picture
    size may change from one frame to the next."""
    buf = io.BytesIO()
    import av

    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream("mjpeg", rate=2)
        stream.width = stream.height = small
        stream.pix_fmt = "yuvj420p"
        out.start_encoding()
        base = stream.time_base
        for k, data in enumerate([flat_jpeg(small, small)] * n_small + [flat_jpeg(big, big)]):
            packet = av.Packet(data)
            packet.stream = stream
            packet.pts = packet.dts = int(Fraction(k, 2) / base)
            packet.duration = int(Fraction(1, 2) / base)
            packet.time_base = base
            packet.is_keyframe = True
            out.mux(packet)
    return buf.getvalue()


def rle_parquet(path: Path, rows: int = 4096, dim: int = 8192, piece: int = 256,
                value: float = 0.0) -> Path:
    """`rows` ids (10 distinct) with a list of `dim` copies of `value` each: a couple of KB on
    disk (run-length and dictionary encoded), 268 MB as numbers, 2.3 GB as Python floats.
    Written `piece` rows at a time so the test never holds it whole."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    offsets = pa.array(np.arange(0, piece * dim + 1, dim, dtype=np.int32))
    vectors = pa.ListArray.from_arrays(offsets, pa.array(np.full(piece * dim, value)))
    schema = pa.schema([("item_id", pa.string()), ("vector", pa.list_(pa.float64()))])
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for start in range(0, rows, piece):
            ids = pa.array([str(i % 10) for i in range(start, start + piece)])
            writer.write_table(pa.table({"item_id": ids, "vector": vectors}, schema=schema),
                               row_group_size=rows)
    return path


def mmrec_id_map(folder: Path, item_id: int = 300_000_000, rows: int = 10) -> Path:
    """`image_feat.npy` of `rows` rows beside a 28-byte `i_id_mapping.csv` naming `item_id`."""
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "image_feat.npy", np.ones((rows, 4), np.float32))
    (folder / "i_id_mapping.csv").write_text(f"asin\titemID\nB0000\t{item_id}\n")
    return folder / "image_feat.npy"


def worker_growth_mb() -> float:
    """What the last request added to its worker's resident memory (peak minus before)."""
    reply = sandbox.last_reply()
    assert reply is not None and reply.sandboxed
    return reply.peak_mb - reply.base_mb
