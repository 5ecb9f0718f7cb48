"""The decoding budget: photos, videos and feature files a user hands the app are decoded by a
worker process with a memory limit and a time limit per request (`recsys.core.sandbox`); a
worker that runs out is replaced, workers are reused and shared by concurrent requests, the
settings are checked, relative paths reach the worker. The per-format checks made from the
files' headers are tested with their decoders (tests/data/test_image_limits.py,
tests/data/test_video.py, tests/vectors/test_features.py)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from recsys import usecases
from recsys.core import sandbox
from recsys.data.images import ImageError, decode_image, load_image
from recsys.data.report import DataImportError
from recsys.data.video import sample_frames
from recsys.store import Store

from ..decode_attacks import (
    growing_video,
)
from ..import_helpers import snapshot

av = pytest.importorskip("av")


def png(size=(6000, 6000)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buf, "PNG")
    return buf.getvalue()


def test_photo_decoding_stops_at_its_memory_budget_and_the_worker_is_replaced(monkeypatch):
    data = png()                                 # 36 MP: ~200 MB to decode
    sandbox.shutdown()              # fresh workers: no buffers freed by earlier tests to reuse
    assert load_image(data).size == (2000, 2000)
    first = sandbox.last_reply()
    assert first.limit_mb == 512 and first.peak_mb - first.base_mb < first.limit_mb
    sandbox.shutdown()
    monkeypatch.setenv("RECSYS_PHOTO_BUDGET_MB", "40")
    with pytest.raises(ImageError, match=r"needs more than the 40 MB of memory allowed for "
                                         r"decoding a photo \(RECSYS_PHOTO_BUDGET_MB\)"):
        load_image(data)
    exhausted = sandbox.last_reply().pid
    monkeypatch.delenv("RECSYS_PHOTO_BUDGET_MB")
    assert load_image(data).size == (2000, 2000)
    assert sandbox.last_reply().pid != exhausted         # the exhausted worker was replaced


def test_photo_decoding_stops_at_its_time_budget(monkeypatch):
    data = png()
    load_image(data)                             # a worker is up
    monkeypatch.setenv("RECSYS_PHOTO_BUDGET_SECONDS", "0.02")
    with pytest.raises(ImageError, match=r"took longer than the 0.02 s allowed for decoding a "
                                         r"photo \(RECSYS_PHOTO_BUDGET_SECONDS\)"):
        load_image(data)
    monkeypatch.delenv("RECSYS_PHOTO_BUDGET_SECONDS")
    assert load_image(data).size == (2000, 2000)         # a new worker took over


def test_uploads_are_decoded_in_a_reused_worker_and_catalog_paths_here(tmp_path: Path):
    buf = io.BytesIO()
    Image.new("RGB", (300, 200), (250, 10, 10)).save(buf, "JPEG")
    data = buf.getvalue()
    here = decode_image(data, 96)
    there = load_image(data, 96)
    assert there.tobytes() == here.tobytes() and there.size == here.size
    first = sandbox.last_reply()
    assert first.sandboxed and load_image(io.BytesIO(data)).size == (300, 200)
    assert sandbox.last_reply().pid == first.pid                    # the same worker again
    path = tmp_path / "catalog.jpg"
    path.write_bytes(data)
    before = sandbox.last_reply()
    assert load_image(path).size == (300, 200) and sandbox.last_reply() is before


def test_concurrent_requests_share_the_workers(ten_item_shop: Store, tmp_path: Path, monkeypatch):
    """Eight threads decode photos through one worker per kind (they wait for it, in turn)
    while a feature import runs in a worker of its own."""
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setenv("RECSYS_DECODE_WORKERS", "1")
    photos = [png((400 + 10 * k, 300)) for k in range(8)]
    np.save(tmp_path / "f.npy", np.ones((10, 4), np.float32))
    with ThreadPoolExecutor(9) as pool:
        sizes = pool.map(lambda data: load_image(data).size, photos)
        imported = pool.submit(usecases.import_features, ten_item_shop, tmp_path / "f.npy", "style",
                               "shop")
        assert list(sizes) == [(400 + 10 * k, 300) for k in range(8)]
        assert imported.result().imported == 10


def test_budget_settings_are_checked(monkeypatch):
    monkeypatch.setenv("RECSYS_PHOTO_BUDGET_MB", "-5")
    with pytest.raises(sandbox.BudgetError, match="RECSYS_PHOTO_BUDGET_MB must be a positive"):
        load_image(png((10, 10)))
    monkeypatch.setenv("RECSYS_PHOTO_BUDGET_MB", "64")
    assert sandbox.budget("photo") == sandbox.Budget("photo", 64, 15.0)
    assert sandbox.budget("video").memory_mb == 1024


def test_relative_paths_reach_the_worker(ten_item_shop: Store, tmp_path: Path, monkeypatch):
    """The CLI takes paths relative to the shell's folder; the worker gets them absolute."""
    (tmp_path / "sub").mkdir()
    np.save(tmp_path / "sub" / "f.npy", np.ones((10, 4), np.float32))
    (tmp_path / "sub" / "clip.mkv").write_bytes(growing_video(big=64))
    monkeypatch.chdir(tmp_path)
    rep = usecases.import_features(ten_item_shop, Path("sub/f.npy"), "style", "shop")
    assert rep.imported == 10
    assert len(sample_frames("sub/clip.mkv")) == 4


def test_feature_import_time_budget(ten_item_shop: Store, tmp_path: Path, monkeypatch):
    np.save(tmp_path / "f.npy", np.ones((10, 4), np.float32))
    monkeypatch.setenv("RECSYS_FEATURES_BUDGET_SECONDS", "0.001")
    before = snapshot(ten_item_shop)
    with pytest.raises(DataImportError, match="RECSYS_FEATURES_BUDGET_SECONDS"):
        usecases.import_features(ten_item_shop, tmp_path / "f.npy", "style", "shop")
    assert snapshot(ten_item_shop) == before
    monkeypatch.delenv("RECSYS_FEATURES_BUDGET_SECONDS")
    rep = usecases.import_features(ten_item_shop, tmp_path / "f.npy", "style", "shop")
    assert rep.imported == 10


@pytest.mark.perf
def test_upload_round_trip_adds_a_few_milliseconds():
    """The worker's cost for a catalog-size photo upload (decode here vs in the worker)."""
    import statistics
    import time

    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)).resize(
        (1080, 1440)).save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    load_image(data, 224)
    here, there = [], []
    for _ in range(21):
        t0 = time.perf_counter()
        decode_image(data, 224)
        here.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        load_image(data, 224)
        there.append(time.perf_counter() - t0)
    assert sandbox.last_reply().sandboxed
    assert statistics.median(there) - statistics.median(here) < 0.010
