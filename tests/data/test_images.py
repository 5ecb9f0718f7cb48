"""Bad photos through `load_image`: clear `ImageError`s for empty, corrupt, text, bomb and
truncated files (the files are shared with the encoder and CLI tests)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from recsys.data.images import (
    ImageError,
    load_image,
)


def jpeg_bytes(img: Image.Image, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95, **kwargs)
    return buf.getvalue()


def asymmetric_photo(size=(160, 120)) -> Image.Image:
    """A photo whose orientation matters: a red block top-left, a blue bar at the bottom."""
    img = Image.new("RGB", size, (255, 255, 255))
    img.paste((220, 30, 30), (10, 10, 70, 50))
    img.paste((30, 60, 220), (0, size[1] - 20, size[0], size[1]))
    return img


def bad_files(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {"empty": folder / "empty.jpg", "corrupt": folder / "corrupt.jpg",
             "text": folder / "notes.jpg", "bomb": folder / "bomb.png",
             "truncated": folder / "truncated.jpg"}
    files["empty"].write_bytes(b"")
    files["corrupt"].write_bytes(b"\xff\xd8\xff\xe0" + b"garbage" * 50)
    files["text"].write_text("this is not a photo\n")
    # 10000 x 5000 = 50 MP declared: a few KB on disk, refused before decoding
    Image.new("1", (10000, 5000)).save(files["bomb"], optimize=True)
    good = jpeg_bytes(asymmetric_photo((400, 300)))
    files["truncated"].write_bytes(good[: len(good) // 2])
    return files


@pytest.mark.parametrize("kind, message", [("empty", "empty"), ("corrupt", "not an image|corrupt"),
                                           ("text", "not an image"), ("bomb", "refused|too large"),
                                           ("truncated", "corrupt|truncated")])
def test_bad_files_raise_clear_image_errors(tmp_path, kind, message):
    path = bad_files(tmp_path)[kind]
    with pytest.raises(ImageError, match=message):
        load_image(path)
