"""Safe image loading for imports, uploads and encoders.

Every photo goes through `load_image`: it refuses empty, corrupt, non-image and oversized
(decompression-bomb) input with an `ImageError` that says what is wrong, applies the EXIF
orientation, and converts CMYK, greyscale, palette and transparent images to plain RGB.
Sizes are checked from the header before decoding (pixels, side, aspect ratio, decoder memory
including a TIFF's tile or strip buffer, a JPEG's number of scans) and big photos are shrunk
while they are decoded, so that no accepted photo, however it is shaped, needs more than about
300 MB (see docs/reliability.md).

Where the decoding runs: a photo given as bytes or a file object (an upload, a camera shot) is
untrusted and is decoded by a worker process under the photo budget (`recsys.core.sandbox`: memory
and seconds per photo, `RECSYS_PHOTO_BUDGET_MB` / `RECSYS_PHOTO_BUDGET_SECONDS`); a photo given
as a path (a catalog photo, imported by the operator) is decoded in the calling process by
`decode_image`, with the same checks. `load_image(..., trusted=)` overrides the choice.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
from pathlib import Path
from typing import BinaryIO, Sequence, Union

from PIL import Image, UnidentifiedImageError

from recsys.core import sandbox
from recsys.core.errors import RecsysError

ImageSource = Union[str, os.PathLike, bytes, BinaryIO]

MAX_PIXELS = 40_000_000          # 40 megapixels: bigger than any product photo
MAX_BYTES = 50 * 1024 * 1024     # 50 MB file size
MAX_SIDE = 20_000                # longest side accepted, in pixels
MAX_ASPECT = 20                  # longest side / shortest side accepted (a scarf, a belt: ~10)
WORK_SIDE = 2048                 # photos are shrunk to at most this (longest side) while decoding
MAX_DECODE_BYTES = 200 * 2**20   # estimated decoder memory above which a photo is refused
# Formats accepted (JPEG includes MPO); all else PIL could open (EPS runs Ghostscript, PSD...) is
# refused.
FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
# Memory a decoder holds per decoded byte beyond the image itself (measured with
# benchmarks/hardening.py: libwebp keeps its own canvas and copies of it).
DECODE_COPIES = {"WEBP": 4.0}
REDUCE_BAND_BYTES = 8 * 2**20    # size of the bands of rows big photos are reduced in
# A JPEG decoder does a pass over every block of the photo per scan: libjpeg writes 10 scans for
# a progressive JPEG, mozjpeg about as many; 20,000 tiny scans cost 40-70 s of CPU for one
# 36 MP photo (each scan a few bytes). More than this many scans are refused.
MAX_JPEG_SCANS = 100
ORIENTATION = 0x0112
TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
             4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
             6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
             8: Image.Transpose.ROTATE_90}


class ImageError(RecsysError, ValueError):
    """An image that cannot be used, with a message meant for the person who supplied it."""


def _open_bytes(source: ImageSource) -> tuple[BinaryIO, str]:
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
        if not data:
            raise ImageError("The file is empty (0 bytes).")
        if len(data) > MAX_BYTES:
            raise ImageError(f"The file is {len(data) / 2**20:.0f} MB; the limit is "
                             f"{MAX_BYTES // 2**20} MB.")
        return io.BytesIO(data), "uploaded image"
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"Image file not found: {path}")
        size = path.stat().st_size
        if size == 0:
            raise ImageError(f"{path.name} is empty (0 bytes).")
        if size > MAX_BYTES:
            raise ImageError(f"{path.name} is {size / 2**20:.0f} MB; the limit is "
                             f"{MAX_BYTES // 2**20} MB.")
        return open(path, "rb"), path.name
    if not hasattr(source, "read"):
        raise ImageError(f"Not an image source: {type(source).__name__}")
    return source, getattr(source, "name", "uploaded image")


def load_image(source: ImageSource, target_size: int | None = None, *,
               trusted: bool | None = None) -> Image.Image:
    """Decode `source` into an upright RGB image of at most `WORK_SIDE` pixels a side.

    `trusted` None: bytes and file objects (uploads) are decoded by a worker process under the
    photo budget (`recsys.core.sandbox`), paths (catalog photos) here; True / False force either.
    See `decode_image` for the checks and `target_size`.
    """
    return load_images(source, (target_size,), trusted=trusted)[0]


def load_images(source: ImageSource, target_sizes: Sequence[int | None], *,
                trusted: bool | None = None) -> list[Image.Image]:
    """`load_image` of one photo at several `target_sizes` (one decode each), in one round
    trip to the worker: e.g. the whole photo to crop and the encoder's size to embed."""
    if trusted is None:
        trusted = isinstance(source, (str, os.PathLike))
    if trusted or not sandbox.enabled():
        if len(target_sizes) > 1 and not isinstance(source, (str, os.PathLike, bytes,
                                                             bytearray)):
            source = _read_all(source)
        return [decode_image(source, size) for size in target_sizes]
    return _decode_in_worker(source, list(target_sizes))


def _read_all(source: ImageSource) -> bytes:
    handle, label = _open_bytes(source)
    try:
        data = handle.read(MAX_BYTES + 1)
    finally:
        if handle is not source:
            handle.close()
    if isinstance(data, str):
        raise ImageError(f"{label} is text, not an image.")
    if not data:
        raise ImageError(f"{label} is empty (0 bytes).")
    if len(data) > MAX_BYTES:
        raise ImageError(f"{label} is larger than {MAX_BYTES // 2**20} MB, the limit.")
    return data


def _decode_in_worker(source: ImageSource, target_sizes: list[int | None]
                      ) -> list[Image.Image]:
    """`decode_image` in a worker process, under the photo budget; the decoded pixels come
    back (at most `WORK_SIDE` a side)."""
    data = _read_all(source)
    if isinstance(source, (str, os.PathLike)):
        label = Path(source).name
    else:
        label = str(getattr(source, "name", "") or "uploaded image")
    name = "The uploaded image" if label == "uploaded image" else label
    reply = sandbox.run("photo", {"target_sizes": target_sizes, "label": label}, data,
                        error=ImageError, label=name)
    images, offset = [], 0
    view = memoryview(reply.payload)
    for size in reply.header.get("sizes") or []:
        width, height = (int(v) for v in size)
        end = offset + width * height * 3
        if not (0 < width <= WORK_SIDE and 0 < height <= WORK_SIDE) or end > len(view):
            break
        images.append(Image.frombytes("RGB", (width, height), view[offset:end]))
        offset = end
    if len(images) != len(target_sizes) or offset != len(view):
        raise ImageError(f"{label} could not be decoded (the decoder gave no usable image).")
    return images


def decode_task(args: dict, payload: bytes, progress) -> tuple[dict, bytes]:
    """The worker's photo task (`recsys.core.sandbox`): bytes in, RGB pixels out (one image per
    asked target size, concatenated)."""
    label = str(args.get("label") or "uploaded image")
    sizes, parts = [], []
    for target in args.get("target_sizes") or [None]:
        handle = io.BytesIO(payload)
        handle.name = label                               # type: ignore[attr-defined]
        img = decode_image(handle, int(target) if target else None)
        sizes.append(list(img.size))
        parts.append(img.tobytes())
    return {"sizes": sizes}, b"".join(parts) if len(parts) > 1 else parts[0]


def decode_image(source: ImageSource, target_size: int | None = None) -> Image.Image:
    """Decode `source` here, in this process, into an upright RGB image of at most `WORK_SIDE`
    pixels a side.

    The header is checked before anything is decoded (pixel count, side length, aspect ratio,
    the decoder's estimated memory including a TIFF's tile or strip buffer, a JPEG's number of
    scans), so no accepted photo costs more than a few hundred MB.
    A photo larger than `WORK_SIDE` is shrunk while it is decoded (JPEG draft mode, else an
    integer box reduction) before any other step copies it. `target_size` lets JPEG decoding
    skip detail that would be thrown away anyway (draft mode), which makes large photos cheap to
    embed.
    """
    handle, label = _open_bytes(source)
    try:
        try:
            # not `with`: the image returned may be this very object (PIL's close() would
            # invalidate it); the file handle is closed below
            img = Image.open(handle, formats=FORMATS)
            check_dimensions(img.size, label)
            full_size = img.size
            if img.format in ("JPEG", "MPO"):
                _check_jpeg_scans(handle, label)
                _draft(img, target_size)
            _check_decode_memory(img, full_size, label)
            orientation = _orientation(img)
            img.load()
            img = _shrink(img)
            if orientation in TRANSPOSE:
                img = img.transpose(TRANSPOSE[orientation])
            return _to_rgb(img)
        except ImageError:
            raise
        except Image.DecompressionBombError as exc:
            raise ImageError(f"{label} is too large to decode safely: {exc}") from exc
        except UnidentifiedImageError as exc:
            raise ImageError(f"{label} is not an image file PIL can read "
                             "(expected JPEG, PNG, WebP, GIF, BMP or TIFF).") from exc
        except MemoryError as exc:
            raise ImageError(f"{label} needs more memory to decode than this machine has "
                             "free.") from exc
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError,
                TypeError, ZeroDivisionError, struct.error) as exc:
            # PIL's format plugins raise these on malformed headers and data
            raise ImageError(f"{label} is corrupt or truncated: {exc}") from exc
    finally:
        if isinstance(source, (str, os.PathLike)):
            handle.close()


def check_dimensions(size: tuple[int, int], label: str = "The image") -> None:
    """Refuse sizes no product photo has, from the header alone (before any decoding)."""
    width, height = size
    if width < 1 or height < 1:
        raise ImageError(f"{label} has no pixels ({width}x{height}).")
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"{label} is {width}x{height} pixels ({width * height / 1e6:.0f} MP); "
            f"images above {MAX_PIXELS / 1e6:.0f} MP are refused to protect memory.")
    if max(width, height) > MAX_SIDE:
        raise ImageError(f"{label} is {width}x{height} pixels; images with a side longer than "
                         f"{MAX_SIDE:,} pixels are refused to protect memory.")
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise ImageError(
            f"{label} is {width}x{height} pixels: its long side is "
            f"{max(width, height) / min(width, height):,.0f} times its short side; photos up to "
            f"{MAX_ASPECT}:1 are accepted.")


def _check_jpeg_scans(handle: BinaryIO, label: str) -> None:
    """Refuse a JPEG of more than `MAX_JPEG_SCANS` scans (start-of-scan markers, counted from
    the first one: the headers before it may hold an EXIF thumbnail with scans of its own;
    entropy-coded data never contains the marker, a 0xFF there is always followed by 0x00)."""
    position = handle.tell()
    try:
        handle.seek(0)
        data = handle.read(MAX_BYTES + 1)
    finally:
        handle.seek(position)
    first = _first_scan(data)
    if first < 0:
        return                                  # no scan: PIL reports the truncated file
    scans = data.count(b"\xff\xda", first)
    if scans > MAX_JPEG_SCANS:
        raise ImageError(f"{label} is a JPEG of {scans:,} scans; at most {MAX_JPEG_SCANS} are "
                         "decoded (a photo has about 10; each scan is a pass over the whole "
                         "photo). Save it again as a normal JPEG.")


def _first_scan(data: bytes) -> int:
    """The offset of a JPEG's first start-of-scan marker, walking the marker segments before
    it by their lengths (-1 when there is none)."""
    pos = 2
    end = len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            return -1
        marker = data[pos + 1]
        if marker == 0xFF:                          # fill byte
            pos += 1
            continue
        if marker == 0xDA:
            return pos
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    return -1


def _draft(img: Image.Image, target_size: int | None) -> None:
    """Ask the JPEG decoder to scale down by 1/2, 1/4 or 1/8 while it decodes."""
    if target_size:
        img.draft("RGB", (target_size, target_size))
    elif max(img.size) > WORK_SIDE:
        factor = -(-max(img.size) // WORK_SIDE)
        img.draft("RGB", (-(-img.size[0] // factor), -(-img.size[1] // factor)))


def _check_decode_memory(img: Image.Image, full_size: tuple[int, int], label: str) -> None:
    """Refuse photos whose decoding alone would need more than `MAX_DECODE_BYTES`."""
    width, height = img.size
    per_pixel = 1 if img.mode in ("1", "L", "P") else 2 if img.mode.startswith("I;16") else 4
    need = width * height * per_pixel * (1 + DECODE_COPIES.get(img.format, 0.0))
    if img.format in ("JPEG", "MPO") and img.info.get("progressive"):
        # a progressive JPEG keeps every DCT coefficient (2 bytes each) in memory until the end,
        # at full size whatever the draft scale; chroma is often stored at a quarter of that
        layers = getattr(img, "layer", None) or [(None, 1, 1, None)] * len(img.getbands())
        h_max = max(int(layer[1]) for layer in layers) or 1
        v_max = max(int(layer[2]) for layer in layers) or 1
        share = sum(int(layer[1]) * int(layer[2]) for layer in layers) / (h_max * v_max)
        need += full_size[0] * full_size[1] * share * 2
    if img.format == "TIFF":
        need += _tiff_buffer_bytes(img, label)
    if need > MAX_DECODE_BYTES:
        raise ImageError(f"{label} ({full_size[0]}x{full_size[1]} pixels, {img.format}) would "
                         f"need about "
                         f"{need / 2**20:,.0f} MB to decode; the limit is "
                         f"{MAX_DECODE_BYTES // 2**20} MB. Save it smaller or as JPEG.")


def _tiff_buffer_bytes(img: Image.Image, label: str) -> int:
    """The buffer libtiff fills per tile or strip, from the header's TileWidth x TileLength or
    RowsPerStrip x width (raw samples; 4 bytes a pixel for YCbCr, which libtiff converts to
    RGBA): a tile may be declared far larger than the photo (one deflate tile of 24,192 x
    24,192 pixels in a 1.7 MB file of a 64 x 64 photo asks for 1.76 GB)."""
    tags = getattr(img, "tag_v2", None)
    if tags is None:
        return 0
    try:
        samples = int(tags.get(277, 1) or 1)
        bits = tags.get(258, (8,))
        bits = max(int(b) for b in (bits if isinstance(bits, tuple) else (bits,))) or 8
        pixel = -(-samples * bits // 8)
        if tags.get(262) == 6:                       # YCbCr: read as RGBA
            pixel = max(pixel, 4)
        tile_w, tile_h = tags.get(322), tags.get(323)
        if tile_w or tile_h:
            return int(tile_w or 1) * int(tile_h or 1) * pixel
        rows = min(int(tags.get(278, img.size[1]) or img.size[1]), img.size[1])
        return rows * img.size[0] * pixel
    except (TypeError, ValueError):
        raise ImageError(f"{label}: the TIFF header has unreadable tile or strip sizes.") \
            from None


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation tag (1 = upright), read before the image is shrunk."""
    try:
        return int(img.getexif().get(ORIENTATION) or 1)
    except (TypeError, ValueError, OSError, SyntaxError, struct.error):
        return 1                        # an unreadable EXIF block: leave the photo as stored


def _shrink(img: Image.Image) -> Image.Image:
    """`img` if it fits in `WORK_SIDE`, else a reduced copy (box filter; nearest for palettes)."""
    longest = max(img.size)
    if longest <= WORK_SIDE:
        return img
    factor = -(-longest // WORK_SIDE)
    if img.mode not in ("L", "LA", "La", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB",
                        "HSV", "I", "F"):
        # palette indices and 1-bit/16-bit samples cannot be averaged by reduce(): sample them
        size = (max(1, img.size[0] // factor), max(1, img.size[1] // factor))
        return img.resize(size, Image.Resampling.NEAREST)
    # reduce() copies a transparent image whole (to premultiply its alpha): work in bands of
    # rows (a multiple of `factor` high, so the result is the same as one reduce of the whole)
    width, height = img.size
    out = Image.new(img.mode, (-(-width // factor), -(-height // factor)))
    rows = max(factor, (REDUCE_BAND_BYTES // (4 * width)) // factor * factor)
    for top in range(0, height, rows):
        band = img.crop((0, top, width, min(height, top + rows)))
        out.paste(band.reduce(factor), (0, top // factor))
    return out


def _to_rgb(img: Image.Image) -> Image.Image:
    """RGB with transparency flattened onto white (product shots sit on white)."""
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img if img.mode == "RGBA" else img.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


def check_image(path: str | os.PathLike) -> str | None:
    """None if the file decodes as an image, else the reason it does not."""
    try:
        decode_image(path, target_size=64)
    except ImageError as exc:
        return str(exc)
    return None


def file_digest(path: str | os.PathLike | None) -> str:
    """SHA-1 of a file's bytes ('' when there is no file): detects changed photos."""
    if not path or not Path(path).is_file():
        return ""
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()
