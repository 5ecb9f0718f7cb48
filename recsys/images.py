"""Safe image loading for imports, uploads and encoders.

Every photo goes through `load_image`: it refuses empty, corrupt, non-image and oversized
(decompression-bomb) input with an `ImageError` that says what is wrong, applies the EXIF
orientation, and converts CMYK, greyscale, palette and transparent images to plain RGB.
Sizes are checked from the header before decoding (pixels, side, aspect ratio, decoder memory)
and big photos are shrunk while they are decoded, so that no accepted photo, however it is
shaped, needs more than about 300 MB (see docs/reliability.md).
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
from pathlib import Path
from typing import BinaryIO, Union

from PIL import Image, UnidentifiedImageError

from .errors import RecsysError

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


def load_image(source: ImageSource, target_size: int | None = None) -> Image.Image:
    """Decode `source` into an upright RGB image of at most `WORK_SIDE` pixels a side.

    The header is checked before anything is decoded (pixel count, side length, aspect ratio
    and the decoder's estimated memory), so no accepted photo costs more than a few hundred MB.
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
    if need > MAX_DECODE_BYTES:
        raise ImageError(f"{label} ({full_size[0]}x{full_size[1]} pixels, {img.format}) would "
                         f"need about "
                         f"{need / 2**20:,.0f} MB to decode; the limit is "
                         f"{MAX_DECODE_BYTES // 2**20} MB. Save it smaller or as JPEG.")


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
        load_image(path, target_size=64)
    except ImageError as exc:
        return str(exc)
    return None


def file_digest(path: str | os.PathLike | None) -> str:
    """SHA-1 of a file's bytes ('' when there is no file): detects changed photos."""
    if not path or not Path(path).is_file():
        return ""
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()
