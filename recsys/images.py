"""Safe image loading for imports, uploads and encoders.

Every photo goes through `load_image`: it refuses empty, corrupt, non-image and oversized
(decompression-bomb) input with an `ImageError` that says what is wrong, applies the EXIF
orientation, and converts CMYK, greyscale, palette and transparent images to plain RGB.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import BinaryIO, Union

from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import RecsysError

ImageSource = Union[str, os.PathLike, bytes, BinaryIO]

MAX_PIXELS = 40_000_000          # 40 megapixels: bigger than any product photo
MAX_BYTES = 50 * 1024 * 1024     # 50 MB file size


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
    """Decode `source` into an upright RGB image.

    `target_size` lets JPEG decoding skip detail that would be thrown away anyway (draft mode),
    which makes large photos cheap to embed.
    """
    handle, label = _open_bytes(source)
    try:
        try:
            with Image.open(handle) as img:
                width, height = img.size
                if width * height > MAX_PIXELS:
                    raise ImageError(
                        f"{label} is {width}x{height} pixels ({width * height / 1e6:.0f} MP); "
                        f"images above {MAX_PIXELS / 1e6:.0f} MP are refused to protect memory.")
                if target_size and img.format == "JPEG":
                    img.draft("RGB", (target_size, target_size))
                img.load()
                return _to_rgb(ImageOps.exif_transpose(img))
        except ImageError:
            raise
        except Image.DecompressionBombError as exc:
            raise ImageError(f"{label} is too large to decode safely: {exc}") from exc
        except UnidentifiedImageError as exc:
            raise ImageError(f"{label} is not an image file PIL can read "
                             "(expected JPEG, PNG, WebP, GIF, BMP or TIFF).") from exc
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageError(f"{label} is corrupt or truncated: {exc}") from exc
    finally:
        if not isinstance(source, (bytes, bytearray)) and isinstance(source, (str, os.PathLike)):
            handle.close()


def _to_rgb(img: Image.Image) -> Image.Image:
    """RGB with transparency flattened onto white (product shots sit on white)."""
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
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
