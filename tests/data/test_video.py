"""Product videos: frames sampled safely (caps on size, pixels, frames and time; a video whose
frames grow to 16,000 px refused, also through search and embedding), bad files reported,
videos from a catalog column or a folder as the `video` modality, and a short video as a
visual search query. The tests make their own videos with PyAV."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys import usecases
from recsys.data import video as video_mod
from recsys.data.video import VideoError, looks_like_video, sample_frames
from recsys.store import Store

from ..decode_attacks import (
    growing_video,
    worker_growth_mb,
)
from ..encoder_helpers import COLOURS, draw_product, import_shapes

av = pytest.importorskip("av")


def make_video(frames: list[np.ndarray] | None = None, seconds: float = 3.0, rate: int = 10,
               size: tuple[int, int] = (64, 48), fmt: str = "mp4") -> bytes:
    """An mp4 (mpeg4) or webm (vp8) clip: the given RGB frames in turn, or a colour ramp."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=fmt) as out:
        stream = out.add_stream("mpeg4" if fmt == "mp4" else "libvpx", rate=rate)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        n = int(seconds * rate)
        for i in range(n):
            if frames is not None:
                img = frames[i % len(frames)]
            else:
                img = np.zeros((size[1], size[0], 3), np.uint8)
                img[:, :, 0] = min(255, i)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buf.getvalue()


def product_clip(shape: str, colour: str, seconds: float = 2.0) -> bytes:
    """A product turning slightly: its drawing, shifted a little from frame to frame."""
    base = np.asarray(draw_product(shape, COLOURS[colour], size=96))
    frames = [np.roll(base, shift, axis=1) for shift in range(0, 8, 2)]
    return make_video(frames, seconds=seconds, rate=8, size=(96, 96))


def test_frames_are_a_few_per_second_and_at_most_max_frames():
    three = make_video(seconds=3)
    assert looks_like_video(three) and not looks_like_video(b"\x89PNG\r\n\x1a\n" + b"0" * 8)
    frames = sample_frames(three)
    assert len(frames) == 6 and frames[0].size == (64, 48)          # 2 per second
    long = sample_frames(make_video(seconds=40, rate=5))
    assert len(long) == video_mod.MAX_FRAMES                          # spread over 40 s
    reds = [np.asarray(f)[0, 0, 0] for f in long]
    assert reds == sorted(reds) and reds[-1] > reds[0]                # in time order
    webm = sample_frames(make_video(seconds=2, fmt="webm"))
    assert len(webm) == 4


def test_bad_videos_are_clear_errors_never_tracebacks(tmp_path, monkeypatch):
    good = make_video(seconds=2)
    cases = {"empty": b"", "not a video": b"hello world " * 20, "truncated": good[:200]}
    for name, data in cases.items():
        with pytest.raises(VideoError):
            sample_frames(data)
    # an audio-only file has no video track
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        stream = out.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                           layout="mono")
        frame.sample_rate = 8000
        for _ in range(4):
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    with pytest.raises(VideoError, match="no video track"):
        sample_frames(buf.getvalue())
    monkeypatch.setenv("RECSYS_MAX_VIDEO_MB", "0.001")
    with pytest.raises(VideoError, match="at most"):
        sample_frames(good)
    (tmp_path / "big.mp4").write_bytes(good)
    with pytest.raises(VideoError, match="at most"):
        sample_frames(tmp_path / "big.mp4")


def test_oversized_pictures_and_long_decodes_are_capped(monkeypatch):
    # the caps are changed in this process: decode here, not in a worker
    monkeypatch.setenv("RECSYS_SANDBOX", "0")
    monkeypatch.setattr(video_mod, "MAX_SIDE", 32)
    with pytest.raises(VideoError, match="pixels"):
        sample_frames(make_video(seconds=1))
    monkeypatch.undo()
    monkeypatch.setenv("RECSYS_SANDBOX", "0")
    monkeypatch.setattr(video_mod, "MAX_DECODED_FRAMES", 3)
    frames = sample_frames(make_video(seconds=3))     # stops early, keeps what it has
    assert 1 <= len(frames) < 6
    monkeypatch.setattr(video_mod, "DECODE_SECONDS", -1.0)
    with pytest.raises(VideoError, match="took longer"):
        sample_frames(make_video(seconds=3))


@pytest.fixture
def video_shop(tmp_path: Path):
    """The shapes catalog with a `video` column for two products, a folder with the video of a
    third and a broken one for a fourth."""
    from recsys.store import Store

    store = Store(tmp_path / "v.duckdb")
    import_shapes(store, tmp_path, copies=1)          # writes images/ and catalog.csv
    catalog = pd.read_csv(tmp_path / "catalog.csv")
    (tmp_path / "images" / "red.mp4").write_bytes(product_clip("ellipse", "Red"))
    (tmp_path / "images" / "blue.webm").write_bytes(product_clip("rectangle", "Blue"))
    catalog["video"] = None
    catalog.loc[catalog.item_id == "red-ell-0", "video"] = "red.mp4"
    catalog.loc[catalog.item_id == "blue-rec-0", "video"] = "blue.webm"
    catalog.loc[catalog.item_id == "green-pol-0", "video"] = "missing.mp4"
    catalog.to_csv(tmp_path / "catalog.csv", index=False)
    from recsys import usecases
    rep = usecases.import_catalog(store, tmp_path / "catalog.csv", tmp_path / "images",
                                  dataset="shapes")
    assert rep.imported == 12 and rep.details["videos"] == 2
    assert rep.details["videos not found in the folder (items kept without one)"] == 1
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "black-pol-0.mp4").write_bytes(product_clip("polygon", "Black"))
    (folder / "green-rec-0.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom" + b"\x00" * 64)
    yield store, folder
    store.close()


def test_videos_become_the_video_modality(video_shop, frozen):
    from recsys.vectors.embed import embed_items
    from recsys.vectors.modalities import load_modality_matrices

    store, folder = video_shop
    rep = embed_items(store, "shapes", frozen, videos=folder)
    assert rep.embedded["video"] == 3 and rep.embedded["image"] == 12
    assert list(rep.failed_videos) == ["green-rec-0"]
    assert "videos could not be read" in rep.summary()
    mats = load_modality_matrices(store, "shapes")
    assert mats.modalities == ("image", "text", "video")
    assert mats.present["video"].sum() == 3
    assert mats.sources["video"].spec == frozen.spec            # the photos' encoder
    # a video is near its product's photo in the image space
    ids = mats.item_ids
    red = ids.index("red-ell-0")
    sims = mats.vectors["image"] @ mats.vectors["video"][red]
    assert ids[int(np.argmax(sims))] == "red-ell-0"
    again = embed_items(store, "shapes", frozen, videos=folder)
    assert again.embedded["video"] == 0 and again.unchanged["video"] == 3


def test_a_short_video_is_a_visual_search_query(video_shop, frozen, monkeypatch):
    from recsys import usecases
    from recsys.usecases import search as search_mod
    from recsys.vectors.embed import embed_items

    store, _ = video_shop
    embed_items(store, "shapes", frozen)
    monkeypatch.setattr(search_mod, "_query_encoder", lambda *a: frozen)
    clip = product_clip("ellipse", "Red")
    hits = usecases.search_similar(store, "shapes", photo=clip, k=3)       # told by its bytes
    assert hits.rows()[0]["item_id"] == "red-ell-0"
    assert hits.query["image"] == "uploaded video"
    hits = usecases.search_similar(store, "shapes", video=io.BytesIO(clip), k=3)
    assert hits.rows()[0]["item_id"] == "red-ell-0"
    with pytest.raises(VideoError):
        usecases.search_similar(store, "shapes", video=b"\x00\x00\x00\x18ftypisom" + b"0" * 40)


# -- videos that grow -----------------------------------------------------------------------------
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
