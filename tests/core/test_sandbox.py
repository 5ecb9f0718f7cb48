"""Tiny files, huge memory or CPU (issue 19, item 3), and the decoding budget that bounds any
other such file: photos, videos and feature files a user hands the app are decoded by a worker
process with a memory limit and a time limit per request (`recsys.core.sandbox`), on top of the
per-format checks made from the files' headers.

Each attack is made by the test itself in a few milliseconds (`decode_attacks`); before the fix
each of them took 1.7-4 GB or 40-100 s (docs/reliability.md, "Round 2").
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from recsys import usecases
from recsys.core import sandbox
from recsys.data.datasets import DataImportError
from recsys.data.images import MAX_JPEG_SCANS, ImageError, decode_image, load_image
from recsys.data.video import VideoError, sample_frames
from recsys.store import Store

from ..app_helpers import app_test, problems
from ..decode_attacks import (
    big_tile_tiff,
    flat_jpeg,
    growing_video,
    many_scans_jpeg,
    mmrec_id_map,
    rle_parquet,
)
from ..data.test_datasets import snapshot
from ..data.test_image_limits import peak_rss_mb

av = pytest.importorskip("av")


def worker_growth_mb() -> float:
    """What the last request added to its worker's resident memory (peak minus before)."""
    reply = sandbox.last_reply()
    assert reply is not None and reply.sandboxed
    return reply.peak_mb - reply.base_mb


def png(size=(6000, 6000)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buf, "PNG")
    return buf.getvalue()


# -- photos ---------------------------------------------------------------------------------------
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


def test_concurrent_requests_share_the_workers(shop: Store, tmp_path: Path, monkeypatch):
    """Eight threads decode photos through one worker per kind (they wait for it, in turn)
    while a feature import runs in a worker of its own."""
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setenv("RECSYS_DECODE_WORKERS", "1")
    photos = [png((400 + 10 * k, 300)) for k in range(8)]
    np.save(tmp_path / "f.npy", np.ones((10, 4), np.float32))
    with ThreadPoolExecutor(9) as pool:
        sizes = pool.map(lambda data: load_image(data).size, photos)
        imported = pool.submit(usecases.import_features, shop, tmp_path / "f.npy", "style",
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


# -- videos ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt, suffix", [("matroska", ".mkv"), ("mov", ".mov")])
def test_a_video_whose_frames_grow_to_16000_px_is_refused(tmp_path: Path, fmt, suffix):
    data = growing_video(fmt)                    # 64x64 frames, then one of 16,000x16,000
    assert len(data) < 5 * 2**20
    with pytest.raises(VideoError, match="16000x16000 picture; at most 4096 pixels a side"):
        sample_frames(data)
    assert worker_growth_mb() < 200              # FFmpeg never allocated the big picture
    path = tmp_path / f"grow{suffix}"
    path.write_bytes(data)
    with pytest.raises(VideoError, match="16000x16000"):
        sample_frames(path)


def test_growing_video_through_search_and_embedding(app_db: Path, tmp_path: Path):
    """`search --video` / the page's video query, and `embed --videos`, hit the same check."""
    from recsys.vectors.embed import embed_items

    data = growing_video("matroska")
    store = Store(app_db)
    try:
        with pytest.raises(VideoError, match="16000x16000"):
            usecases.search_similar(store, "demo", video=data)
        with pytest.raises(VideoError, match="16000x16000"):    # told apart by its bytes
            usecases.search_similar(store, "demo", photo=data)
        item = store.item_ids("demo")[0]
        folder = tmp_path / "videos"
        folder.mkdir()
        (folder / f"{item}.mkv").write_bytes(data)
        encoder = usecases.prepare_search(store, "demo").encoder
        rep = embed_items(store, "demo", encoder, videos=folder)
        assert "16000x16000" in rep.failed_videos[item]
        assert rep.embedded.get("video", 0) == 0
    finally:
        store.close()


# -- feature files --------------------------------------------------------------------------------
@pytest.fixture
def shop(store: Store, tmp_path: Path) -> Store:
    """A dataset 'shop' of items "0".."9"."""
    pd.DataFrame({"item_id": [str(i) for i in range(10)],
                  "title": [f"Product {i}" for i in range(10)]}).to_csv(tmp_path / "cat.csv",
                                                                         index=False)
    usecases.import_catalog(store, tmp_path / "cat.csv", dataset="shop")
    return store


def test_an_id_map_naming_itemID_300000000_is_refused_at_once(shop: Store, tmp_path: Path):
    npy = mmrec_id_map(tmp_path / "baby")
    assert (tmp_path / "baby" / "i_id_mapping.csv").stat().st_size == 28
    before = snapshot(shop)
    with pytest.raises(DataImportError, match=r"maps itemID 300,000,000, but image_feat.npy "
                                              r"has 10 rows"):
        usecases.import_features(shop, npy, "image", "shop")
    assert worker_growth_mb() < 50 and snapshot(shop) == before


def test_a_run_length_encoded_parquet_is_read_in_bounded_batches(shop: Store, tmp_path: Path):
    path = rle_parquet(tmp_path / "rle.parquet")     # 4,096 x 8,192 zeros: 2.3 GB before
    assert path.stat().st_size < 64 * 2**10
    rep = usecases.import_features(shop, path, "style", "shop")
    assert rep.rows_read == 4096 and rep.problems == {"all-zero vector (no direction)": 4096}
    assert rep.refused and worker_growth_mb() < 400
    ones = rle_parquet(tmp_path / "ones.parquet", value=1.0)
    rep = usecases.import_features(shop, ones, "style", "shop")
    assert rep.imported == 10 and rep.rows_read == 4096 and rep.details["dimensions"] == 8192
    assert rep.problems == {"duplicate item id (the first row is kept)": 4086}
    assert worker_growth_mb() < 400


def test_feature_sizes_are_checked_from_the_metadata_first(shop: Store, tmp_path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    np.save(tmp_path / "wide.npy", np.zeros((1, 70_000), np.float32))
    with pytest.raises(DataImportError, match="70,000 dimensions; at most 65,536"):
        usecases.import_features(shop, tmp_path / "wide.npy", "style", "shop")
    np.save(tmp_path / "long.npy", np.zeros((200_000, 1), np.float32))
    with pytest.raises(DataImportError, match=r"200,000 rows for a dataset of 10 items; at most "
                                              r"100,040 are read"):
        usecases.import_features(shop, tmp_path / "long.npy", "style", "shop")
    lists = pa.ListArray.from_arrays(pa.array([0, 70_000, 140_000], pa.int32()),
                                     pa.array(np.ones(140_000, np.int8)))
    pq.write_table(pa.table({"item_id": ["0", "1"], "vector": lists}), tmp_path / "wide.parquet")
    with pytest.raises(DataImportError, match="70,000 dimensions"):
        usecases.import_features(shop, tmp_path / "wide.parquet", "style", "shop")
    header = ",".join(["id"] + [f"d{i}" for i in range(70_000)])
    (tmp_path / "wide.csv").write_text(header + "\n0," + ",".join(["1"] * 70_000) + "\n")
    with pytest.raises(DataImportError, match="70,000 dimensions"):
        usecases.import_features(shop, tmp_path / "wide.csv", "style", "shop")
    (tmp_path / "long.csv").write_text("id,vector\n" + "0,1 2\n" * 100_041)
    with pytest.raises(DataImportError, match="more than 100,040 rows"):
        usecases.import_features(shop, tmp_path / "long.csv", "style", "shop")


def test_csv_lines_are_bounded_and_bad_lines_reported(shop: Store, tmp_path: Path):
    from recsys.vectors.features import CSV_BLOCK_BYTES, MAX_VECTOR_CHARS

    # pyarrow reads blocks of CSV_BLOCK_BYTES; a line may straddle one boundary, not two
    long_line = "id,vector\n0,1 2\n1," + "1 " * (CSV_BLOCK_BYTES * 5 // 4) + "\n2,3 4\n"
    (tmp_path / "long_line.csv").write_text(long_line)
    with pytest.raises(DataImportError, match="a line is longer than 8 MB"):
        usecases.import_features(shop, tmp_path / "long_line.csv", "style", "shop")
    rows = ["id,vector", "0,1 2", "1,3 4,5", "2," + "1 " * (MAX_VECTOR_CHARS // 2 + 1),
            "3,5 6", "4"]
    (tmp_path / "mixed.csv").write_text("\n".join(rows) + "\n")
    rep = usecases.import_features(shop, tmp_path / "mixed.csv", "style", "shop")
    assert rep.imported == 2 and rep.rows_read == 5 == rep.imported + rep.rows_skipped
    assert rep.problems == {"line does not have the header's fields": 2,
                            f"vector text longer than {MAX_VECTOR_CHARS:,} characters": 1}
    assert sorted(rep.lines["line does not have the header's fields"]) == [3, 6]


def test_a_parquet_row_too_big_for_the_budget_is_stopped(shop: Store, tmp_path: Path,
                                                         monkeypatch):
    """One row of 32 million numbers among 600 empty ones passes the footer's average; its
    batch needs 256 MB as float64: the memory budget stops it, nothing is imported."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n, big = 600, 32 * 2**20
    offsets = pa.array(np.r_[0, np.full(n, big)].astype(np.int32))
    lists = pa.ListArray.from_arrays(offsets, pa.array(np.zeros(big, np.int8)))
    pq.write_table(pa.table({"item_id": [str(i % 10) for i in range(n)], "vector": lists}),
                   tmp_path / "skew.parquet", compression="zstd")
    monkeypatch.setenv("RECSYS_FEATURES_BUDGET_MB", "150")
    before = snapshot(shop)
    with pytest.raises(DataImportError, match=r"needs more than the 150 MB of memory allowed "
                                              r"for decoding a feature file "
                                              r"\(RECSYS_FEATURES_BUDGET_MB\)"):
        usecases.import_features(shop, tmp_path / "skew.parquet", "style", "shop")
    assert snapshot(shop) == before
    assert worker_growth_mb() <= 150


def test_relative_paths_reach_the_worker(shop: Store, tmp_path: Path, monkeypatch):
    """The CLI takes paths relative to the shell's folder; the worker gets them absolute."""
    (tmp_path / "sub").mkdir()
    np.save(tmp_path / "sub" / "f.npy", np.ones((10, 4), np.float32))
    (tmp_path / "sub" / "clip.mkv").write_bytes(growing_video(big=64))
    monkeypatch.chdir(tmp_path)
    rep = usecases.import_features(shop, Path("sub/f.npy"), "style", "shop")
    assert rep.imported == 10
    assert len(sample_frames("sub/clip.mkv")) == 4


def test_a_full_disk_while_staging_the_vectors_is_a_message(shop: Store, tmp_path: Path,
                                                           monkeypatch):
    import errno

    import recsys.vectors.features as features

    np.save(tmp_path / "f.npy", np.ones((10, 4), np.float32))
    monkeypatch.setenv("RECSYS_SANDBOX", "0")            # the patch below is in this process

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(features, "_validate", full)
    before = snapshot(shop)
    with pytest.raises(DataImportError, match="could not be staged .*No space left on device"):
        usecases.import_features(shop, tmp_path / "f.npy", "style", "shop")
    assert snapshot(shop) == before


def test_feature_import_time_budget(shop: Store, tmp_path: Path, monkeypatch):
    np.save(tmp_path / "f.npy", np.ones((10, 4), np.float32))
    monkeypatch.setenv("RECSYS_FEATURES_BUDGET_SECONDS", "0.001")
    before = snapshot(shop)
    with pytest.raises(DataImportError, match="RECSYS_FEATURES_BUDGET_SECONDS"):
        usecases.import_features(shop, tmp_path / "f.npy", "style", "shop")
    assert snapshot(shop) == before
    monkeypatch.delenv("RECSYS_FEATURES_BUDGET_SECONDS")
    assert usecases.import_features(shop, tmp_path / "f.npy", "style", "shop").imported == 10


# -- the same attacks through the pages ----------------------------------------------------------
def test_visual_search_page_refuses_decoder_bombs(app_db: Path):
    at = app_test(app_db, "app_pages/visual_search.py")
    for name, data, words in (("tile.tif", big_tile_tiff(), "would need about"),
                              ("scans.jpg", many_scans_jpeg(), "scans"),
                              ("grow.mkv", growing_video(), "16000x16000"),
                              ("grow.mov", growing_video("mov"), "16000x16000")):
        at.file_uploader[0].set_value((name, data, "application/octet-stream")).run()
        assert not problems(at), name
        assert at.error and words in at.error[0].value, (name, [e.value for e in at.error])
        assert 'class="rs-card"' not in "".join(m.value for m in at.markdown)


def test_data_page_feature_import_refuses_the_bombs(app_db: Path, tmp_path: Path):
    npy = mmrec_id_map(tmp_path / "baby")
    at = app_test(app_db, "app_pages/data.py")
    uploads = {u.label: u for u in at.file_uploader}
    uploads["Features (.npy, .parquet, .csv)"].set_value(("image_feat.npy", npy.read_bytes(),
                                                           "application/octet-stream"))
    uploads["Id mapping of a .npy (optional)"].set_value(
        ("i_id_mapping.csv", (npy.parent / "i_id_mapping.csv").read_bytes(), "text/csv"))
    at.text_input(key="feat_modality").input("style")
    next(b for b in at.button if b.label == "Import features").click().run()
    assert not problems(at)
    assert at.error and "maps itemID 300,000,000" in at.error[0].value
    parquet = rle_parquet(tmp_path / "rle.parquet")
    at = app_test(app_db, "app_pages/data.py")
    uploads = {u.label: u for u in at.file_uploader}
    uploads["Features (.npy, .parquet, .csv)"].set_value(("rle.parquet", parquet.read_bytes(),
                                                           "application/octet-stream"))
    at.text_input(key="feat_modality").input("style")
    next(b for b in at.button if b.label == "Import features").click().run()
    assert not problems(at)
    shown = " ".join(x.value for x in [*at.error, *at.warning, *at.markdown, *at.caption])
    assert "4,096" in shown and "all-zero vector" in shown
    assert worker_growth_mb() < 400
    assert not any((app_db.parent / "uploads").rglob("*.parquet"))          # cleaned up


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
