"""Photos shaped to exhaust memory or CPU or to reach risky decoders: refused from the header
(huge sides, extreme aspect ratios, a TIFF tile far larger than the photo, a JPEG of thousands
of scans, formats outside the list, EPS), or shrunk while decoding, so that no accepted photo
costs more than about 300 MB."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from recsys.data.images import (
    MAX_ASPECT,
    MAX_JPEG_SCANS,
    WORK_SIDE,
    ImageError,
    decode_image,
    load_image,
)

from ..decode_attacks import (
    big_tile_tiff,
    many_scans_jpeg,
    worker_growth_mb,
)

ROOT = Path(__file__).resolve().parents[2]
PEAK_LIMIT_MB = 300


def peak_rss_mb(code: str) -> tuple[float, str]:
    """Peak resident memory (VmHWM) of a fresh `python -c code`, and its output.

    The child's address space is capped at 3 GB so that a regression fails with a MemoryError
    instead of making the kernel kill processes on the test machine."""
    script = ("import resource\nresource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))\n"
              + code + "\nprint('VmHWM', [l.split()[1] for l in open('/proc/self/status') "
              "if l.startswith('VmHWM')][0])")
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    peak = next(int(line.split()[1]) for line in lines if line.startswith("VmHWM")) / 1024
    return peak, "\n".join(line for line in lines if not line.startswith("VmHWM"))


@pytest.mark.parametrize("size", [(39000, 1000), (4_000_000, 10), (10, 4_000_000)])
def test_very_wide_photos_are_refused_from_the_header(tmp_path: Path, size):
    path = tmp_path / "wide.png"
    Image.new("L", size).save(path)
    assert path.stat().st_size < 100_000           # tiny on disk: this is what made it a trap
    with pytest.raises(ImageError, match="side longer|times its short side"):
        load_image(path)


def test_aspect_ratio_cap(tmp_path: Path):
    Image.new("RGB", (MAX_ASPECT * 50 + 50, 50), "red").save(tmp_path / "belt.png")
    with pytest.raises(ImageError, match=f"times its short side; photos up to {MAX_ASPECT}:1"):
        load_image(tmp_path / "belt.png")
    Image.new("RGB", (MAX_ASPECT * 50, 50), "red").save(tmp_path / "ok.png")
    assert load_image(tmp_path / "ok.png").size == (MAX_ASPECT * 50, 50)


def test_shrinking_keeps_exif_orientation(tmp_path: Path):
    stored = Image.new("RGB", (6000, 3000), (255, 255, 255))
    stored.paste((200, 0, 0), (0, 0, 600, 3000))                  # red on the left
    exif = Image.Exif()
    exif[0x0112] = 6                                              # "rotate 90 clockwise"
    for name in ("photo.jpg", "photo.png"):
        stored.save(tmp_path / name, exif=exif.tobytes())
        img = load_image(tmp_path / name)
        assert img.size[1] > img.size[0] and max(img.size) <= WORK_SIDE    # upright, small
        top = np.asarray(img)[2, img.size[0] // 2]
        assert top[0] > 150 and top[1] < 80, name                 # the red side is now on top


def test_small_photos_decode_exactly_as_before(tmp_path: Path):
    """Photos within WORK_SIDE are not resampled: the pixels are the file's pixels."""
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "p.png")
    assert np.array_equal(np.asarray(load_image(tmp_path / "p.png")), arr)


@pytest.mark.parametrize("fmt", ["ICO", "PPM", "TGA", "PCX"])
def test_formats_outside_the_list_are_refused(tmp_path: Path, fmt):
    """Only JPEG, PNG, WebP, GIF, BMP and TIFF reach a decoder (EPS would start Ghostscript)."""
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), "red").save(buf, fmt)
    with pytest.raises(ImageError, match="not an image file"):
        load_image(buf.getvalue())


def test_eps_is_refused_without_running_ghostscript(tmp_path: Path):
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n%%EOF\n"
    with pytest.raises(ImageError, match="not an image file"):
        load_image(eps)


def test_memory_of_the_biggest_accepted_photos_stays_under_300_mb(tmp_path: Path):
    """Peak memory of a fresh process decoding each photo, measured in a fresh process."""
    specs = {  # the worst shapes and modes still accepted, and the refused traps
        "rgba.png": ("RGBA", (6300, 6300), {}),                        # 39.7 MP, 4 bytes/px
        "palette.png": ("P", (6300, 6300), {"transparency": 0}),
        "grey16.png": ("I;16", (6300, 6300), {}),
        "progressive.jpg": ("RGB", (6300, 6300), {"progressive": True}),
        "lzw.tif": ("RGB", (6300, 6300), {"compression": "tiff_lzw"}),
        "lossless.webp": ("RGBA", (3100, 3100), {"lossless": True}),
        "banner.png": ("L", (20000, 1000), {}),
        "wide.png": ("L", (39000, 1000), {}),
        "ultra.png": ("L", (4_000_000, 10), {}),
    }
    for name, (mode, size, options) in specs.items():
        Image.new(mode, size).save(tmp_path / name, **options)
    code = f"""
import sys
from recsys.encoders.clip_encoder import prepare_image
from recsys.data.images import ImageError, load_image
path = {str(tmp_path)!r} + "/" + sys.argv[1] if len(sys.argv) > 1 else None
"""
    for name in specs:
        job = code.replace("sys.argv[1] if len(sys.argv) > 1 else None", repr(name)) + """
try:
    img = load_image(path)
    thumb = img.copy(); thumb.thumbnail((256, 256))
    print("ok", img.size, prepare_image(path, 224).shape)
except ImageError as exc:
    print("refused", exc)
"""
        peak, out = peak_rss_mb(job)
        assert peak < PEAK_LIMIT_MB, f"{name}: {peak:.0f} MB ({out})"
        if name in ("wide.png", "ultra.png"):
            assert out.startswith("refused") and peak < 100, (name, out)
        else:
            assert out.startswith("ok"), (name, out)


# -- decoder attacks read from the header ---------------------------------------------------------
def test_a_tiff_tile_far_larger_than_the_photo_is_refused_from_its_header(tmp_path: Path):
    data = big_tile_tiff()                       # 64x64 photo, one 24,192 x 24,192 tile
    assert len(data) < 2 * 2**20
    with pytest.raises(ImageError, match=r"64x64 pixels, TIFF\) would need about 1,6\d\d MB"):
        load_image(data)                         # an upload: in the worker
    assert worker_growth_mb() < 50
    path = tmp_path / "tile.tif"                 # a catalog photo: in this process
    path.write_bytes(data)
    peak, out = peak_rss_mb(f"""
from recsys.data.images import ImageError, decode_image
try:
    decode_image({str(path)!r})
except ImageError as exc:
    print("refused", exc)""")
    assert out.startswith("refused") and peak < 100, (peak, out)
    assert load_image(big_tile_tiff(64, 64, tile=256)).size == (64, 64)     # normal tiles


def test_a_jpeg_of_20000_scans_is_refused_before_decoding():
    data = many_scans_jpeg()                     # 6000x6000, 452 KB: 40-100 s of CPU before
    for decode in (load_image, decode_image):
        with pytest.raises(ImageError, match=f"20,010 scans; at most {MAX_JPEG_SCANS}"):
            decode(data)
    normal = io.BytesIO()
    Image.new("RGB", (640, 480), "red").save(normal, "JPEG", progressive=True)
    assert load_image(normal.getvalue()).size == (640, 480)


def test_scan_markers_inside_the_headers_are_not_counted():
    """An EXIF block may hold a thumbnail JPEG (with scans of its own) and any bytes: only the
    start-of-scan markers from the first real scan on are counted."""
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), "blue").save(buf, "JPEG")
    data = buf.getvalue()
    junk = b"Exif\x00\x00" + b"\xff\xda\x00\x02" * 500
    app1 = b"\xff\xe1" + len(junk + b"..").to_bytes(2, "big") + junk
    assert load_image(data[:2] + app1 + data[2:]).size == (64, 48)
