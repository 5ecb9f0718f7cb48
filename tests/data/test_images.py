"""Bad and unusual photos through `load_image` and the encoder: clear errors, correct vectors."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from recsys.data.images import ImageError, load_image


def _asymmetric(size=(160, 120)) -> Image.Image:
    """A photo whose orientation matters: a red block top-left, a blue bar at the bottom."""
    img = Image.new("RGB", size, (255, 255, 255))
    img.paste((220, 30, 30), (10, 10, 70, 50))
    img.paste((30, 60, 220), (0, size[1] - 20, size[0], size[1]))
    return img


def _jpeg(img: Image.Image, **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95, **kwargs)
    return buf.getvalue()


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


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
    good = _jpeg(_asymmetric((400, 300)))
    files["truncated"].write_bytes(good[: len(good) // 2])
    return files


@pytest.mark.parametrize("kind, message", [("empty", "empty"), ("corrupt", "not an image|corrupt"),
                                           ("text", "not an image"), ("bomb", "refused|too large"),
                                           ("truncated", "corrupt|truncated")])
def test_bad_files_raise_clear_image_errors(tmp_path, kind, message):
    path = bad_files(tmp_path)[kind]
    with pytest.raises(ImageError, match=message):
        load_image(path)


def test_encoder_refuses_bad_photos_and_keeps_working(tmp_path, frozen):
    files = bad_files(tmp_path)
    good = tmp_path / "good.jpg"
    good.write_bytes(_jpeg(_asymmetric()))
    for path in files.values():
        with pytest.raises(ImageError):
            frozen.encode_image(path)
    with pytest.raises(ImageError, match="image 2 of 3"):
        frozen.encode_images([good, files["corrupt"], good])
    failures: dict[int, str] = {}
    vecs = frozen.encode_images([good, files["bomb"], good, files["empty"]], failures=failures)
    assert sorted(failures) == [1, 3] and "empty" in failures[3]
    assert not vecs[1].any() and not vecs[3].any()
    assert np.allclose(vecs[0], vecs[2]) and _cos(vecs[0], frozen.encode_image(good)) > 0.999
    with pytest.raises(ImageError, match="empty"):
        frozen.encode_image(b"")


def test_cmyk_grey_rgba_and_exif_rotation_embed_correctly(frozen):
    upright = _asymmetric()
    ref = frozen.encode_image(_jpeg(upright, subsampling=0))
    # CMYK JPEG: same picture, other colour model (PIL writes CMYK without chroma subsampling,
    # so the RGB twin is saved the same way)
    cmyk = frozen.encode_image(_jpeg(upright.convert("CMYK")))
    assert _cos(ref, cmyk) > 0.99
    # EXIF-rotated: pixels stored rotated with an orientation tag that undoes it
    for tag, rotate in ((6, 90), (8, -90), (3, 180)):
        exif = Image.Exif()
        exif[0x0112] = tag
        stored = upright.rotate(rotate, expand=True)
        rotated = frozen.encode_image(_jpeg(stored, exif=exif.tobytes(), subsampling=0))
        assert _cos(ref, rotated) > 0.98, tag
        assert _cos(ref, frozen.encode_image(_jpeg(stored, subsampling=0))) < 0.95
    # greyscale photo of a grey product equals its RGB twin
    grey = Image.new("L", (128, 128), 255)
    grey.paste(90, (20, 20, 100, 100))
    g1 = frozen.encode_image(_jpeg(grey))
    g2 = frozen.encode_image(_jpeg(grey.convert("RGB")))
    assert _cos(g1, g2) > 0.99
    # RGBA with a transparent background is flattened onto white
    rgba = Image.new("RGBA", (128, 128), (0, 0, 0, 0))
    rgba.paste((30, 60, 220, 255), (20, 20, 100, 100))
    flat = Image.new("RGB", (128, 128), (255, 255, 255))
    flat.paste((30, 60, 220), (20, 20, 100, 100))
    buf_a, buf_b = io.BytesIO(), io.BytesIO()
    rgba.save(buf_a, "PNG")
    flat.save(buf_b, "PNG")
    assert _cos(frozen.encode_image(buf_a.getvalue()), frozen.encode_image(buf_b.getvalue())) \
        > 0.999
    # palette PNG and a PIL image in memory work too
    pal = flat.convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    assert _cos(frozen.encode_image(pal), frozen.encode_image(flat)) > 0.99


def test_non_square_photos_are_padded_not_cropped(frozen):
    """A tall photo keeps its whole product: padding to a white square, then resizing."""
    from recsys.encoders.clip_encoder import prepare_image

    tall = Image.new("RGB", (100, 300), (255, 255, 255))
    tall.paste((200, 0, 0), (0, 0, 100, 30))        # a red band at the very top
    arr = prepare_image(tall, 224)
    assert arr.shape == (224, 224, 3)
    assert arr[3, 112, 0] > 150 and arr[3, 112, 1] < 80   # still visible after resizing
