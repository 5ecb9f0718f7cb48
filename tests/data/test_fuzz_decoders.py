"""Property tests at the photo and video decoders, decoded as an upload is, by a worker under
its budget (the feature-file decoders: tests/vectors/test_fuzz_features.py).

Seeds are valid files and the decoder attacks (`decode_attacks`, scaled down: a huge TIFF tile,
many JPEG scans, an MJPEG video whose frames grow); hypothesis damages them (bytes flipped, cut
or inserted) and rewrites their size fields with awkward numbers (0, 1, 65,535, 2^31...). For
every input:

  * no traceback: the boundary's own error (`ImageError`, `VideoError`) with a message, or a
    valid result (an RGB photo of at most 2,048 px a side; frames of at most 448 px);
  * the worker's peak memory for the request stays under the stated budget (its growth over
    the request, measured in the worker from /proc: VmHWM reset before the request).

Derandomized and bounded to a few tens of seconds per boundary in the default run;
`RECSYS_FUZZ_SCALE=10` explores ten times more with fresh randomness."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from PIL import Image

from recsys.core import sandbox
from recsys.data.images import WORK_SIDE, ImageError, load_image
from recsys.data.video import FRAME_SIDE, VideoError, sample_frames

from ..decode_attacks import big_tile_tiff, flat_jpeg, growing_video, many_scans_jpeg
from ..fuzz_helpers import examples, flip_cut_insert

pytestmark = pytest.mark.filterwarnings("ignore:Truncated File Read:UserWarning")

AWKWARD = [0, 1, 2, 15, 16, 255, 256, 4097, 16_000, 32_767, 65_535, 2**31 - 1, 2**32 - 1]


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
    return flip_cut_insert(draw, data, 4)


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
