"""The CLIP-style encoder's photo handling: bad photos refused while the encoder keeps working,
CMYK / grey / RGBA / EXIF-rotated photos embedded like their upright RGB twins, non-square and
big photos shrunk and padded, not cropped."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from recsys.data.images import (
    WORK_SIDE,
    ImageError,
    load_image,
)

from ..data.test_images import asymmetric_photo, bad_files, jpeg_bytes


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_encoder_refuses_bad_photos_and_keeps_working(tmp_path, frozen):
    files = bad_files(tmp_path)
    good = tmp_path / "good.jpg"
    good.write_bytes(jpeg_bytes(asymmetric_photo()))
    for path in files.values():
        with pytest.raises(ImageError):
            frozen.encode_image(path)
    with pytest.raises(ImageError, match="image 2 of 3"):
        frozen.encode_images([good, files["corrupt"], good])
    failures: dict[int, str] = {}
    vecs = frozen.encode_images([good, files["bomb"], good, files["empty"]], failures=failures)
    assert sorted(failures) == [1, 3] and "empty" in failures[3]
    assert not vecs[1].any() and not vecs[3].any()
    assert np.allclose(vecs[0], vecs[2]) and cosine(vecs[0], frozen.encode_image(good)) > 0.999
    with pytest.raises(ImageError, match="empty"):
        frozen.encode_image(b"")


def test_cmyk_grey_rgba_and_exif_rotation_embed_correctly(frozen):
    upright = asymmetric_photo()
    ref = frozen.encode_image(jpeg_bytes(upright, subsampling=0))
    # CMYK JPEG: same picture, other colour model (PIL writes CMYK without chroma subsampling,
    # so the RGB twin is saved the same way)
    cmyk = frozen.encode_image(jpeg_bytes(upright.convert("CMYK")))
    assert cosine(ref, cmyk) > 0.99
    # EXIF-rotated: pixels stored rotated with an orientation tag that undoes it
    for tag, rotate in ((6, 90), (8, -90), (3, 180)):
        exif = Image.Exif()
        exif[0x0112] = tag
        stored = upright.rotate(rotate, expand=True)
        rotated = frozen.encode_image(jpeg_bytes(stored, exif=exif.tobytes(), subsampling=0))
        assert cosine(ref, rotated) > 0.98, tag
        assert cosine(ref, frozen.encode_image(jpeg_bytes(stored, subsampling=0))) < 0.95
    # greyscale photo of a grey product equals its RGB twin
    grey = Image.new("L", (128, 128), 255)
    grey.paste(90, (20, 20, 100, 100))
    g1 = frozen.encode_image(jpeg_bytes(grey))
    g2 = frozen.encode_image(jpeg_bytes(grey.convert("RGB")))
    assert cosine(g1, g2) > 0.99
    # RGBA with a transparent background is flattened onto white
    rgba = Image.new("RGBA", (128, 128), (0, 0, 0, 0))
    rgba.paste((30, 60, 220, 255), (20, 20, 100, 100))
    flat = Image.new("RGB", (128, 128), (255, 255, 255))
    flat.paste((30, 60, 220), (20, 20, 100, 100))
    buf_a, buf_b = io.BytesIO(), io.BytesIO()
    rgba.save(buf_a, "PNG")
    flat.save(buf_b, "PNG")
    assert cosine(frozen.encode_image(buf_a.getvalue()), frozen.encode_image(buf_b.getvalue())) \
        > 0.999
    # palette PNG and a PIL image in memory work too
    pal = flat.convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    assert cosine(frozen.encode_image(pal), frozen.encode_image(flat)) > 0.99


def test_non_square_photos_are_padded_not_cropped(frozen):
    """A tall photo keeps its whole product: padding to a white square, then resizing."""
    from recsys.encoders.clip_encoder import prepare_image

    tall = Image.new("RGB", (100, 300), (255, 255, 255))
    tall.paste((200, 0, 0), (0, 0, 100, 30))        # a red band at the very top
    arr = prepare_image(tall, 224)
    assert arr.shape == (224, 224, 3)
    assert arr[3, 112, 0] > 150 and arr[3, 112, 1] < 80   # still visible after resizing


def test_big_photo_is_shrunk_before_it_is_padded(tmp_path: Path):
    """A 20000x1000 photo (accepted) comes out at most WORK_SIDE wide, so padding it to a
    square costs megabytes, not gigabytes; its content survives."""
    from recsys.encoders.clip_encoder import prepare_image

    img = Image.new("RGB", (20000, 1000), (255, 255, 255))
    img.paste((200, 0, 0), (0, 0, 2000, 1000))     # red on the left tenth
    img.save(tmp_path / "banner.png")
    loaded = load_image(tmp_path / "banner.png")
    factor = -(-20000 // WORK_SIDE)
    assert max(loaded.size) <= WORK_SIDE
    assert loaded.size == (-(-20000 // factor), -(-1000 // factor))
    arr = prepare_image(tmp_path / "banner.png", 224)
    assert arr.shape == (224, 224, 3)
    assert arr[112, 5, 0] > 150 and arr[112, 5, 1] < 80          # red band on the left
    assert (arr[5, 112] > 240).all()                              # white padding above
